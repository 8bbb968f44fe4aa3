"""``python -m lib.training.gpu_check [--profile paper] [--steps 200] [--data-root data/synthetic]``
(``make gpu-check``): can this GPU train the profile, and does the data keep it busy?

Runs ``--steps`` timed training steps (after a warm-up) of the profile's teacher and of its
distilling student (both with random backbone weights: the speed does not depend on them, and
nothing is downloaded) on the synthetic data, with the profile's batch, input size, workers and
AMP, and prints per stage: images/s, the share of step time spent waiting for the data loader,
and peak GPU memory. Without a CUDA device it says so and exits with status 1 (``--device cpu``
runs the same loop on the CPU, for the tests).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import pandas as pd
import torch
from torch.utils.data import DataLoader

from lib.models import build_model
from lib.training.config import train_config
from lib.training.engine import optimisation, stage_datasets, teacher_forward, teacher_precision, training_step

WARMUP = 20


def stage_throughput(stage: str, profile: str, steps: int, device: torch.device, config: str, data_root: str, warmup: int = WARMUP) -> dict:
    """Images/s, data-wait share and peak memory of ``steps`` training steps of one stage."""
    overrides = {"data_root": data_root, **({"teacher_checkpoint": "unused.pt"} if stage == "student" else {})}
    cfg = train_config(stage, config, profile, overrides)
    model = build_model({**cfg.model_config, "pretrained": None}).to(device).train()
    teacher = None
    if cfg.distils:
        teacher = build_model({**train_config("teacher", config, profile, {"data_root": data_root}).model_config, "pretrained": None}).to(device).eval()
        teacher.requires_grad_(False)
    train_set, _, _ = stage_datasets(cfg)
    loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=cfg.workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.workers > 0,
    )
    update = optimisation(cfg, model, teacher, device)
    precision = teacher_precision(cfg, device) if teacher is not None else None
    batches = itertools.chain.from_iterable(itertools.repeat(loader))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    waited = total = 0.0
    for step in range(warmup + steps):
        started = time.perf_counter()
        batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in next(batches).items()}
        loaded = time.perf_counter()
        training_step(model, teacher_forward(teacher, precision, batch, cfg, device) if teacher is not None else None, update, batch, cfg, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            waited += loaded - started
            total += time.perf_counter() - started
    return {
        "stage": stage,
        "backbone": cfg.model_config.get("backbone"),
        "input_size": cfg.input_size,
        "batch": cfg.batch_size,
        "workers": cfg.workers,
        "images_per_second": steps * cfg.batch_size / total,
        "data_wait_share": waited / total,
        "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.training.gpu_check", description=__doc__.split("\n\n")[1].split("\n")[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--config", default="pipeline.yaml")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument("--data-root", default="data/synthetic", help="a PAIR-layout tree to load (default: the synthetic set)")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            f"no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda}): the GPU check measured nothing; run it on a GPU machine",
            file=sys.stderr,
        )
        return 1
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rows = [stage_throughput(stage, args.profile, args.steps, device, args.config, args.data_root, args.warmup) for stage in ("teacher", "student")]
    print(f"{name}, profile {args.profile}, {args.steps} steps per stage")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
