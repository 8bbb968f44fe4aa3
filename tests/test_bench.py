"""The benchmark's pure parts: the challenge-style score and the Pareto front."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib.bench.choice import fastest_within_budget
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


def test_the_shipped_file_is_the_fastest_that_passed_the_gate_within_the_budget():
    bench = pd.DataFrame(
        [
            ("s_96_fp32.tflite", 96, "fp32", 6.2, 0.0600, 3.00),
            ("s_96_int8w.tflite", 96, "int8w", 1.9, 0.0601, 3.10),  # as fast within 5 %, smaller
            ("s_96_int8.tflite", 96, "int8", 2.1, 0.0625, 1.50),  # 0.25 points worse
            ("s_64_fp32.tflite", 64, "fp32", 6.2, 0.0900, 1.00),  # fast, far less accurate
            ("s_96_fp16.tflite", 96, "fp16", 3.2, 0.0600, 0.50),  # failed the gate
        ],
        columns=["file", "input_size", "precision", "size_mb", "nme", "litert_ms_t2"],
    )
    gate = pd.DataFrame({"file": bench["file"], "passed": [True, True, True, True, False]})
    assert fastest_within_budget(bench, gate, "litert_ms_t2", 96, nme_points=0.2)["file"] == "s_96_int8w.tflite"
    assert fastest_within_budget(bench, gate, "litert_ms_t2", 96, nme_points=0.3)["file"] == "s_96_int8.tflite"
    assert fastest_within_budget(bench, gate, "litert_ms_t2", 96, nme_points=3.0)["file"] == "s_64_fp32.tflite"
    with pytest.raises(ValueError, match="no fp32 file at the model's own input size 128"):
        fastest_within_budget(bench, gate, "litert_ms_t2", 128, nme_points=0.2)
