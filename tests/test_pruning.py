"""Structured pruning: a narrower network that computes what its kept channels computed, saved
and rebuilt from its checkpoint, and fine-tuned by the training engine from a trained one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lib.models.checkpoint import load_checkpoint, load_model
from lib.models.pruning import prune_channels, prune_network, reshape_like
from lib.models.registry import build_model
from lib.pipeline import outputs
from lib.training.config import train_config
from lib.training.engine import train
from lib.training.jobs import TrainJob, pruning_jobs, run_jobs
from tests.test_training import tiny_config

STUDENT = {"kind": "student", "backbone": "mobilenetv4_conv_small", "head": "pyramid", "head_channels": 32, "input_size": 64}


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_pruning_narrows_every_layer_and_keeps_the_outputs():
    torch.manual_seed(0)
    model = build_model(STUDENT).eval()
    full = parameters(model)
    widths = model.backbone.pyramid_channels
    prune_channels(model, 0.5)
    # Half the channels of a layer and of its input leave about a quarter of its weights.
    assert 0.2 * full < parameters(model) < 0.4 * full
    assert all(pruned < width for pruned, width in zip(model.backbone.pyramid_channels, widths, strict=True))
    outputs = model(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert outputs["heatmap"].shape == (2, 51, 16, 16)
    assert outputs["edgemap"].shape[1] == 8
    assert outputs["landmarks"].shape == (2, 51, 2)
    with pytest.raises(ValueError, match="CNN backbones .* not mobilevitv2_050"):  # torch-pruning does not finish tracing it
        build_model({"kind": "student", "input_size": 64, "prune_ratio": 0.5})


def test_pruning_keeps_the_channels_of_largest_weights():
    """Eight channels whose weights differ only in scale (channel c: c + 1), read alike by the
    next layer: pruning half keeps channels 4-7, their weights untouched, and the kept ones
    still compute what they did."""
    torch.manual_seed(0)
    first, second = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.randn(1, 3, 3, 3).expand(8, 3, 3, 3) * torch.arange(1.0, 9.0).view(8, 1, 1, 1))
        second.weight.fill_(0.1)
    network = nn.Sequential(first, nn.BatchNorm2d(8), nn.ReLU(), second).eval()
    original = first.weight.detach().clone()
    prune_network(network, torch.zeros(1, 3, 8, 8), 0.5, keep=[second])
    assert (first.out_channels, second.in_channels, second.out_channels) == (4, 4, 2)
    torch.testing.assert_close(first.weight, original[4:], rtol=0, atol=0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        prune_network(network, torch.zeros(1, 3, 8, 8), 0.0, keep=[second])


def test_a_pruned_state_dict_rebuilds_the_network_exactly():
    torch.manual_seed(1)
    pruned = build_model(STUDENT).eval()
    prune_channels(pruned, 0.4)
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    fresh = build_model(STUDENT).eval()
    reshape_like(fresh, pruned.state_dict())
    fresh.load_state_dict(pruned.state_dict())
    assert parameters(fresh) == parameters(pruned)
    assert fresh.backbone.pyramid_channels == pruned.backbone.pyramid_channels
    with torch.no_grad():
        torch.testing.assert_close(fresh(image)["landmarks"], pruned(image)["landmarks"], rtol=0, atol=0)
    unknown = nn.Sequential(nn.LayerNorm(8))
    with pytest.raises(ValueError, match="LayerNorm with pruned weights"):
        reshape_like(unknown, {"0.weight": torch.ones(4), "0.bias": torch.ones(4)})


@pytest.mark.slow
def test_the_engine_prunes_a_trained_student_fine_tunes_it_and_resumes(tmp_path, synthetic_root):
    path = tiny_config(tmp_path, synthetic_root, model={k: v for k, v in STUDENT.items() if k not in ("kind", "input_size")})
    train(train_config("student", path, "tiny", {"out_dir": str(tmp_path / "trained"), "loss": {}, "epochs": 1}), progress=False)
    trained = load_model(tmp_path / "trained" / "best.pt")
    settings = {"out_dir": str(tmp_path / "pruned"), "loss": {}, "epochs": 2, "init_from": str(tmp_path / "trained" / "best.pt")}
    settings["model"] = {**load_checkpoint(tmp_path / "trained" / "best.pt")["config"]["model"], "prune_ratio": 0.5}
    train(train_config("student", path, "tiny", {**settings, "stop_after_epochs": 1}), progress=False)  # interrupted after one epoch
    pruned = load_model(tmp_path / "pruned" / "best.pt")
    assert parameters(pruned) < 0.4 * parameters(trained)
    assert pruned.backbone.pyramid_channels != trained.backbone.pyramid_channels
    # The second call resumes from last.pt: the network is rebuilt in its pruned shapes first.
    train(train_config("student", path, "tiny", settings), progress=False)
    assert load_checkpoint(tmp_path / "pruned" / "last.pt")["epoch"] == 2
    assert parameters(load_model(tmp_path / "pruned" / "last.pt")) == parameters(pruned)
    # Training on from the pruned checkpoint under the same config keeps its shapes: it is not pruned again.
    tuned = {**settings, "out_dir": str(tmp_path / "tuned"), "init_from": str(tmp_path / "pruned" / "best.pt"), "epochs": 1}
    train(train_config("student", path, "tiny", tuned), progress=False)
    assert parameters(load_model(tmp_path / "tuned" / "best.pt")) == parameters(pruned)
    with pytest.raises(ValueError, match="prune_ratio prunes trained weights: give init_from"):
        train(train_config("student", path, "tiny", {**settings, "out_dir": str(tmp_path / "scratch"), "init_from": None}), progress=False)
    # ImageNet-style backbone weights are trained weights too: the network is pruned before it trains.
    torch.save(trained.backbone.body.state_dict(), tmp_path / "backbone.pth")
    imagenet = {**settings, "out_dir": str(tmp_path / "imagenet"), "init_from": None, "epochs": 1}
    imagenet["model"] = {**settings["model"], "pretrained": str(tmp_path / "backbone.pth")}
    train(train_config("student", path, "tiny", imagenet), progress=False)
    assert parameters(load_model(tmp_path / "imagenet" / "best.pt")) == parameters(pruned)


def test_pruning_jobs_fine_tune_the_steps_student_after_it_in_folders_the_export_step_finds(tmp_path):
    run = tmp_path / "run"
    model = {"backbone": "mobilenetv4_conv_small", "head": "pyramid"}
    jobs = pruning_jobs(run / "student", {"seed": 3, "loss": {"kd": 5.0}, "epochs": 7}, model, [0.0, 0.4], {"epochs": 4, "lr": 1e-3})
    assert [job.label for job in jobs] == ["finetuned", "pruned40"]
    assert all(job.after == str(run / "student") for job in jobs)
    assert [job.overrides["model"]["prune_ratio"] for job in jobs] == [None, 0.4]
    assert all(job.overrides["init_from"] == str(run / "student" / "best.pt") for job in jobs)
    assert all((job.overrides["epochs"], job.overrides["lr"], job.overrides["seed"], job.overrides["loss"]) == (4, 1e-3, 3, {"kd": 5.0}) for job in jobs)
    for job in jobs:  # what the student step trains is what the export step exports
        Path(job.overrides["out_dir"], "best.pt").parent.mkdir(parents=True)
        Path(job.overrides["out_dir"], "best.pt").touch()
    assert outputs.student_models(run / "export") == [
        ("student", run / "student" / "best.pt"),
        ("finetuned", run / "student" / "pruned" / "finetuned" / "best.pt"),
        ("pruned40", run / "student" / "pruned" / "pruned40" / "best.pt"),
    ]
    for bad in ([0.4, 0.4], [1.0], [-0.1]):
        with pytest.raises(ValueError, match="prune ratios must be distinct and in"):
            pruning_jobs(run / "student", {}, model, bad, {})


@pytest.mark.slow
def test_pruned_students_train_in_lanes_once_the_student_they_start_from_has_finished(tmp_path, synthetic_root):
    model = {k: v for k, v in STUDENT.items() if k not in ("kind", "input_size")}
    path = tiny_config(tmp_path, synthetic_root, model=model, loss={})
    student = TrainJob("student", "student", {"epochs": 1, "out_dir": str(tmp_path / "student")})
    pruned = pruning_jobs(tmp_path / "student", {}, model, [0.0, 0.5], {"epochs": 1})
    with pytest.raises(ValueError, match="job 'finetuned' waits for .*student, which no earlier job trains"):
        run_jobs([*pruned, student], path, "tiny", parallel=2, progress=False)
    # Two lanes, three jobs: a lane free at the start must not take a job whose checkpoint is not there yet.
    results = run_jobs([student, *pruned], path, "tiny", parallel=2, progress=False)
    assert [r["finished"] for r in results] == [True, True, True]
    trained, control, narrower = (load_model(tmp_path / "student" / folder / "best.pt") for folder in ("", "pruned/finetuned", "pruned/pruned50"))
    assert parameters(control) == parameters(trained)
    assert parameters(narrower) < 0.4 * parameters(trained)
    # A pruned run is not resumed on top of another starting checkpoint: the student retrained, it refuses.
    train(train_config("student", path, "tiny", {"epochs": 1, "seed": 1, "resume": False, "out_dir": str(tmp_path / "student")}), progress=False)
    with pytest.raises(ValueError, match="init_from fingerprint"):
        train(train_config("student", path, "tiny", pruned[1].overrides), progress=False)
