"""The training engine shared by both stages: ``train(TrainConfig) -> results``, and
``train_together([TrainConfig, ...])``: several networks stepping on one stream of batches (the
seeds of an ablation: each batch loaded, and the teacher run on it, once for all of them).

Teacher: the model's own losses. Student: the same losses plus distillation from a frozen
teacher (eval mode, no gradients) that sees the same augmented batch, at the student's input
size (a student may train at another size than its teacher); the student's output
convs start from the teacher's. AdamW with a higher learning rate for the head, linear warm-up
then cosine decay per step, EMA weights (validated and kept), gradient clipping, autocast on a
GPU. Every epoch: validation NME/FR/AUC/per part on the EMA weights, one JSON line in
``metrics.jsonl``, ``last.pt`` (atomic) and ``best.pt`` (weights only) when validation NME improves. An
interrupted run resumes from ``last.pt`` where it stopped. AdamW runs fused. Under torchrun, DDP with a
DistributedSampler; rank 0 validates, logs and writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from lib.data.augment import AugmentConfig
from lib.data.dataset import LandmarkDataset
from lib.data.sources import source_of, source_test_tables
from lib.data.splits import split_seed_of, training_split
from lib.formats.table import points_array
from lib.io import atomic_save_csv, atomic_save_npy, atomic_write_text
from lib.losses.criterion import LandmarkCriterion, LossWeights
from lib.metrics import summarise
from lib.models import build_model
from lib.models.checkpoint import inference_state, init_from_checkpoint, load_checkpoint, load_model, save_checkpoint
from lib.models.pruning import prune_channels, reshape_like
from lib.models.registry import init_outputs_from
from lib.paths import resolve
from lib.progress import note, track
from lib.schemes import load_scheme
from lib.training.config import TrainConfig
from lib.training.distributed import Distributed, all_reduce_mean, cleanup_distributed, setup_distributed
from lib.training.ema import ModelEMA
from lib.training.evaluate import evaluate
from lib.training.provenance import dataset_identity, run_provenance
from lib.training.rng import rng_state, set_rng_state

POSTFIX_EVERY = 10


def param_groups(model: nn.Module, extra: nn.Module, lr: float, head_lr: float, weight_decay: float) -> list[dict]:
    """Backbone at ``lr``, head and ``extra`` (trainable loss parts) at ``head_lr``; no weight
    decay on biases and normalisation weights (1-d tensors)."""
    groups = []
    for modules, rate in (([model.backbone], lr), ([model.head, extra], head_lr)):
        params = [p for m in modules for p in m.parameters() if p.requires_grad]
        groups.append({"params": [p for p in params if p.ndim > 1], "lr": rate, "weight_decay": weight_decay})
        groups.append({"params": [p for p in params if p.ndim <= 1], "lr": rate, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def warmup_cosine(warmup_steps: int, total_steps: int):
    """Multiplier of the base learning rate at each step: linear warm-up, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "off" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def memory_format(cfg: TrainConfig) -> torch.memory_format:
    """The layout of the trained network's (and the teacher's) weights and of each batch's images:
    channels-last (NHWC strides) cut the default student's step and the teacher's forward by a
    quarter on a 2-core CPU (``python -m lib.training.step_benchmark``)."""
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


def teacher_precision(cfg: TrainConfig, device: torch.device) -> str:
    """The precision of the frozen teacher's forward pass in KD: ``fp32``, ``bf16`` (or ``fp16``
    on a GPU without bf16).

    On a GPU the teacher follows ``amp`` like the student. On the CPU, ``auto`` picks bf16 where
    the CPU has bf16 instructions (AVX512-BF16 or AMX): there it cut the default teacher's forward
    by a third (README, Training); elsewhere bf16 is emulated and slower, so auto keeps fp32."""
    if device.type == "cuda":
        return "fp32" if cfg.amp == "off" else "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if cfg.teacher_precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return cfg.teacher_precision


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX tiles)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def teacher_autocast(precision: str, device: torch.device):
    """The context the teacher's forward runs in: CPU bf16 autocast for ``bf16`` on the CPU (on
    a GPU the step's :func:`autocast` already covers it)."""
    if precision == "bf16" and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class Optimisation:
    """What an optimiser step uses: the loss (with its learnable parts), AdamW over the model and
    the loss (the head at its own learning rate), the AMP gradient scaler (active for fp16
    autocast on a GPU only)."""

    criterion: LandmarkCriterion
    optimiser: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


def optimisation(cfg: TrainConfig, model: nn.Module, teacher: nn.Module | None, device: torch.device) -> Optimisation:
    """The :class:`Optimisation` of ``model`` (distilled from ``teacher`` when one is given).
    AdamW runs fused (one kernel over all parameters: the same update, a quarter of the
    per-tensor loop's time for the default student on a CPU)."""
    criterion = LandmarkCriterion(LossWeights(**cfg.loss), model.backbone.channels, teacher.backbone.channels if teacher is not None else None).to(device)
    optimiser = torch.optim.AdamW(param_groups(model, criterion, cfg.lr, cfg.head_lr, cfg.weight_decay), fused=True)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp != "off" and not torch.cuda.is_bf16_supported())
    return Optimisation(criterion, optimiser, scaler)


def teacher_forward(teacher: nn.Module, precision: str, batch: dict, cfg: TrainConfig, device: torch.device) -> dict[str, torch.Tensor]:
    """The frozen teacher's outputs on a batch already on ``device`` (no gradients, in its
    ``precision``), as float32: what every network distilled on this batch regresses."""
    with torch.no_grad(), autocast(cfg, device), teacher_autocast(precision, device):
        return {k: v.float() for k, v in teacher(batch["image"]).items()}


def training_step(
    network: nn.Module, teacher_outputs: dict | None, step: Optimisation, batch: dict, cfg: TrainConfig, device: torch.device
) -> dict[str, torch.Tensor]:
    """One optimiser step on a batch already on ``device``: the forward pass under autocast, the
    loss (with distillation towards ``teacher_outputs``, :func:`teacher_forward`'s on this
    batch, when given), backward through the AMP scaler, gradient clipping and the update.
    Returns the loss terms (tensors: reading them syncs a GPU)."""
    criterion, optimiser, scaler = step.criterion, step.optimiser, step.scaler
    with autocast(cfg, device):
        outputs = network(batch["image"])
        loss, terms = criterion({k: v.float() for k, v in outputs.items()}, batch, teacher_outputs)
    optimiser.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimiser)
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_([p for g in optimiser.param_groups for p in g["params"]], cfg.grad_clip)
    scaler.step(optimiser)
    scaler.update()
    return terms


def seed_everything(seed: int) -> None:
    """Seed the global RNGs (torch: initialisation, feature noise, DataLoader workers)."""
    random.seed(seed)
    torch.manual_seed(seed)


def stage_datasets(cfg: TrainConfig) -> tuple[LandmarkDataset, LandmarkDataset, dict[str, LandmarkDataset]]:
    """(train with augmentation, validation, ``{test set name: faces}``) datasets of a stage: the
    seeded split of each source's training faces, and the test sets of each source that has them
    (:mod:`lib.data.sources`; the first is the stage's headline test)."""
    scheme = load_scheme(cfg.scheme)
    train_table, val_table = training_split(cfg.data_sources, cfg.scheme, cfg.val_fraction, split_seed_of(vars(cfg)), cfg.skip_bad_faces)
    if cfg.max_train_faces:
        train_table = train_table.iloc[: cfg.max_train_faces]
    train_set = LandmarkDataset(train_table, scheme, cfg.input_size, AugmentConfig(**cfg.augment), seed=cfg.stream["data_seed"])
    val_set = LandmarkDataset(val_table, scheme, cfg.input_size)
    tests = {
        name: LandmarkDataset(table, scheme, cfg.input_size) for source in cfg.data_sources for name, table in source_test_tables(source, cfg.scheme).items()
    }
    return train_set, val_set, tests


def _teacher(cfg: TrainConfig, device: torch.device) -> nn.Module | None:
    """The frozen teacher, when the student distils (a KD weight above 0); else None."""
    if cfg.stage != "student" or not cfg.distils:
        return None
    teacher = load_model(resolve(cfg.teacher_checkpoint), input_size=cfg.input_size).to(device, memory_format=memory_format(cfg))  # it sees the student's crops
    if teacher.scheme_name != cfg.scheme:
        raise ValueError(f"teacher ({teacher.scheme_name}) must match the student's scheme ({cfg.scheme})")
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


# Settings that may change between an interrupted run and its resumption: they do not change
# what is trained (how many epochs this invocation runs, whether to resume, CPU parallelism).
RESUME_MAY_CHANGE = frozenset({"stop_after_epochs", "resume", "threads", "workers"})


def _check_resumable(path: Path, state: dict, cfg: TrainConfig, provenance: dict) -> None:
    """Refuse to continue ``path`` under other settings, data or teacher than it was started
    with (:mod:`lib.training.provenance`), naming what changed."""
    saved, requested = state["config"], cfg.to_dict()
    changed = [
        f"{k}: {saved.get(k)!r} -> {requested.get(k)!r}"
        for k in sorted(set(saved) | set(requested))
        if k not in RESUME_MAY_CHANGE and saved.get(k) != requested.get(k)
    ]
    before = state.get("provenance", {})
    changed += [f"{k} fingerprint {str(before.get(k))[:12]} -> {str(provenance[k])[:12]}" for k in sorted(provenance) if before.get(k) != provenance[k]]
    if changed:
        raise ValueError(
            f"{path} was trained from other settings or inputs ({'; '.join(changed)}): set resume=false to start this run afresh, or use another out_dir"
        )


def _log(out_dir: Path, record: dict) -> None:
    """Append one epoch's record to ``metrics.jsonl``; it is written before that epoch's
    checkpoint, so a crash in between leaves a row that :func:`_truncate_log` drops on resume."""
    with open(out_dir / "metrics.jsonl", "a") as log:
        log.write(json.dumps(record) + "\n")


def _truncate_log(out_dir: Path, epoch: int) -> None:
    """Keep the ``metrics.jsonl`` rows of epochs up to ``epoch`` (the resumed checkpoint's):
    rows logged after it, and a torn last line, belong to epochs that will run again."""
    path = out_dir / "metrics.jsonl"
    if path.is_file():
        kept = [json.dumps(record) + "\n" for record in read_log_records(path) if record["epoch"] <= epoch]
        atomic_write_text(path, "".join(kept))


def read_log_records(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl``; a torn last line (a crash mid-write) is skipped, a
    broken line elsewhere is an error naming the file and line."""
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a JSON record ({error.msg})") from error
    return records


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Train one stage; returns the results (also written to ``out_dir/results.json``): a finished
    training's hold ``data``, the identity of the data it started on
    (:func:`~lib.training.provenance.dataset_identity`)."""
    return train_together([cfg], progress)[0]


# What networks trained together may differ in: each one's initialisation seed, folder, loss and
# starting weights. Everything else (the data and its stream, the schedule, the teacher) is shared.
MEMBER_SETTINGS = frozenset({"seed", "out_dir", "loss", "init_from"})


def train_together(cfgs: Sequence[TrainConfig], progress: bool = True) -> list[dict]:
    """Train several networks of one stage on one stream of batches: each batch is loaded once,
    the frozen teacher runs on it once (when any of them distils), and each network takes its
    own optimiser step on it in turn. ``cfgs`` may differ only in :data:`MEMBER_SETTINGS`. Each
    network gets what :func:`train` gives it alone, bit for bit (its random draws come from its
    own generator state, kept between its steps): its folder, files and results, returned in
    ``cfgs`` order. Each epoch's record in its ``metrics.jsonl`` gives the stream's time and
    ``networks_per_batch``, how many networks stepped on those batches."""
    check_together(cfgs)
    dist = setup_distributed()
    try:
        return _train_together(list(cfgs), dist, progress)
    finally:
        cleanup_distributed(dist)


def check_together(cfgs: Sequence[TrainConfig]) -> None:
    """At least one training; each in its own folder; all sharing every setting but
    :data:`MEMBER_SETTINGS` (the split and data seeds compared as resolved), naming any that differ."""
    if not cfgs:
        raise ValueError("no training given")
    folders = [str(resolve(cfg.out_dir)) for cfg in cfgs]
    if len(set(folders)) < len(folders):
        raise ValueError(f"trainings stepped together need an out_dir each, got {folders}")
    shared = [{**{k: v for k, v in cfg.to_dict().items() if k not in MEMBER_SETTINGS}, **cfg.stream} for cfg in cfgs]
    for cfg, settings in zip(cfgs[1:], shared[1:], strict=True):
        differ = [f"{k} ({shared[0][k]!r} vs {settings[k]!r})" for k in sorted(settings) if settings[k] != shared[0][k]]
        if differ:
            raise ValueError(
                f"trainings stepped together share their batches and schedule: {cfg.out_dir} differs from {cfgs[0].out_dir} in {', '.join(differ)}"
            )


@dataclass
class _Training:
    """One network's moving parts: its settings, the network (``model``, wrapped as ``network``
    under DDP), its EMA, the criterion and optimiser with its gradient scaler, the learning-rate
    schedule, what it was trained from (``provenance``), the epochs it has completed, its best
    validation NME, and the global random generators' state between its steps (``rng``)."""

    cfg: TrainConfig
    model: nn.Module
    ema: ModelEMA
    step: Optimisation
    scheduler: torch.optim.lr_scheduler.LambdaLR
    provenance: dict
    rng: dict
    epoch: int = 0
    best_nme: float = math.inf
    network: nn.Module | None = None  # the model, under DDP wrapped: set once the weights are final (resumed)

    @property
    def out_dir(self) -> Path:
        return resolve(self.cfg.out_dir)

    def state(self) -> dict:
        """Everything ``last.pt`` holds to resume after the completed epochs."""
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimiser": self.step.optimiser.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "criterion": self.step.criterion.state_dict(),
            "epoch": self.epoch,
            "best_nme": self.best_nme,
            "rng": self.rng,
            "config": self.cfg.to_dict(),
            "model_config": self.cfg.model_config,
            "provenance": self.provenance,
        }

    def resume(self, state: dict) -> None:
        """Continue from ``last.pt``'s ``state``."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.step.optimiser.load_state_dict(state["optimiser"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step.criterion.load_state_dict(state["criterion"])
        self.epoch, self.best_nme, self.rng = state["epoch"], state["best_nme"], state["rng"]

    def train_step(self, batch: dict, teacher_outputs: dict | None, device: torch.device) -> dict[str, torch.Tensor]:
        """:func:`training_step` (distilling when this network does), the schedule and the EMA,
        with the global random generators in this network's state."""
        set_rng_state(self.rng)
        terms = training_step(self.network, teacher_outputs if self.cfg.distils else None, self.step, batch, self.cfg, device)
        self.scheduler.step()
        self.ema.update(self.model)
        self.rng = rng_state()
        return terms


def _network(cfg: TrainConfig, device: torch.device, state: dict | None) -> nn.Module:
    """The model to train: built (pretrained weights that cannot be had fail before any data is
    read), started from ``init_from`` (a pruned checkpoint with its own shapes), and pruned (a
    trained network, or one with ImageNet weights, made narrower, then trained) or shaped like the
    resumed ``state``'s."""
    model = build_model(cfg.model_config)
    started_pruned = bool(cfg.init_from) and init_from_checkpoint(model, resolve(cfg.init_from))
    ratio = cfg.model_config.get("prune_ratio")
    if ratio and state is not None:
        reshape_like(model, state["model"])
    elif ratio and not started_pruned:  # a pruned starting checkpoint is the narrower network itself
        if not (cfg.init_from or cfg.model_config.get("pretrained")):
            raise ValueError("model.prune_ratio prunes trained weights: give init_from (a checkpoint) or the model's pretrained weights")
        prune_channels(model, ratio)
    return model.to(device, memory_format=memory_format(cfg))


def _loader(cfg: TrainConfig, dist: Distributed, train_set: LandmarkDataset) -> tuple[DistributedSampler, DataLoader]:
    """This rank's shuffled share of the training faces in batches (the last partial batch dropped),
    in the order of the training's data seed."""
    sampler = DistributedSampler(train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=cfg.stream["data_seed"], drop_last=True)
    per_rank_batch = max(1, cfg.batch_size // dist.world_size)
    loader = DataLoader(train_set, batch_size=per_rank_batch, sampler=sampler, num_workers=cfg.workers, drop_last=True, persistent_workers=False)
    if len(loader) == 0:
        raise ValueError(f"{len(train_set)} training faces are fewer than one batch of {cfg.batch_size}")
    return sampler, loader


def _member(cfg: TrainConfig, teacher: nn.Module | None, datasets: tuple[LandmarkDataset, LandmarkDataset], steps_per_epoch: int, device, dist) -> _Training:
    """One network of a training, built from its seed (its output convs copied from the teacher's
    when it distils and asks for it; its criterion, optimiser, warm-up then cosine per step, EMA),
    or resumed from its ``last.pt`` (refused under other settings or inputs); its ``config.json``
    written, a fresh start's old ``metrics.jsonl`` removed."""
    seed_everything(cfg.seed + dist.rank)
    out_dir = resolve(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path = out_dir / "last.pt"
    state = load_checkpoint(last_path) if cfg.resume and last_path.is_file() else None  # what a resumed run continues
    model = _network(cfg, device, state)
    if cfg.distils and cfg.init_outputs_from_teacher:
        init_outputs_from(model, teacher)
    step = optimisation(cfg, model, teacher if cfg.distils else None, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(step.optimiser, warmup_cosine(int(cfg.warmup_epochs * steps_per_epoch), cfg.epochs * steps_per_epoch))
    train_set, val_set = datasets
    provenance = run_provenance(
        train_set.table, val_set.table, resolve(cfg.teacher_checkpoint) if cfg.distils else None, resolve(cfg.init_from) if cfg.init_from else None
    )
    run = _Training(cfg, model, ModelEMA(model, cfg.ema_decay), step, scheduler, provenance, rng_state())
    if state is not None:
        _check_resumable(last_path, state, cfg, provenance)
        run.resume(state)
        if dist.is_main:
            _truncate_log(out_dir, run.epoch)
    elif dist.is_main:
        (out_dir / "metrics.jsonl").unlink(missing_ok=True)
    if dist.is_main:
        atomic_write_text(out_dir / "config.json", json.dumps(cfg.to_dict(), indent=2))
    run.network = DistributedDataParallel(model) if dist.enabled else model
    return run


def _train_epoch(
    runs: list[_Training], teacher: nn.Module | None, precision: str | None, loader: DataLoader, dist: Distributed, desc: str, progress: bool
) -> tuple[list[dict], int, float]:
    """One pass over ``loader``, every network of ``runs`` stepping on each batch: (for each
    network the mean of each loss term over all ranks, the faces this rank saw, the seconds it
    took)."""
    cfg, device = runs[0].cfg, next(runs[0].model.parameters()).device
    distilling = teacher is not None and any(run.cfg.distils for run in runs)
    for run in runs:
        run.network.train()
    started, sums, seen = time.perf_counter(), [{} for _ in runs], 0
    bar = track(loader, desc=desc, disable=not (progress and dist.is_main), leave=False)
    for step, batch in enumerate(bar):
        batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        batch["image"] = batch["image"].contiguous(memory_format=memory_format(cfg))
        teacher_outputs = teacher_forward(teacher, precision, batch, cfg, device) if distilling else None
        for run, run_sums in zip(runs, sums, strict=True):
            for name, value in run.train_step(batch, teacher_outputs, device).items():
                run_sums[name] = run_sums.get(name, 0.0) + value
        seen += batch["image"].shape[0]
        if not bar.disable and step % POSTFIX_EVERY == 0:  # reading the loss syncs a GPU: only now and then
            bar.set_postfix(loss=f"{float(sums[0]['total']) / (step + 1):.3f}", img_s=f"{seen * dist.world_size / (time.perf_counter() - started):.1f}")
    means = [{k: float(all_reduce_mean(v / len(loader), dist)) for k, v in run_sums.items()} for run_sums in sums]
    return means, seen, time.perf_counter() - started


def _end_epoch(run: _Training, train_terms: dict, throughput: dict, val_set: LandmarkDataset, scheme, progress: bool) -> None:
    """Validate a network's EMA weights after its epoch, log the epoch's record (its loss terms,
    validation report, and ``throughput``: the stream's seconds, images per second and networks
    per batch) and write ``best.pt`` when validation NME improved, then ``last.pt``."""
    device = next(run.model.parameters()).device
    report, _, _ = evaluate(run.ema.module, val_set, scheme, batch_size=run.cfg.batch_size, device=device)
    improved = report["nme"] < run.best_nme
    run.best_nme = min(run.best_nme, report["nme"])
    _log(run.out_dir, {"epoch": run.epoch, "lr": run.step.optimiser.param_groups[0]["lr"], "train": train_terms, "val": report, **throughput, "best": improved})
    state = run.state()
    if improved:  # best.pt first: last.pt never records a best whose weights are not on disk
        save_checkpoint(run.out_dir / "best.pt", inference_state(state))
    save_checkpoint(run.out_dir / "last.pt", state)
    if progress:
        note(f"{run.cfg.stage} epoch {run.epoch}/{run.cfg.epochs}: loss {train_terms['total']:.4f}, val NME {report['nme']:.4f}, {throughput['seconds']:.1f} s")


def _train_together(cfgs: list[TrainConfig], dist: Distributed, progress: bool) -> list[dict]:
    lead = cfgs[0]
    if lead.threads:
        torch.set_num_threads(lead.threads)
    device = torch.device(f"cuda:{dist.local_rank}" if torch.cuda.is_available() else "cpu")
    scheme = load_scheme(lead.scheme)
    train_set, val_set, test_sets = stage_datasets(lead)
    sampler, loader = _loader(lead, dist, train_set)
    distilling = [cfg for cfg in cfgs if cfg.distils]
    teacher = _teacher(distilling[0], device) if distilling else None
    precision = teacher_precision(lead, device) if teacher is not None else None
    data = dataset_identity(resolve(lead.data_root))  # recorded in results.json: what a later run reuses this training by
    runs = [_member(cfg, teacher, (train_set, val_set), len(loader), device, dist) for cfg in cfgs]
    start = min(run.epoch for run in runs)
    stop = lead.epochs if lead.stop_after_epochs is None else min(lead.epochs, start + lead.stop_after_epochs)
    for epoch in range(start, stop):
        active = [run for run in runs if run.epoch == epoch]  # a network ahead (a crash between two networks' checkpoints) waits
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        desc = f"{lead.stage} {epoch + 1}/{lead.epochs}" + (f", {len(active)} networks" if len(active) > 1 else "")
        terms, seen, seconds = _train_epoch(active, teacher, precision, loader, dist, desc, progress)
        throughput = {"seconds": round(seconds, 2), "images_per_second": round(seen * dist.world_size / seconds, 2), "networks_per_batch": len(active)}
        for run, run_terms in zip(active, terms, strict=True):
            run.epoch = epoch + 1
            if dist.is_main:
                _end_epoch(run, run_terms, throughput, val_set, scheme, progress)
        dist.barrier()
    if stop < lead.epochs:
        return [{"stage": lead.stage, "completed_epochs": run.epoch, "finished": False} for run in runs]
    results = []
    for run in runs:
        done = {"stage": lead.stage, "completed_epochs": lead.epochs, "finished": True, "best_val_nme": run.best_nme}
        done |= {"teacher_precision": precision if run.cfg.distils else None, "data": data}
        if dist.is_main:
            done.update(_final_evaluation(run.cfg, run.out_dir / "best.pt", val_set, test_sets, scheme, device, run.out_dir))
            atomic_write_text(run.out_dir / "results.json", json.dumps(done, indent=2))
        results.append(done)
    return results


def _final_evaluation(
    cfg: TrainConfig, best_path: Path, val_set: LandmarkDataset, test_sets: dict[str, LandmarkDataset], scheme, device, out_dir: Path
) -> dict:
    """Metrics of the best checkpoint's EMA weights: ``val`` (and ``val_by_source`` with several
    sources), ``tests`` (every test set, each with its source's normaliser) and ``test`` (the
    first, the headline: its NME by condition and its predictions are saved)."""
    best = load_model(best_path).to(device)
    report, predicted, _ = evaluate(best, val_set, scheme, batch_size=cfg.batch_size, device=device)
    results = {"val": report}
    sources = val_set.table["source"].to_numpy()
    if len(set(sources)) > 1:
        truth = points_array(val_set.table)
        results["val_by_source"] = {name: summarise(predicted[sources == name], truth[sources == name], scheme) for name in dict.fromkeys(sources)}
    results["tests"] = {}
    for name, test_set in test_sets.items():
        normaliser = source_of(name, cfg.data_sources).normaliser
        report, predicted, by_condition = evaluate(best, test_set, scheme, by_condition=True, normaliser=normaliser, batch_size=cfg.batch_size, device=device)
        results["tests"][name] = report
        if "test" not in results:
            results["test"] = report
            atomic_save_csv(by_condition, out_dir / "test_by_condition.csv", index=False)
            atomic_save_npy(out_dir / "test_predictions.npy", predicted)
    return results
