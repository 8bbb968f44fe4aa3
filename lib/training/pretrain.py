"""Synthetic pretraining for a fine-tune: a network of another profile (the default's, trained on
the synthetic set) that starts a training on real faces, reused from any earlier run whose
recorded settings match, otherwise trained first.

A training's identity (:func:`training_identity`) is its ``config.json`` less what only places
or paces it (:data:`RUN_LOCAL`: folders, threads, resumption), with its data folder replaced by
the data's identity (:func:`~lib.training.provenance.dataset_identity`: the synthetic generator's
parameters, else the folder; a finished training's as it recorded them when it started, in its
``results.json``) and its teacher's checkpoint by that teacher's own identity: two trainings with
equal identities trained the same network on the same faces, whichever run folder holds them and
however many threads ran them (float reductions aside). A record that names no data (an older
training's) is never reused: what it trained on is unknown.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from lib.paths import resolve
from lib.training.config import TrainConfig, distils, profile_dataset, train_config
from lib.training.engine import train
from lib.training.jobs import SCRATCH, TrainJob, alone_loss
from lib.training.provenance import dataset_identity

RUN_LOCAL = ("out_dir", "threads", "workers", "resume", "stop_after_epochs", "data_root", "teacher_checkpoint")


def training_identity(config: dict, data: object) -> dict:
    """A training's settings (``TrainConfig.to_dict()`` or a ``config.json``) and the identity of
    the data it trains on (:func:`~lib.training.provenance.dataset_identity`) as what it trains:
    module docstring."""
    settings = {**TrainConfig(stage=config["stage"]).to_dict(), **config}  # a record made before a setting existed ran at its default
    identity = {key: value for key, value in settings.items() if key not in RUN_LOCAL}
    identity["data"] = data
    teacher = config.get("teacher_checkpoint")
    if teacher and config["stage"] == "student":
        identity["teacher"] = recorded_identity(resolve(teacher).parent) or str(resolve(teacher))
    return identity


def recorded_identity(folder: Path) -> dict | None:
    """The :func:`training_identity` of the finished training in ``folder`` (its ``best.pt``
    there, its ``results.json`` saying it finished) from its ``config.json`` and the data its
    ``results.json`` says it started on; None for anything else, and for a record that names no
    data (what it trained on is unknown)."""
    try:
        config = json.loads((folder / "config.json").read_text())
        results = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(config, dict) and isinstance(results, dict) and results.get("finished") and "data" in results and (folder / "best.pt").is_file()):
        return None
    return training_identity(config, results["data"])


def find_training(cfg: TrainConfig, search: Iterable[Path]) -> Path | None:
    """The ``best.pt`` of the first finished training under the ``search`` folders (every
    ``config.json`` below them, in path order) whose recorded identity equals ``cfg``'s on the
    data its ``data_root`` holds now; None if none."""
    wanted = training_identity(cfg.to_dict(), dataset_identity(resolve(cfg.data_root)))
    for folder in dict.fromkeys(resolve(path) for path in search):
        for config_file in sorted(folder.glob("**/config.json")) if folder.is_dir() else []:
            try:
                matches = recorded_identity(config_file.parent) == wanted
            except (KeyError, TypeError):
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
        started.append(dataclasses.replace(job, overrides={**job.overrides, "init_from": str(checkpoint)}))
    return started
