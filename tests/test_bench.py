"""The benchmark's pure parts: the challenge-style score and the Pareto front."""

from __future__ import annotations

import numpy as np
import pytest

from lib.bench.plots import pareto_front
from lib.bench.score import challenge_score

REFERENCE = {"nme": 0.05, "gflops": 0.5, "size_mb": 4.0, "latency_ms": 20.0}


def test_score_is_100_for_the_reference_and_moves_by_the_weight():
    assert challenge_score(REFERENCE, REFERENCE) == pytest.approx(100.0)
    twice_as_fast = {**REFERENCE, "latency_ms": 10.0}
    weights = {"nme": 2.0, "gflops": 1.0, "size_mb": 1.0, "latency_ms": 1.0}
    # latency ratio 2 with weight 1/5: 100 * (4/5 * 1 + 1/5 * 2) = 120
    assert challenge_score(twice_as_fast, REFERENCE, weights) == pytest.approx(120.0)


def test_score_rejects_non_positive_values():
    with pytest.raises(ValueError, match="latency_ms"):
        challenge_score({**REFERENCE, "latency_ms": 0.0}, REFERENCE)


def test_pareto_front_by_hand():
    latency = np.array([10.0, 20.0, 15.0, 30.0, 12.0])
    error = np.array([0.09, 0.05, 0.06, 0.05, 0.10])
    # 10/0.09 (fastest), 15/0.06, 20/0.05; 12/0.10 is beaten by 10/0.09, 30/0.05 by 20/0.05.
    assert pareto_front(latency, error).tolist() == [0, 2, 1]
