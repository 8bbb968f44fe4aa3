"""Synthetic pretraining for a fine-tune: a network of another profile (the default's, trained on
the synthetic set) that starts a training on real faces, reused from any earlier run whose
recorded settings match, otherwise trained first.

A training's identity (:func:`training_identity`) is its ``config.json`` less what only places
or paces it (:data:`RUN_LOCAL`: folders, threads, resumption), with its data folder replaced by
the data's identity (the synthetic generator's recorded parameters, else the folder) and its
teacher's checkpoint by that teacher's own identity: two trainings with equal identities trained
the same network on the same faces, whichever run folder holds them and however many threads
ran them (float reductions aside).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from lib.data.synthetic.generate import generated_params
from lib.paths import resolve
from lib.training.config import TrainConfig, distils, profile_dataset, train_config
from lib.training.engine import train
from lib.training.jobs import SCRATCH, TrainJob, alone_loss

RUN_LOCAL = ("out_dir", "threads", "workers", "resume", "stop_after_epochs", "data_root", "teacher_checkpoint")


@cache
def dataset_identity(data_root: str) -> object:
    """What a data folder holds: the generator's parameters where it recorded them, else the
    resolved folder."""
    return generated_params(Path(data_root)) or str(Path(data_root).resolve())


def training_identity(config: dict) -> dict:
    """A training config (``TrainConfig.to_dict()`` or a ``config.json``) as what it trains:
    module docstring."""
    identity = {key: value for key, value in config.items() if key not in RUN_LOCAL}
    identity["data"] = dataset_identity(str(resolve(config["data_root"])))
    teacher = config.get("teacher_checkpoint")
    if teacher and config["stage"] == "student":
        teacher_config = resolve(teacher).parent / "config.json"
        identity["teacher"] = training_identity(json.loads(teacher_config.read_text())) if teacher_config.is_file() else str(resolve(teacher))
    return identity


def finished_training(folder: Path) -> bool:
    """A training folder whose run ended (``results.json`` says finished) with its ``best.pt``."""
    results = folder / "results.json"
    return (folder / "best.pt").is_file() and results.is_file() and json.loads(results.read_text()).get("finished", False)


def find_training(cfg: TrainConfig, search: Iterable[Path]) -> Path | None:
    """The ``best.pt`` of the first finished training under the ``search`` folders (every
    ``config.json`` below them, in path order) whose identity equals ``cfg``'s; None if none."""
    wanted = training_identity(cfg.to_dict())
    for folder in dict.fromkeys(resolve(path) for path in search):
        for config_file in sorted(folder.glob("**/config.json")) if folder.is_dir() else []:
            try:
                recorded = json.loads(config_file.read_text())
                matches = recorded.get("stage") == cfg.stage and finished_training(config_file.parent) and training_identity(recorded) == wanted
            except (OSError, ValueError, KeyError):
                continue  # not a training's record
            if matches:
                return config_file.parent / "best.pt"
    return None


def pretrained_checkpoint(stage: str, overrides: dict, config: str | Path, profile: str, out_dir: Path, search: Iterable[Path]) -> Path:
    """The ``best.pt`` of ``profile``'s ``stage`` training with ``overrides`` (e.g. a student's
    input size, loss and teacher): found under ``search`` (:func:`find_training`), else trained
    now into ``out_dir`` (the profile's synthetic set generated first if absent; a training
    interrupted there resumes)."""
    cfg = train_config(stage, config, profile, {**overrides, "out_dir": str(out_dir)})
    found = find_training(cfg, search)
    if found is not None:
        return found
    dataset = profile_dataset(config, profile)
    if dataset.generate:
        dataset.render(resolve(cfg.data_root))
    train(cfg)
    return out_dir / "best.pt"


def pretrained_starts(jobs: Iterable[TrainJob], step_size: int, config: str | Path, profile: str, out_root: Path, search: Iterable[Path]) -> list[TrainJob]:
    """A fine-tuning student step's ``jobs``, each started (``init_from``) from its counterpart in
    ``profile``: that profile's student at the job's input size (``step_size`` where the job sets
    none), with KD from that profile's teacher where the job distils, alone where it does not, on
    that profile's seed (every seed of the fine-tune starts from the same network). Each is found
    or trained by :func:`pretrained_checkpoint` (into ``out_root/student_<kd|alone>_<size>``, the
    teacher into ``out_root/teacher``). Jobs that already start from a checkpoint (pruning) and
    the from-scratch control keep their start."""
    teacher = pretrained_checkpoint("teacher", {}, config, profile, out_root / "teacher", search)
    pretrained_loss = train_config("student", config, profile).loss
    started = []
    for job in jobs:
        if job.label == SCRATCH or job.overrides.get("init_from"):
            started.append(job)
            continue
        size = int(job.overrides.get("input_size", step_size))
        kd = distils(job.overrides["loss"])
        overrides = {"teacher_checkpoint": str(teacher), "input_size": size, "loss": pretrained_loss if kd else alone_loss(pretrained_loss)}
        checkpoint = pretrained_checkpoint("student", overrides, config, profile, out_root / f"student_{'kd' if kd else 'alone'}_{size}", search)
        started.append(TrainJob(job.label, job.stage, {**job.overrides, "init_from": str(checkpoint)}, job.after))
    return started
