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
            ("student_96_fp32.tflite", "student", 96, "fp32", 6.2, 0.0600, 3.00),
            ("student_96_int8w.tflite", "student", 96, "int8w", 1.9, 0.0601, 3.10),  # as fast within 5 %, smaller
            ("student_96_int8.tflite", "student", 96, "int8", 2.1, 0.0625, 1.50),  # 0.25 points worse
            ("student_64_fp32.tflite", "student", 64, "fp32", 6.2, 0.0900, 1.00),  # fast, far less accurate
            ("student_96_fp16.tflite", "student", 96, "fp16", 3.2, 0.0600, 0.50),  # failed the gate
            ("pruned40_96_fp32.tflite", "pruned40", 96, "fp32", 2.0, 0.0590, 2.00),  # a pruned student: budget from the student's fp32
            ("pruned40_96_int8.tflite", "pruned40", 96, "int8", 0.9, 0.0642, 1.20),  # 0.42 points worse than the student
        ],
        columns=["file", "model", "input_size", "precision", "size_mb", "nme", "litert_ms_t2"],
    )
    gate = pd.DataFrame({"file": bench["file"], "passed": [True, True, True, True, False, True, True]})
    assert fastest_within_budget(bench, gate, "litert_ms_t2", 96, nme_points=0.2)["file"] == "pruned40_96_fp32.tflite"
    assert fastest_within_budget(bench, gate, "litert_ms_t2", 96, nme_points=0.3)["file"] == "student_96_int8.tflite"
    assert fastest_within_budget(bench, gate, "litert_ms_t2", 96, nme_points=0.5)["file"] == "pruned40_96_int8.tflite"
    assert fastest_within_budget(bench, gate, "litert_ms_t2", 96, nme_points=3.0)["file"] == "student_64_fp32.tflite"
    unpruned = bench[bench["model"] == "student"]
    assert fastest_within_budget(unpruned, gate, "litert_ms_t2", 96, nme_points=0.2)["file"] == "student_96_int8w.tflite"
    # the budget is the reference network's: the pruned student's own fp32 file (5.90 %) would allow less
    assert fastest_within_budget(bench, gate, "litert_ms_t2", 96, nme_points=0.5, reference_model="pruned40")["file"] == "student_96_int8.tflite"
    with pytest.raises(ValueError, match="no fp32 file of student at its own input size 128"):
        fastest_within_budget(bench, gate, "litert_ms_t2", 128, nme_points=0.2)
