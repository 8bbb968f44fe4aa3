"""The benchmark's pure parts: the challenge-style score, the Pareto front and the rule that ships a file."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from lib.bench.challenge_score import challenge_score
from lib.bench.choice import SHIP_RULE, TIMER_SIGMAS, most_accurate_within_latency, seed_spread, ship
from lib.bench.embedded_benchmark import latency_columns, ratio_columns
from lib.bench.plots import nme_ticks, pareto_front

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


def test_the_pareto_plots_nme_axis_is_labelled_however_close_the_files_are():
    """Files spread over tens of points keep the round ticks; files within a tenth of a point of
    one another (one network's precisions) get ticks inside their span, where a fixed list of
    round values would leave the axis bare."""
    assert nme_ticks(5.0, 41.0) == [4, 5, 6, 7, 8, 10, 15, 20, 30, 40, 60]
    close = nme_ticks(5.78, 5.84)
    assert len(close) >= 3
    assert all(5.78 <= value <= 5.84 for value in close)
    assert close == sorted(close)


def ship_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seven timed files (MediaPipe at 1.0 ms: ``vs_mediapipe_t1`` = latency / 1.0, the rounds in
    agreement) and the gate."""
    bench = pd.DataFrame(
        [
            ("student_160_fp32.tflite", "student", 160, "fp32", 8.0, 0.0550, 1.40),  # the most accurate, slower than MediaPipe
            ("student_128_fp32.tflite", "student", 128, "fp32", 6.2, 0.0600, 0.95),  # the most accurate within the latency
            ("student_128_int8w.tflite", "student", 128, "int8w", 1.9, 0.0603, 0.90),  # a near-tie, faster
            ("student_128_int8.tflite", "student", 128, "int8", 2.1, 0.0625, 0.60),  # 0.25 points worse
            ("student_128_fp16.tflite", "student", 128, "fp16", 3.2, 0.0580, 0.50),  # failed the gate
            ("student_96_int8.tflite", "student", 96, "int8", 1.2, 0.0700, 0.30),
            ("pruned40_96_int8.tflite", "pruned40", 96, "int8", 0.9, 0.0750, 0.20),
        ],
        columns=["file", "model", "input_size", "precision", "size_mb", "nme", "litert_ms_t1"],
    )
    bench["gflops"] = 0.1
    bench["vs_mediapipe_t1"] = bench["litert_ms_t1"] / 1.0
    bench["vs_mediapipe_t1_se"] = 0.0  # the rounds agree
    gate = pd.DataFrame({"file": bench["file"], "passed": [True, True, True, True, False, True, True]})
    return bench, gate


def test_the_shipped_file_is_the_most_accurate_within_mediapipes_latency(tmp_path):
    bench, gate = ship_table()
    choice, runner_up, figures = most_accurate_within_latency(bench, gate, threads=1)
    assert choice["file"] == "student_128_fp32.tflite"  # 160 px is more accurate and too slow; fp16 failed the gate
    assert runner_up["file"] == "student_128_int8w.tflite"
    assert (figures["within_latency"], figures["candidates"], figures["within_latency_files"]) == (True, 6, 5)
    # a near-tie (within the seeds' spread) goes to the faster file
    assert most_accurate_within_latency(bench, gate, threads=1, tie_nme=0.0005)[0]["file"] == "student_128_int8w.tflite"
    assert most_accurate_within_latency(bench, gate, threads=1, tie_nme=0.003)[0]["file"] == "student_128_int8.tflite"
    # near-ties within the timer's noise (3 standard errors of the median ratio) of the fastest are as fast: the smallest file ships
    noisy = bench.assign(vs_mediapipe_t1_se=[0.0, 0.01, 0.02, 0.11, 0, 0, 0])
    # int8w (0.90) lies within 3 x 0.11 of int8's 0.60 and is smaller
    assert most_accurate_within_latency(noisy, gate, threads=1, tie_nme=0.003)[0]["file"] == "student_128_int8w.tflite"
    assert most_accurate_within_latency(noisy, gate, threads=1, tie_nme=0.0005)[0]["file"] == "student_128_int8w.tflite"  # fp32 as fast, larger
    steady = bench.assign(vs_mediapipe_t1_se=0.01)
    assert most_accurate_within_latency(steady, gate, threads=1, tie_nme=0.003)[0]["file"] == "student_128_int8.tflite"
    # a file within the cap by its median ratio but not beyond the timer's noise is not within it
    edge = bench.assign(vs_mediapipe_t1_se=[0, 0.02, 0, 0, 0, 0, 0])  # 0.95 + 3 x 0.02 > 1
    without, next_best, without_figures = most_accurate_within_latency(edge, gate, threads=1)
    assert (without["file"], next_best["file"], without_figures["within_latency_files"]) == ("student_128_int8w.tflite", "student_128_int8.tflite", 4)
    assert without_figures["timer_sigmas"] == TIMER_SIGMAS == 3
    # a looser cap lets the larger network in; none within the cap: the fastest ships, and says so
    assert most_accurate_within_latency(bench, gate, threads=1, max_ratio=1.5)[0]["file"] == "student_160_fp32.tflite"
    fastest, _, none_fit = most_accurate_within_latency(bench, gate, threads=1, max_ratio=0.1)
    assert (fastest["file"], none_fit["within_latency"]) == ("pruned40_96_int8.tflite", False)
    # ... the smallest of those as fast: 0.20 and 0.30 within 3 x 0.11, the slower one smaller, then the lower NME
    larger_fastest = noisy.assign(size_mb=noisy["size_mb"].where(noisy["file"] != "pruned40_96_int8.tflite", 1.5))
    assert most_accurate_within_latency(larger_fastest, gate, threads=1, max_ratio=0.1)[0]["file"] == "student_96_int8.tflite"
    assert most_accurate_within_latency(noisy.assign(size_mb=1.0), gate, threads=1, max_ratio=0.1)[0]["file"] == "student_96_int8.tflite"
    assert most_accurate_within_latency(larger_fastest.assign(vs_mediapipe_t1_se=0.01), gate, threads=1, max_ratio=0.1)[0]["file"] == "pruned40_96_int8.tflite"
    with pytest.raises(ValueError, match="litert_ms_t2"):
        most_accurate_within_latency(bench, gate, threads=2)
    with pytest.raises(ValueError, match="vs_mediapipe_t1_se"):
        most_accurate_within_latency(bench.drop(columns="vs_mediapipe_t1_se"), gate, threads=1)
    # best.json: the chosen file, its latency ratio, the rule and the runner-up
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "student_128_fp32.tflite").write_bytes(b"chosen")
    shipped = ship(choice, runner_up, figures, tmp_path / "export", tmp_path)
    record = json.loads((tmp_path / "best.json").read_text())
    assert shipped.read_bytes() == b"chosen"
    assert (record["file"], record["litert_ms_t1"], record["latency_ratio"], record["rule"]) == ("student_128_fp32.tflite", 0.95, 0.95, SHIP_RULE)
    assert record["runner_up"]["file"] == "student_128_int8w.tflite"


def test_a_latency_ratio_is_the_median_of_the_rounds_paired_ratios():
    """A file's ratio to a reference pairs the two within each round (the machine's speed drifts
    between rounds): here the median of 1.1, 0.9167 and 0.9286, not the ratio of the medians
    (1.1 / 1.2 = 0.9167), with the standard deviation of the three; the latency is the median of
    the rounds' medians."""
    timed = {1: {"mediapipe": [{"median": m, "p90": m + 0.1} for m in (1.0, 1.2, 1.4)], "ours": [{"median": m, "p90": m + 0.2} for m in (1.1, 1.1, 1.3)]}}
    columns = ratio_columns(timed, "ours", ["mediapipe"])
    assert columns["vs_mediapipe_t1"] == pytest.approx(1.3 / 1.4)
    assert columns["vs_mediapipe_t1_sd"] == pytest.approx(statistics.stdev([1.1, 1.1 / 1.2, 1.3 / 1.4]))
    assert columns["vs_mediapipe_t1_se"] == pytest.approx(math.sqrt(math.pi / 2) * statistics.stdev([1.1, 1.1 / 1.2, 1.3 / 1.4]) / math.sqrt(3))
    assert latency_columns(timed, "ours") == pytest.approx({"litert_ms_t1": 1.1, "litert_p90_t1": 1.3})


def test_a_noisy_bench_run_still_tells_a_fast_file_from_one_at_the_references_speed():
    """Nine rounds whose per-round ratios scatter by about 0.06 (a busy machine): the int8 file at
    0.83x is within the cap by its median plus three standard errors (0.83 + 3 x 0.025), the more
    accurate file at 0.99x is not (0.99 + 0.075 > 1); three per-round deviations (0.18) would have
    put neither within the cap and called them equally fast."""
    scatter = [0.06, -0.06, 0.07, -0.07, 0.0, 0.05, -0.05, 0.08, -0.08]
    reference = [1.0 + 0.1 * (i % 3) for i in range(9)]  # the machine's speed drifts between rounds
    rounds = {"mediapipe": [{"median": m, "p90": m} for m in reference]}
    for name, ratio in (("student_96_int8.tflite", 0.83), ("student_96_int8w.tflite", 0.99)):
        rounds[name] = [{"median": m * (ratio + e), "p90": m * (ratio + e)} for m, e in zip(reference, scatter, strict=True)]
    rows = [
        {"file": name, "model": "student", "input_size": 96, "precision": name.split("_")[-1][:-7], "gflops": 0.1, "nme": nme, "size_mb": size}
        for name, nme, size in (("student_96_int8.tflite", 0.0474, 1.09), ("student_96_int8w.tflite", 0.0467, 0.99))
    ]
    bench = pd.DataFrame([{**row, **latency_columns({1: rounds}, row["file"]), **ratio_columns({1: rounds}, row["file"], ["mediapipe"])} for row in rows])
    spread = statistics.stdev(scatter)
    assert bench["vs_mediapipe_t1_se"].tolist() == pytest.approx([math.sqrt(math.pi / 2) * spread / 3] * 2)
    assert bench["vs_mediapipe_t1"].tolist() == pytest.approx([0.83, 0.99])
    gate = pd.DataFrame({"file": bench["file"], "passed": True})
    choice, runner_up, figures = most_accurate_within_latency(bench, gate, threads=1)
    assert (choice["file"], runner_up["file"], figures["within_latency_files"]) == ("student_96_int8.tflite", "student_96_int8w.tflite", 1)


def test_the_tie_margin_is_the_students_spread_over_seeds_pooled(tmp_path):
    assert seed_spread(tmp_path / "absent.csv") == 0.0
    nme = {"student alone": [0.050, 0.052, 0.051], "student + KD": [0.0480, 0.0481, 0.0479, 0.0483]}
    summary = pd.DataFrame(
        [{"model": "teacher", "seeds": 1, "nme_std": float("nan")}]
        + [{"model": model, "seeds": len(values), "nme_std": statistics.stdev(values)} for model, values in nme.items()]
    )
    summary.to_csv(tmp_path / "seeds.csv", index=False)
    # the pooled variance: squared deviations from each model's own mean over the degrees of freedom
    squares = sum((v - statistics.fmean(values)) ** 2 for values in nme.values() for v in values)
    assert seed_spread(tmp_path / "seeds.csv") == pytest.approx(math.sqrt(squares / (3 - 1 + 4 - 1)))
    assert seed_spread(tmp_path / "seeds.csv", ("student + KD",)) == pytest.approx(statistics.stdev(nme["student + KD"]))
    pd.DataFrame({"model": ["student + KD"], "seeds": [1], "nme_std": [float("nan")]}).to_csv(tmp_path / "one.csv", index=False)
    assert seed_spread(tmp_path / "one.csv") == 0.0
