"""Where one training step's time goes: ``python -m lib.training.step_benchmark [--profile default]
[--runs 10] [--threads 2] [--out step_times.csv]``.

Builds the profile's student (and, when it distils, a teacher of the profile's architecture, with
random weights: the cost does not depend on them), in the engine's memory format, takes real
augmented batches from the profile's training data, and times each part of a step separately:
loading a batch in the main process, the student's forward pass, the loss, backward + AdamW step,
and the frozen teacher's forward pass. Prints the median and p90 of ``runs`` timed repetitions (after two warm-ups), in
ms per batch and as images/s.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
import torch
from torch.utils.data import default_collate

from lib.models import build_model
from lib.timing import time_calls
from lib.training.config import train_config
from lib.training.engine import memory_format, optimisation, stage_datasets, teacher_forward, teacher_precision

WARMUP = 2


def step_times(profile: str = "default", runs: int = 10, threads: int = 2, config: str = "pipeline.yaml") -> pd.DataFrame:
    """One row per part of a training step: ``part``, ``ms_median``, ``ms_p90``, ``share`` and
    ``images_per_second`` at the profile's batch; the parts are data, student forward, loss,
    backward + step (the timed whole step less forward and loss), teacher forward when the profile
    distils, then their sum. The sum counts the data as if loaded in the main process: with
    DataLoader workers it overlaps the rest on other cores."""
    torch.set_num_threads(threads)
    cfg = train_config("student", config, profile, {"teacher_checkpoint": "unused.pt"})
    train_set, _, _ = stage_datasets(cfg)
    indices = iter(np.random.default_rng(0).integers(len(train_set), size=(runs + WARMUP) * cfg.batch_size).tolist())
    layout = memory_format(cfg)
    student = build_model(cfg.model_config).train().to(memory_format=layout)
    teacher_cfg = train_config("teacher", config, profile)
    teacher = build_model(teacher_cfg.model_config).eval().to(memory_format=layout) if cfg.distils else None
    cpu = torch.device("cpu")
    update = optimisation(cfg, student, teacher, cpu)  # the engine's loss and optimiser
    precision = teacher_precision(cfg, cpu) if teacher is not None else None
    batch = default_collate([train_set[i] for i in range(cfg.batch_size)])
    batch["image"] = batch["image"].contiguous(memory_format=layout)
    teacher_outputs = teacher_forward(teacher, precision, batch, cfg, cpu) if teacher is not None else None

    def backward_and_step():
        loss, _ = update.criterion(student(batch["image"]), batch, teacher_outputs)
        update.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        update.optimiser.step()

    parts = {"data (one batch, main process)": lambda: default_collate([train_set[next(indices)] for _ in range(cfg.batch_size)])}
    parts["student forward"] = lambda: student(batch["image"])
    outputs = student(batch["image"])
    parts["loss (forward)"] = lambda: update.criterion({k: v.detach() for k, v in outputs.items()}, batch, teacher_outputs)
    whole = time_calls(backward_and_step, WARMUP, runs)["median"]
    if teacher is not None:
        parts[f"teacher forward (no grad, {precision})"] = lambda: teacher_forward(teacher, precision, batch, cfg, cpu)
    rows = []
    for name, call in parts.items():
        times = time_calls(call, WARMUP, runs)
        rows.append({"part": name, "ms_median": times["median"], "ms_p90": times["p90"]})
    forward_and_loss = rows[1]["ms_median"] + rows[2]["ms_median"]
    rows.insert(3, {"part": "backward + optimiser step", "ms_median": whole - forward_and_loss, "ms_p90": float("nan")})
    table = pd.DataFrame(rows)
    total = table["ms_median"].sum()
    table["share"] = table["ms_median"] / total
    table.loc[len(table)] = {"part": "step (sum)", "ms_median": total, "ms_p90": float("nan"), "share": 1.0}
    table["images_per_second"] = cfg.batch_size / table["ms_median"] * 1000
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.training.step_benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--config", default="pipeline.yaml")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="also write the table as CSV")
    args = parser.parse_args(argv)
    table = step_times(args.profile, args.runs, args.threads, args.config)
    if args.out:
        table.to_csv(args.out, index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

    return 0


if __name__ == "__main__":
    sys.exit(main())
