"""Several trainings side by side: the seeds of an ablation in ``parallel`` lanes.

Jobs that name the same ``together`` group train in one process on one stream of batches
(:func:`lib.training.engine.train_together`): each batch is loaded, and the teacher run on it,
once for the group instead of once a network (loading ~10 % and the teacher's forward ~18 % of a
`default` KD student's one-thread step: ``python -m lib.training.step_benchmark --threads 1``).
The student step's KD students form one group and its students alone another
(:func:`student_ablation_jobs`).

On a CPU with few cores a small network does not use a second thread fully (the `default`
student's step takes ~1.5x as long on one thread as on two: ``python -m
lib.training.step_benchmark``), so two single-thread trainings side by side finish ~1.3x sooner
than the same two one after the other on two threads.
With ``parallel > 1`` each job runs as its own ``python -m lib.training`` process with
``threads = total // parallel`` and no data-loading workers (the lanes fill the cores), its output
appended to ``out_dir/train.log``; with ``parallel = 1`` the jobs run in this process, one after the other,
with their own progress bars. Either way a job whose ``out_dir`` holds a finished or interrupted run
resumes it (:func:`lib.training.engine.train`), so a rerun after a crash loses at most an epoch
per lane. A run's numbers depend on its thread count (float reductions), so compare runs made
with the same ``parallel``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lib.paths import PROJECT_ROOT, resolve
from lib.progress import track
from lib.training.config import TrainConfig, train_config
from lib.training.engine import check_together, read_log_records, train_together

POLL_SECONDS = 1.0
LOG_TAIL_LINES = 20
ALONE, DISTILLED = "student alone", "student + KD"  # the student step's model labels (its ablation table)
SCRATCH = "student + KD, no pretraining"  # a fine-tuning step's control: its KD student trained from scratch


@dataclass(frozen=True)
class TrainJob:
    """One training: a ``label`` for progress and errors, the ``stage``, its settings over the
    profile's (``overrides``, which name the ``out_dir``), ``after``: the ``out_dir`` of a
    job that must finish first (one whose checkpoint this one starts from), or None, and
    ``together``: the name of the group of jobs it trains with on one stream of batches (they
    may differ only in :data:`lib.training.engine.MEMBER_SETTINGS`), or None."""

    label: str
    stage: str
    overrides: dict = field(default_factory=dict)
    after: str | None = None
    together: str | None = None


def run_jobs(jobs: Sequence[TrainJob], config: str, profile: str, parallel: int = 1, progress: bool = True) -> list[dict]:
    """Train every job, ``parallel`` lanes at a time, in the order given (put the longest first:
    a free lane takes the next); the jobs of a ``together`` group share one lane, placed where
    the first of them is. Returns each job's results (its ``results.json``), in job order.
    Every job's settings, and each group's sharing, are checked before the first starts. A
    failed lane stops the others (they resume on the next call) and raises naming its jobs, its
    log and the log's last lines."""
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    configs = [train_config(job.stage, config, profile, job.overrides) for job in jobs]
    groups = _groups(jobs)
    _check_order(jobs, groups)
    for group in groups:
        check_together([configs[i] for i in group])
    if parallel == 1:
        results = {}
        for group in groups:
            results |= dict(zip(group, train_together([configs[i] for i in group], progress), strict=True))
        return [results[i] for i in range(len(jobs))]
    lanes = [_Lane([jobs[i] for i in group], config, profile, _threads_per_lane(configs[group[0]], parallel)) for group in groups]
    total = sum(configs[group[0]].epochs for group in groups)
    bar = track(
        _completed_epochs(lanes, parallel), desc=f"{len(jobs)} trainings in {len(lanes)} lanes, {parallel} at a time", total=total, disable=not progress
    )
    for _ in bar:
        pass
    return [json.loads((resolve(cfg.out_dir) / "results.json").read_text()) for cfg in configs]


def _groups(jobs: Sequence[TrainJob]) -> list[list[int]]:
    """The jobs' indices by ``together`` group, each group where its first job is; a job of no
    group is one alone."""
    groups: dict[object, list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(index if job.together is None else job.together, []).append(index)
    return list(groups.values())


def alone_loss(kd_loss: dict) -> dict:
    """The student-alone loss of a KD loss: the same terms, the distillation weights at 0."""
    return {**kd_loss, "kd": 0.0, "feature_kd": 0.0}


def scratch_job(run_dir: Path, settings: dict) -> TrainJob:
    """Pretraining's control in a fine-tuning step: the step's KD student (``settings``: its seed
    and loss included) trained the same way from random weights, in ``run_dir/scratch``."""
    return TrainJob(SCRATCH, "student", {**settings, "init_from": None, "out_dir": str(run_dir / "scratch")})


def student_ablation_jobs(run_dir: Path, settings: dict, kd_loss: dict, seeds: Sequence[int], stream: dict | None) -> list[TrainJob]:
    """The student step's trainings: on every seed the student with KD (``kd_loss``) and alone
    (the same loss, distillation weights at 0), labelled :data:`DISTILLED` and :data:`ALONE`; all
    KD students first (a KD step also runs the teacher, so they take longest and go first to the
    free lanes). With a ``stream`` (the first seed's resolved split and data seeds,
    :attr:`~lib.training.config.TrainConfig.stream`) every seed trains on it: the seeds vary the
    networks' initialisation, each seed's two students are paired on the same batches, and the
    KD students train together, as do the students alone (one stream, one teacher forward a
    batch for the group). With None each seed draws its own stream and trains on its own: for
    networks that all start from one checkpoint (a fine-tune), whose seeds have nothing else to
    vary. The first seed's KD student is the step's own (``run_dir``), its student alone
    ``run_dir/student_alone``; other seeds' ``run_dir/seeds/seed_<s>/{kd,alone}``."""

    def folder(seed: int, name: str) -> Path:
        if seed == seeds[0]:
            return run_dir if name == "kd" else run_dir / "student_alone"
        return run_dir / "seeds" / f"seed_{seed}" / name

    def seed_settings(seed: int) -> dict:  # the first seed's stream is its own
        return {"seed": seed} if seed == seeds[0] or stream is None else {"seed": seed, **stream}

    return [
        TrainJob(
            label, "student", {**settings, **seed_settings(seed), "loss": loss, "out_dir": str(folder(seed, name))}, together=None if stream is None else name
        )
        for label, loss, name in ((DISTILLED, kd_loss, "kd"), (ALONE, alone_loss(kd_loss), "alone"))
        for seed in seeds
    ]


def size_jobs(run_dir: Path, settings: dict, sizes: Sequence[int], step_size: int) -> list[TrainJob]:
    """The student step's students at the other input sizes they may ship at: for each of
    ``sizes`` (px, other than the step's own ``step_size``) the step's KD student trained again at
    that size with ``settings`` (the step's, its seed and KD included; the teacher runs at the
    student's size, the networks being size-agnostic), in ``run_dir/sizes/<size>``. A file ships
    only at a size its network trained at (:mod:`lib.bench.choice`)."""
    if len(set(sizes)) != len(sizes) or any(int(size) != size or size < 32 or size % 32 for size in sizes):
        raise ValueError(f"student sizes must be distinct multiples of 32 px (the backbone's stride), got {list(sizes)}")
    return [
        TrainJob(f"{DISTILLED} at {size} px", "student", {**settings, "input_size": int(size), "out_dir": str(run_dir / "sizes" / str(size))})
        for size in sizes
        if size != step_size
    ]


def pruned_name(ratio: float) -> str:
    """A pruned student's name: ``pruned40`` for ratio 0.4; ratio 0 is the control, the same
    fine-tune without pruning: ``finetuned``."""
    return f"pruned{round(100 * ratio)}" if ratio else "finetuned"


def pruning_jobs(run_dir: Path, settings: dict, model: dict, ratios: Sequence[float], fine_tune: dict) -> list[TrainJob]:
    """The student step's pruned students: the step's own student (``run_dir/best.pt``, trained
    by the job whose ``out_dir`` is ``run_dir``) made narrower by each of ``ratios`` (0: not
    pruned, the control that tells pruning's price from the fine-tune's gain; see
    :mod:`lib.models.pruning`), then fine-tuned with ``settings`` (the step's, KD included) and
    ``fine_tune`` over them (epochs, learning rates), in ``run_dir/pruned/<name>``
    (:func:`pruned_name`). ``model`` is the student's model config."""
    if len(set(ratios)) != len(ratios) or any(not 0 <= r < 1 for r in ratios):
        raise ValueError(f"prune ratios must be distinct and in [0, 1), got {list(ratios)}")
    return [
        TrainJob(
            pruned_name(ratio),
            "student",
            {
                **settings,
                **fine_tune,
                "init_from": str(run_dir / "best.pt"),
                "model": {**model, "prune_ratio": ratio or None},
                "out_dir": str(run_dir / "pruned" / pruned_name(ratio)),
            },
            after=str(run_dir),
        )
        for ratio in ratios
    ]


def _check_order(jobs: Sequence[TrainJob], groups: list[list[int]]) -> None:
    """Every ``after`` names the ``out_dir`` of a job in an earlier group (so one group after the
    other is a valid order, and the lanes never wait for a job that is not coming)."""
    earlier: set[str] = set()
    for group in groups:
        for job in (jobs[i] for i in group):
            if job.after is not None and str(resolve(job.after)) not in earlier:
                raise ValueError(f"job {job.label!r} waits for {job.after}, which no earlier job trains (in an earlier group)")
        earlier |= {str(resolve(jobs[i].overrides["out_dir"])) for i in group}


def _threads_per_lane(cfg: TrainConfig, parallel: int) -> int:
    """The cores a job gets: the profile's ``threads`` (else every core) shared between lanes."""
    return max(1, (cfg.threads or os.cpu_count() or 1) // parallel)


class _Lane:
    """One group of jobs' subprocess: started on demand, its epochs counted from its jobs'
    ``metrics.jsonl`` (the group's output goes to its first job's ``train.log``)."""

    def __init__(self, jobs: list[TrainJob], config: str, profile: str, threads: int):
        self.jobs, self.threads = jobs, threads
        self.label = ", ".join(dict.fromkeys(job.label for job in jobs))
        self.config, self.profile = str(resolve(config)), profile
        self.out_dirs = [resolve(job.overrides["out_dir"]) for job in jobs]
        self.after = {str(resolve(job.after)) for job in jobs if job.after is not None}
        self.log = self.out_dirs[0] / "train.log"
        self.process: subprocess.Popen | None = None
        self.counted = 0

    def start(self) -> None:
        for folder in self.out_dirs:
            folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "lib.training", "--stage", self.jobs[0].stage, "--config", self.config, "--profile", self.profile, "--no-progress"]
        for job in self.jobs:
            command += ["--member", *[f"{key}={json.dumps(value)}" for key, value in job.overrides.items()], f"threads={self.threads}", "workers=0"]
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        with open(self.log, "a") as log:  # a resumed job's log follows the interrupted one's
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def new_epochs(self) -> int:
        """Epochs every job of the lane has logged since the last call (a resumed run's earlier
        epochs count once)."""
        logged = min(len(read_log_records(path)) if path.is_file() else 0 for path in (folder / "metrics.jsonl" for folder in self.out_dirs))
        new, self.counted = max(0, logged - self.counted), max(self.counted, logged)
        return new

    def failure(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:] if self.log.is_file() else []
        return f"training {self.label!r} failed (exit code {self.process.returncode}); log {self.log}, last lines:\n" + "\n".join(lines)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


def _completed_epochs(lanes: list[_Lane], parallel: int) -> Iterator[None]:
    """Run the lanes ``parallel`` at a time, each as soon as a lane is free and the job it waits
    for has finished (the first such in job order); yield once per epoch any of them completes."""
    waiting, running, done = list(lanes), [], set()
    try:
        while waiting or running:
            ready = [lane for lane in waiting if lane.after <= done]
            for lane in ready[: parallel - len(running)]:
                waiting.remove(lane)
                lane.start()
                running.append(lane)
            time.sleep(POLL_SECONDS)
            for lane in list(running):
                finished = lane.process.poll() is not None
                for _ in range(lane.new_epochs()):
                    yield
                if finished:
                    if lane.process.returncode != 0:
                        raise RuntimeError(lane.failure())
                    running.remove(lane)
                    done |= {str(folder) for folder in lane.out_dirs}
    finally:
        for lane in running:
            lane.stop()
