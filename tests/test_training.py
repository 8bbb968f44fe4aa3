"""The training engine: schedule, atomic checkpoints, exact resume, distillation, 2-process DDP."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lib.data.sources import Source, profile_sources, source_test_tables, source_train_table
from lib.data.splits import split_seed_of, split_table, training_split
from lib.data.synthetic.generate import generated_params
from lib.formats.errors import FormatError
from lib.formats.pts import read_pts, write_pts
from lib.formats.w300 import SPLITS
from lib.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from lib.paths import PROJECT_ROOT
from lib.pipeline import outputs
from lib.training import __main__ as training_cli
from lib.training import engine, gpu_check
from lib.training.ablation import ALONE, DISTILLED, seed_summary, step_trainings
from lib.training.config import train_config
from lib.training.engine import read_log_records, train, warmup_cosine
from lib.training.jobs import TrainJob, pruning_jobs, run_jobs, size_jobs, student_ablation_jobs
from lib.training.step_benchmark import step_times
from tests.conftest import SMALL_TRAIN, with_jaw


def test_warmup_cosine_by_hand():
    factor = warmup_cosine(4, 14)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(9) == pytest.approx(0.5)  # half way through the 10 cosine steps
    assert factor(14) == pytest.approx(0.0, abs=1e-12)


def test_split_is_seeded_and_disjoint(synthetic_root):
    from lib.formats.pair import read_pair_train

    table = read_pair_train(synthetic_root / "ivslab_facial_train")
    train_a, val_a = split_table(table, 0.25, 3)
    train_b, val_b = split_table(table, 0.25, 3)
    assert list(val_a["image"]) == list(val_b["image"])
    assert len(val_a) == 6
    assert not set(train_a["image"]) & set(val_a["image"])
    assert list(split_table(table, 0.25, 4)[1]["image"]) != list(val_a["image"])  # another seed, other faces
    # A fixed split seed keeps one validation set over training seeds.
    assert split_seed_of({"seed": 4, "split_seed": 3}) == 3
    assert split_seed_of({"seed": 4, "split_seed": None}) == split_seed_of({"seed": 4}) == 4
    # Several faces of one image (a group photo): all of them on one side of the split.
    shared = table.assign(image=[f"photo_{i // 3}.jpg" for i in range(len(table))])
    for seed in range(5):
        train, val = split_table(shared, 0.25, seed)
        assert not set(train["image"]) & set(val["image"])
        assert len(train) + len(val) == len(table)
        assert val["image"].nunique() == round(shared["image"].nunique() * 0.25)


def test_seed_summary_by_hand():
    rows = [("teacher", 0, 0.13), ("student alone", 0, 0.20), ("student alone", 1, 0.14), ("student alone", 2, 0.18)]
    rows += [("student + KD", 0, 0.21), ("student + KD", 1, 0.12), ("student + KD", 2, 0.17)]
    table = pd.DataFrame(rows, columns=["model", "seed", "nme"])
    summary = seed_summary(table).set_index("model")
    assert list(summary.index) == ["teacher", "student alone", "student + KD"]
    assert summary.loc["student alone", "nme_mean"] == pytest.approx(0.52 / 3)
    # sample standard deviation: squared deviations 0.02667^2 + 0.03333^2 + 0.00667^2 = 0.0018667, over 2
    assert summary.loc["student alone", "nme_std"] == pytest.approx(np.sqrt(0.0018667 / 2), rel=1e-3)
    assert summary.loc["student + KD", "nme_minus_baseline"] == pytest.approx((0.01 - 0.02 - 0.01) / 3)
    assert summary.loc["student + KD", "better_share"] == pytest.approx(2 / 3)
    # paired differences 0.01, -0.02, -0.01: sd 0.015275, se 0.0088192, t(0.975, 2) = 4.302653
    assert summary.loc["student + KD", "ci95_low"] == pytest.approx(-0.0066667 - 0.0379462, rel=1e-4)
    assert summary.loc["student + KD", "ci95_high"] == pytest.approx(-0.0066667 + 0.0379462, rel=1e-4)
    assert summary.loc["teacher", "seeds"] == 1
    assert np.isnan(summary.loc["teacher", "nme_std"])
    assert summary.loc["teacher", "paired_seeds"] == 1  # only seed 0 is shared with the baseline
    assert summary.loc["teacher", "nme_minus_baseline"] == pytest.approx(-0.07)
    assert np.isnan(summary.loc["teacher", "ci95_low"])  # one pair: no interval


def test_interrupted_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})

    def broken_save(obj, file):
        with open(file, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 2})
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_log_reader_skips_a_torn_last_line_and_names_a_broken_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert read_log_records(path) == [{"epoch": 1}, {"epoch": 2}]
    path.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(ValueError, match=f"{path.name}:2: not a JSON record"):
        read_log_records(path)


@pytest.mark.slow
def test_a_crash_between_checkpoint_writes_leaves_a_consistent_run(tmp_path, synthetic_root, monkeypatch):
    """Killed after the first checkpoint file of epoch 1 is written: best.pt must never lag
    behind what last.pt records; a logged row past the checkpoint and a torn line are dropped
    on resume, and the resumed run finishes with one row per epoch."""
    import lib.training.engine as engine

    path = tiny_config(tmp_path, synthetic_root)
    cfg = train_config("student", path, "tiny", {"out_dir": str(tmp_path / "run"), "loss": {}})
    writes = []

    def killed_on_second_write(target, state):
        writes.append(str(target))
        if len(writes) == 2:
            raise KeyboardInterrupt("killed")
        save_checkpoint(target, state)

    monkeypatch.setattr(engine, "save_checkpoint", killed_on_second_write)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.undo()
    run = tmp_path / "run"
    if (run / "last.pt").is_file():
        assert (run / "best.pt").is_file()
        assert load_checkpoint(run / "best.pt")["best_nme"] == load_checkpoint(run / "last.pt")["best_nme"]
    train(train_config("student", path, "tiny", {"out_dir": str(run), "loss": {}, "stop_after_epochs": 1}), progress=False)
    with open(run / "metrics.jsonl", "a") as log:  # as if killed after logging epoch 2, mid-way through a line
        log.write(json.dumps({"epoch": 2, "train": {}, "val": {}}) + "\n" + '{"epoch": 3, "tr')
    cfg = train_config("student", path, "tiny", {"out_dir": str(run), "loss": {}})
    results = train(cfg, progress=False)
    assert results["finished"]
    recorded = json.loads((run / "results.json").read_text())["data"]  # what a later run reuses it by
    assert recorded == generated_params(Path(cfg.data_root))
    assert (recorded["train"], recorded["seed"]) == (SMALL_TRAIN, 7)  # the session's set (conftest)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in log] == [1, 2]
    assert "nme" in log[1]["val"]  # the real epoch 2, not the stale row


@pytest.mark.slow
def test_a_run_is_not_resumed_under_other_settings_or_data(tmp_path, synthetic_root):
    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data)
    path = tiny_config(tmp_path, data)
    settings = {"out_dir": str(tmp_path / "run"), "loss": {}}
    train(train_config("student", path, "tiny", {**settings, "stop_after_epochs": 1}), progress=False)
    with pytest.raises(ValueError, match=r"last.pt was trained from other settings or inputs \(lr: 0.002 -> 0.001\): set resume=false"):
        train(train_config("student", path, "tiny", {**settings, "lr": 1e-3}), progress=False)
    label = sorted(data.glob("ivslab_facial_train/*/labels/*.pts"))[0]
    write_pts(label, read_pts(label, 51) + 0.5)  # the same files, one face relabelled
    with pytest.raises(ValueError, match=r"other settings or inputs \((train|val)_data fingerprint [0-9a-f]{12} -> [0-9a-f]{12}\)"):
        train(train_config("student", path, "tiny", settings), progress=False)
    fresh = train(train_config("student", path, "tiny", {**settings, "lr": 1e-3, "resume": False}), progress=False)
    assert fresh["finished"]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["config"]["lr"] == 1e-3
    resumed = train(train_config("student", path, "tiny", {**settings, "lr": 1e-3, "workers": 1}), progress=False)  # workers may change
    assert resumed["finished"]


class Payload:
    """Any object a pickle would rebuild by calling code."""


def test_a_checkpoint_holding_an_arbitrary_object_is_refused(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": Payload()}, path)
    with pytest.raises(ValueError, match=f"{path.name}: refused, it holds more than tensors"):
        load_checkpoint(path)
    save_checkpoint(tmp_path / "plain.pt", {"model": {"w": torch.ones(2)}, "epoch": 3, "config": {"lr": 1e-3, "augment": {}}})
    assert load_checkpoint(tmp_path / "plain.pt")["epoch"] == 3


def tiny_config(tmp_path, root, **stage_settings) -> str:
    common = {
        "input_size": 64,
        "batch_size": 4,
        "epochs": 2,
        "val_fraction": 0.25,
        "warmup_epochs": 0.5,
        "ema_decay": 0.9,
        "workers": 0,
        "threads": 1,
        "max_train_faces": 8,
    }
    spec = {
        "steps": [],
        "profiles": {
            "tiny": {
                "dataset": {"root": str(root), "generate": False},
                "train": {"common": common, "teacher": {"lr": 3e-4, "head_lr": 1e-3}, "student": {"lr": 2e-3, "head_lr": 2e-3, **stage_settings}},
            }
        },
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_a_fixed_split_seed_validates_every_training_seed_on_the_same_faces(tmp_path, synthetic_root):
    path = tiny_config(tmp_path, synthetic_root)

    def validation(**settings):
        return list(engine.stage_datasets(train_config("student", path, "tiny", {"loss": {}, **settings}))[1].table["image"])

    assert validation(seed=1, split_seed=0) == validation(seed=0) != validation(seed=1)


def test_config_layers_and_errors(tmp_path, synthetic_root):
    path = tiny_config(tmp_path, synthetic_root)
    cfg = train_config("student", path, "tiny", {"epochs": 5})
    assert (cfg.epochs, cfg.lr, cfg.input_size, cfg.data_root) == (5, 2e-3, 64, str(synthetic_root))
    assert cfg.teacher_checkpoint == "runs/train-tiny/teacher/best.pt"
    with pytest.raises(KeyError, match="unknown training settings"):
        train_config("student", path, "tiny", {"epochz": 5})
    with pytest.raises(ValueError, match="stage must be"):
        train_config("pupil", path, "tiny")


def test_teacher_precision_auto_follows_the_cpu_and_bf16_runs_the_teacher_in_bf16(tmp_path, synthetic_root, monkeypatch):
    path = tiny_config(tmp_path, synthetic_root, loss={"kd": 1.0})
    cpu = torch.device("cpu")
    auto = train_config("student", path, "tiny", {"teacher_precision": "auto"})
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(engine, "cpu_has_bf16", lambda native=native: native)
        assert engine.teacher_precision(auto, cpu) == expected
    assert engine.teacher_precision(train_config("student", path, "tiny", {"teacher_precision": "bf16"}), cpu) == "bf16"
    with pytest.raises(ValueError, match="teacher_precision must be one of"):
        train_config("student", path, "tiny", {"teacher_precision": "int8"})
    conv = torch.nn.Conv2d(3, 8, 3)
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        exact = conv(image)
        with engine.teacher_autocast("fp32", cpu):
            assert torch.equal(conv(image), exact)
        with engine.teacher_autocast("bf16", cpu):
            rounded = conv(image)
    assert rounded.dtype == torch.bfloat16
    error = (rounded.float() - exact).abs().max() / exact.abs().max()
    assert 0 < error < 2**-6  # bf16 keeps 8 significant bits


def w300_tree(synthetic_root, root) -> None:
    """The synthetic training faces written in 300-W's layout (68 points: a jaw added), spread
    over its six folders."""
    folders = [folder for split in ("train", "full") for folder in SPLITS[split]]
    labels = sorted(synthetic_root.glob("ivslab_facial_train/*/labels/*.pts"))
    for k, label in enumerate(labels):
        folder = root / folders[k % len(folders)]
        write_pts(folder / f"{label.stem}.pts", with_jaw(read_pts(label, 51)))
        image = next(label.parent.parent.glob(f"images/{label.stem}.*"))
        shutil.copy(image, folder / image.name)


def test_a_profile_trains_on_a_pair_tree_and_a_300w_tree_and_reports_each(tmp_path, synthetic_root):
    w300_tree(synthetic_root, tmp_path / "300w")
    sources = [{"kind": "pair", "root": str(synthetic_root)}, {"kind": "300w", "root": str(tmp_path / "300w")}]
    path = tiny_config(tmp_path, synthetic_root)
    cfg = train_config("teacher", path, "tiny", {"out_dir": str(tmp_path / "t"), "epochs": 1, "sources": sources, "max_train_faces": None})
    train_table, val_table = training_split(cfg.data_sources, cfg.scheme, cfg.val_fraction, cfg.seed)
    assert set(train_table["source"]) == set(val_table["source"]) == {"pair", "300w"}
    assert (val_table["source"] == "300w").sum() == round(sum(1 for folder in SPLITS["train"] for _ in (tmp_path / "300w" / folder).glob("*.pts")) * 0.25)
    results = train(cfg, progress=False)
    assert list(results["tests"]) == ["pair/test", "300w/common", "300w/challenge", "300w/full"]
    assert results["test"] == results["tests"]["pair/test"]
    assert results["tests"]["300w/full"]["normaliser"] == "outer_eye_corners"
    assert results["tests"]["pair/test"]["normaliser"] == "eye_centroids"
    assert set(results["val_by_source"]) == {"pair", "300w"}
    # A partial 300-W copy (AFW and HELEN's training set only) trains on what it has, tests on nothing.
    partial = tmp_path / "partial"
    for folder in ("afw", "helen/trainset"):
        shutil.copytree(tmp_path / "300w" / folder, partial / folder)
    alone = Source("300w", "300w", str(partial))
    assert set(source_train_table(alone, "ivslab51")["subset"]) == {"afw", "helen/trainset"}
    assert source_test_tables(alone, "ivslab51") == {}
    with pytest.raises(FormatError, match="no labelled faces"):
        source_train_table(Source("300w", "300w", str(tmp_path / "empty")), "ivslab51")
    with pytest.raises(ValueError, match="source names must differ"):
        profile_sources([sources[1], sources[1]], "unused")
    with pytest.raises(ValueError, match="a source is"):
        profile_sources([{"kind": "wflw98", "root": "x"}], "unused")
    assert profile_sources(None, "data/x") == [Source("pair", "auto", "data/x")]  # named for the kind its layout shows, once it exists
    assert profile_sources(None, str(partial)) == [Source("300w", "auto", str(partial))]


def test_gpu_check_says_when_there_is_no_gpu_and_measures_the_loop_on_a_cpu(tmp_path, synthetic_root, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the no-GPU message cannot be shown")
    assert gpu_check.main(["--profile", "tiny"]) == 1
    assert "no CUDA device here" in capsys.readouterr().err
    path = tiny_config(tmp_path, synthetic_root, loss={"kd": 1.0})
    row = gpu_check.stage_throughput("student", "tiny", 2, torch.device("cpu"), str(path), str(synthetic_root), warmup=1)
    assert row["images_per_second"] > 0
    assert 0 <= row["data_wait_share"] < 1
    assert row["batch"] == 4


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(tmp_path, synthetic_root):
    path = tiny_config(tmp_path, synthetic_root)
    straight = train(train_config("student", path, "tiny", {"out_dir": str(tmp_path / "a"), "loss": {}}), progress=False)
    first = train(train_config("student", path, "tiny", {"out_dir": str(tmp_path / "b"), "loss": {}, "stop_after_epochs": 1}), progress=False)
    assert first == {"stage": "student", "completed_epochs": 1, "finished": False}
    resumed = train(train_config("student", path, "tiny", {"out_dir": str(tmp_path / "b"), "loss": {}}), progress=False)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for name, value in a["model"].items():
        torch.testing.assert_close(b["model"][name], value, atol=1e-5, rtol=1e-4)
    assert resumed["val"]["nme"] == pytest.approx(straight["val"]["nme"], rel=1e-4)
    log = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert "test" in straight  # the synthetic test ground truth is evaluated at the end
    assert (tmp_path / "a" / "test_by_condition.csv").is_file()


@pytest.mark.slow
def test_the_same_run_twice_gives_identical_weights(tmp_path, synthetic_root):
    """Same seed, same machine, two data-loading workers and two threads: bit-identical weights
    (initialisation, split, batch order, augmentation and worker seeding are all seeded)."""
    path = tiny_config(tmp_path, synthetic_root)
    settings = {"loss": {}, "epochs": 1, "workers": 2, "threads": 2}
    for name in ("a", "b"):
        train(train_config("student", path, "tiny", {**settings, "out_dir": str(tmp_path / name)}), progress=False)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    different = [name for name, value in a["model"].items() if not torch.equal(value, b["model"][name])]
    assert not different, f"{len(different)} tensors differ, first {different[:3]}"


@pytest.mark.slow
def test_student_distils_from_a_trained_teacher(tmp_path, synthetic_root):
    path = tiny_config(tmp_path, synthetic_root, loss={"kd": 1.0, "feature_kd": 0.5})
    teacher = train(train_config("teacher", path, "tiny", {"out_dir": str(tmp_path / "t"), "epochs": 1}), progress=False)
    assert teacher["finished"]
    best, last = load_checkpoint(tmp_path / "t" / "best.pt"), load_checkpoint(tmp_path / "t" / "last.pt")
    assert "optimiser" in last
    assert "optimiser" not in best  # best.pt: weights for inference only
    assert (tmp_path / "t" / "best.pt").stat().st_size < 0.6 * (tmp_path / "t" / "last.pt").stat().st_size
    student = train(
        train_config(
            "student",
            path,
            "tiny",
            {"out_dir": str(tmp_path / "s"), "epochs": 1, "teacher_checkpoint": str(tmp_path / "t" / "best.pt"), "teacher_precision": "bf16"},
        ),
        progress=False,
    )
    assert student["teacher_precision"] == "bf16"
    log = json.loads((tmp_path / "s" / "metrics.jsonl").read_text().splitlines()[0])
    assert log["train"]["kd"] > 0
    assert log["train"]["feature_kd"] > 0
    assert student["finished"]


@pytest.mark.slow
def test_two_process_gloo_ddp_run_and_its_checkpoint(tmp_path, synthetic_root):
    path = tiny_config(tmp_path, synthetic_root)
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "lib.training",
        "--stage",
        "student",
        "--config",
        path,
        "--profile",
        "tiny",
        "--no-progress",
        "--set",
        f"out_dir={out}",
        "--set",
        "epochs=1",
        "--set",
        "loss={}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    model = load_model(out / "last.pt")
    assert model.kind == "student"
    log = (out / "metrics.jsonl").read_text().splitlines()
    assert len(log) == 1  # rank 0 alone logs


def test_step_benchmark_times_every_part_of_a_step_and_the_teacher_only_when_distilling(tmp_path, synthetic_root):
    parts = ["data (one batch, main process)", "student forward", "loss (forward)", "backward + optimiser step"]
    path = tiny_config(tmp_path, synthetic_root, loss={"kd": 1.0, "kd_mode": "kl"})
    table = step_times("tiny", runs=2, threads=1, config=path).set_index("part")
    assert list(table.index) == [*parts, "teacher forward (no grad, fp32)", "step (sum)"]
    assert (table["ms_median"] > 0).all()  # backward + step is derived: the whole step outlasts forward + loss
    alone = step_times("tiny", runs=2, threads=1, config=tiny_config(tmp_path, synthetic_root, loss={})).set_index("part")
    assert list(alone.index) == [*parts, "step (sum)"]


def test_student_ablation_jobs_name_every_seed_kd_first_and_pair_the_seeds_on_one_stream():
    kd_loss = {"kd": 5.0, "kd_mode": "kl", "star": 1.0}
    stream = {"split_seed": 0, "data_seed": 0}
    jobs = student_ablation_jobs(PROJECT_ROOT / "runs/x/student", {"epochs": 3}, kd_loss, [0, 4], stream)
    folders = [os.path.relpath(job.overrides["out_dir"], PROJECT_ROOT / "runs/x/student") for job in jobs]
    assert folders == [".", "seeds/seed_4/kd", "student_alone", "seeds/seed_4/alone"]
    assert [(job.label, job.overrides["seed"]) for job in jobs] == [(DISTILLED, 0), (DISTILLED, 4), (ALONE, 0), (ALONE, 4)]
    assert jobs[0].overrides["loss"] == kd_loss
    assert jobs[2].overrides["loss"] == {"kd": 0.0, "kd_mode": "kl", "star": 1.0, "feature_kd": 0.0}
    assert all(job.overrides["epochs"] == 3 and job.stage == "student" for job in jobs)
    assert [job.together for job in jobs] == ["kd", "kd", "alone", "alone"]
    # seed 4 trains on the first seed's faces and batches; the first seed's settings stay its own
    assert [{k: job.overrides.get(k) for k in stream} for job in jobs] == [{"split_seed": None, "data_seed": None}, stream] * 2
    configs = [train_config("student", overrides={k: v for k, v in job.overrides.items() if k != "out_dir"}) for job in jobs]
    assert all(cfg.stream == stream for cfg in configs)
    # without a stream (a fine-tune: every seed starts from one network) each seed draws its own, alone
    own = student_ablation_jobs(PROJECT_ROOT / "runs/x/student", {"epochs": 3}, kd_loss, [0, 4], None)
    assert [job.together for job in own] == [None] * 4
    assert [train_config("student", overrides={"seed": job.overrides["seed"]}).stream["data_seed"] for job in own] == [0, 4, 0, 4]
    assert not any({"split_seed", "data_seed"} & set(job.overrides) for job in own)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("batch_size=0", "batch_size must be in \\[1, inf\\), not 0"),
        ("epochs=0", "epochs must be in \\[1, inf\\), not 0"),
        ("input_size=-64", "input_size must be in \\[32, inf\\), not -64"),
        ("epochs=abc", "epochs must be int, not 'abc'"),
        ("lr=true", "lr must be float, not True"),
        ("val_fraction=1.0", "val_fraction must be in \\(0, 1\\)"),
    ],
)
def test_training_settings_are_checked_before_anything_is_written(tmp_path, setting, message):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=f"training setting {message}"):
        training_cli.main(["--stage", "teacher", "--set", setting, f"out_dir={out}"])
    assert not out.exists()


def test_step_trainings_reads_back_what_the_student_step_trained(tmp_path):
    student = tmp_path / "student"
    kd_loss = {"kd": 5.0, "kd_mode": "kl"}
    step = {"seed": 0, "loss": kd_loss, "input_size": 128}
    jobs = [
        *student_ablation_jobs(student, {"input_size": 128}, kd_loss, [0, 2], {"split_seed": 0, "data_seed": 0}),
        *pruning_jobs(student, step, {"head": "pyramid"}, [0.0, 0.4], {}),
        *size_jobs(student, step, [96, 128], 128),  # the step's own size trains no second student
    ]
    assert [job.label for job in jobs[-1:]] == [f"{DISTILLED} at 96 px"]
    for job in jobs:  # each training's folder as the engine leaves it
        folder = Path(job.overrides["out_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "best.pt").touch()
        config = train_config("student", overrides={k: v for k, v in job.overrides.items() if k != "out_dir"} | {"out_dir": str(folder)})
        (folder / "config.json").write_text(json.dumps(config.to_dict()))
    (student / "seeds" / "seed_5" / "kd").mkdir(parents=True)  # an unfinished training: no best.pt yet
    found = step_trainings(student)
    assert sorted(found) == sorted((job.label, job.overrides.get("seed", 0), Path(job.overrides["out_dir"])) for job in jobs)
    assert [(label, seed) for label, seed, _ in found] == [
        (ALONE, 0),
        (DISTILLED, 0),
        ("finetuned", 0),
        ("pruned40", 0),
        (f"{DISTILLED} at 96 px", 0),
        (ALONE, 2),
        (DISTILLED, 2),
    ]
    assert outputs.student_models(tmp_path / "export")[:2] == [("student", student / "best.pt"), ("student", student / "sizes" / "96" / "best.pt")]
    with pytest.raises(ValueError, match="multiples of 32"):
        size_jobs(student, step, [100], 128)


@pytest.mark.slow
def test_jobs_side_by_side_train_what_they_train_one_after_the_other(tmp_path, synthetic_root):
    """Three trainings as subprocesses, two lanes at a time (seeds 0 and 1 stepping together on
    seed 0's stream in one, seed 2 in the other), give bit for bit the weights the same three
    give trained in this process one after the other (one thread, no workers, as each lane)."""
    path = tiny_config(tmp_path, synthetic_root)
    paired = {"split_seed": 0, "data_seed": 0}

    def jobs(folder, together):
        return [
            TrainJob(
                f"seed {s}",
                "student",
                {"loss": {}, "epochs": 1, "seed": s, **(paired if s else {}), "out_dir": str(tmp_path / folder / str(s))},
                together=group,
            )
            for s, group in ((0, together), (1, together), (2, None))
        ]

    side_by_side = run_jobs(jobs("lanes", "pair"), path, "tiny", parallel=2, progress=False)
    in_turn = run_jobs(jobs("in_turn", None), path, "tiny", parallel=1, progress=False)
    assert [r["finished"] for r in side_by_side] == [True, True, True]
    assert [r["val"]["nme"] for r in side_by_side] == [r["val"]["nme"] for r in in_turn]
    assert len({r["val"]["nme"] for r in side_by_side}) == 3  # the seeds differ
    for seed in ("0", "1", "2"):
        a, b = load_checkpoint(tmp_path / "lanes" / seed / "last.pt"), load_checkpoint(tmp_path / "in_turn" / seed / "last.pt")
        assert all(torch.equal(value, b["model"][name]) for name, value in a["model"].items())
    assert [read_log_records(tmp_path / "lanes" / seed / "metrics.jsonl")[0]["networks_per_batch"] for seed in "012"] == [2, 2, 1]
    for seed in ("0", "2"):  # each lane's own output, in its first training's folder
        assert '"finished": true' in (tmp_path / "lanes" / seed / "train.log").read_text()


@pytest.mark.slow
def test_networks_trained_together_equal_each_trained_alone(tmp_path, synthetic_root):
    """Two teachers (whose head draws feature noise while training: each network's random draws
    must stay its own) stepping together on one stream of batches end bit for bit where each
    ends trained alone on that stream; trainings that would not see the same batches are refused."""
    path = tiny_config(tmp_path, synthetic_root)
    members = [{"seed": 0}, {"seed": 1, "split_seed": 0, "data_seed": 0}]

    def config(member, folder):
        return train_config("teacher", path, "tiny", {"epochs": 1, **member, "out_dir": str(tmp_path / folder / str(member["seed"]))})

    together = engine.train_together([config(member, "together") for member in members], progress=False)
    alone = [train(config(member, "alone"), progress=False) for member in members]
    assert [r["val"] for r in together] == [r["val"] for r in alone]
    for seed in ("0", "1"):
        a, b = load_checkpoint(tmp_path / "together" / seed / "last.pt"), load_checkpoint(tmp_path / "alone" / seed / "last.pt")
        assert all(torch.equal(value, b["model"][name]) for name, value in a["model"].items())
    first, second = (load_checkpoint(tmp_path / "together" / seed / "last.pt")["model"] for seed in ("0", "1"))
    assert any(not torch.equal(value, second[name]) for name, value in first.items())  # two networks, not one twice
    with pytest.raises(ValueError, match=r"differs from .* in data_seed \(0 vs 1\)"):
        engine.train_together([config(members[0], "refused"), config({"seed": 1, "split_seed": 0}, "refused")], progress=False)
    with pytest.raises(ValueError, match="input_size"):
        engine.train_together([config(members[0], "refused"), train_config("teacher", path, "tiny", {**members[1], "input_size": 96})], progress=False)
    assert not (tmp_path / "refused").exists()


@pytest.mark.slow
def test_a_group_resumes_with_one_network_an_epoch_ahead(tmp_path, synthetic_root):
    """A crash between two networks' checkpoints leaves one an epoch ahead of the other: resumed,
    the group trains the other through that epoch, then both to the end, where an uninterrupted
    group ends."""
    path = tiny_config(tmp_path, synthetic_root)
    members = [{"seed": 0}, {"seed": 1, "split_seed": 0, "data_seed": 0}]

    def configs(folder, **settings):
        return [
            train_config("student", path, "tiny", {"loss": {}, "epochs": 3, **member, **settings, "out_dir": str(tmp_path / folder / str(member["seed"]))})
            for member in members
        ]

    straight = engine.train_together(configs("straight"), progress=False)
    engine.train_together(configs("crashed", stop_after_epochs=1), progress=False)
    train(configs("crashed", stop_after_epochs=1)[0], progress=False)  # the first network's epoch 2 written, the second's not
    resumed = engine.train_together(configs("crashed"), progress=False)
    assert [r["val"] for r in resumed] == [r["val"] for r in straight]
    for seed in ("0", "1"):
        a, b = load_checkpoint(tmp_path / "crashed" / seed / "last.pt"), load_checkpoint(tmp_path / "straight" / seed / "last.pt")
        assert all(torch.equal(value, b["model"][name]) for name, value in a["model"].items())
        log = read_log_records(tmp_path / "crashed" / seed / "metrics.jsonl")
        assert [record["epoch"] for record in log] == [1, 2, 3]
    assert [record["networks_per_batch"] for record in read_log_records(tmp_path / "crashed" / "1" / "metrics.jsonl")] == [2, 1, 2]


@pytest.mark.slow
def test_a_failed_job_stops_the_others_and_is_named_with_its_log(tmp_path, synthetic_root):
    path = tiny_config(tmp_path, synthetic_root, loss={"kd": 1.0})
    missing_teacher = str(tmp_path / "no_teacher.pt")
    jobs = [
        TrainJob("slow one", "student", {"loss": {}, "epochs": 50, "out_dir": str(tmp_path / "slow")}),
        TrainJob("broken one", "student", {"teacher_checkpoint": missing_teacher, "out_dir": str(tmp_path / "broken")}),
    ]
    with pytest.raises(RuntimeError, match="training 'broken one' failed") as error:
        run_jobs(jobs, path, "tiny", parallel=2, progress=False)
    assert str(tmp_path / "broken" / "train.log") in str(error.value)
    assert "no_teacher.pt" in str(error.value)  # the log's last lines say what went wrong
    assert not (tmp_path / "slow" / "results.json").exists()  # stopped, not run to its end


@pytest.mark.slow
def test_a_run_starts_from_another_runs_weights_and_refuses_another_architecture(tmp_path, synthetic_root):
    path = tiny_config(tmp_path, synthetic_root)
    train(train_config("teacher", path, "tiny", {"out_dir": str(tmp_path / "first"), "epochs": 1}), progress=False)
    # at learning rate 0 AdamW leaves the weights alone (batch norm's running statistics still move):
    # the second run ends where the first one's EMA weights start it
    settings = {"out_dir": str(tmp_path / "second"), "epochs": 1, "lr": 0.0, "head_lr": 0.0, "init_from": str(tmp_path / "first" / "best.pt")}
    train(train_config("teacher", path, "tiny", settings), progress=False)
    first, second = load_checkpoint(tmp_path / "first" / "best.pt"), load_checkpoint(tmp_path / "second" / "last.pt")
    learned = [name for name in first["ema"]["module"] if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert all(torch.equal(first["ema"]["module"][name], second["model"][name]) for name in learned)
    unchanged = train_config("teacher", path, "tiny", {**settings, "out_dir": str(tmp_path / "third"), "init_from": None})
    train(unchanged, progress=False)
    third = load_checkpoint(tmp_path / "third" / "last.pt")
    assert any(not torch.equal(third["model"][name], second["model"][name]) for name in learned)  # without it: the seed's own start
    student = train_config("student", path, "tiny", {"out_dir": str(tmp_path / "student"), "loss": {}, "init_from": str(tmp_path / "first" / "best.pt")})
    with pytest.raises(ValueError, match=r"first/best.pt: not this model's architecture \(missing: .*unexpected"):
        train(student, progress=False)


def test_channels_last_changes_the_layout_of_a_training_step_not_its_arithmetic(tmp_path, synthetic_root):
    """The engine's network and batches are channels-last (NHWC strides) unless asked otherwise;
    a training step from the same weights on the same batch gives the same loss and gradients as
    in the contiguous layout, up to float rounding (not the updated weights: AdamW's first step
    moves each weight by about the learning rate times the sign of its gradient, which rounding
    flips where a gradient is near 0)."""
    path = tiny_config(tmp_path, synthetic_root)
    cpu = torch.device("cpu")
    updated = {}
    for channels_last in (True, False):
        cfg = train_config("student", path, "tiny", {"loss": {}, "channels_last": channels_last})
        torch.manual_seed(0)
        model = engine._network(cfg, cpu, None)
        convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1) and m.weight.shape[1] > 1]
        assert convs  # not depthwise: a (C, 1, k, k) weight is contiguous in both layouts
        assert all(w.is_contiguous(memory_format=torch.channels_last) == channels_last for w in convs)
        train_set = engine.stage_datasets(cfg)[0]
        batch = torch.utils.data.default_collate([train_set[i] for i in range(4)])
        batch["image"] = batch["image"].contiguous(memory_format=engine.memory_format(cfg))
        terms = engine.training_step(model, None, engine.optimisation(cfg, model, None, cpu), batch, cfg, cpu)
        updated[channels_last] = (float(terms["total"]), {k: p.grad.contiguous() for k, p in model.named_parameters() if p.grad is not None})
    assert updated[True][0] == pytest.approx(updated[False][0], rel=1e-5)
    assert updated[True][1].keys() == updated[False][1].keys()
    largest = max(float(gradient.abs().max()) for gradient in updated[False][1].values())
    for name, gradient in updated[False][1].items():  # some are 0 but for rounding (a bias before a batch norm)
        bound = 1e-3 * float(gradient.abs().max()) + 1e-6 * largest
        assert float((updated[True][1][name] - gradient).abs().max()) <= bound, name
