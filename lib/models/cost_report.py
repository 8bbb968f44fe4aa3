"""Model report: parameters, FLOPs and PyTorch CPU latency of teacher and student per input size.

``python -m lib.models.cost_report [--sizes 192 256] [--student mobilenetv4_conv_small] [--parts] [--runs 10] [--threads 2] [--out report.csv]``

FLOPs come from ``torch.utils.flop_counter`` at batch 1 (convolutions and matmuls; a
multiply-add counts 2, so GMACs = GFLOPs / 2). Latency is the median (and p90) of ``runs``
timed forward passes after warm-up, in eval mode with ``threads`` intra-op threads.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
import torch
from torch import nn

from lib.models.complexity import count_flops, count_parameters, flops_by_part
from lib.models.registry import build_model
from lib.timing import time_calls


def cpu_latency_ms(model: nn.Module, input_size: int, threads: int = 2, warmup: int = 3, runs: int = 10) -> tuple[float, float]:
    """(median, p90) milliseconds of a batch-1 forward pass on the CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    model.eval()
    image = torch.zeros(1, 3, input_size, input_size)
    try:
        with torch.no_grad():
            times = time_calls(lambda: model(image), warmup, runs)
    finally:
        torch.set_num_threads(previous)
    return times["median"], times["p90"]


def model_report(configs: dict[str, dict], sizes: list[int], threads: int = 2, runs: int = 10) -> pd.DataFrame:
    """One row per (model, input size): params (M), GFLOPs, GMACs, CPU ms (median, p90)."""
    rows = []
    for name, cfg in configs.items():
        for size in sizes:
            model = build_model({**cfg, "input_size": size})
            flops = count_flops(model, size)
            median, p90 = cpu_latency_ms(model, size, threads, runs=runs)
            rows.append(
                {
                    "model": name,
                    "backbone": model.backbone.body.default_cfg.get("architecture", cfg.get("backbone")),
                    "input_size": size,
                    "params_m": count_parameters(model) / 1e6,
                    "gflops": flops / 1e9,
                    "gmacs": flops / 2e9,
                    "cpu_ms_median": median,
                    "cpu_ms_p90": p90,
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.models.cost_report", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 256])
    parser.add_argument("--teacher", default=None, help="teacher backbone (default: the registry's)")
    parser.add_argument("--student", default=None, help="student backbone (default: the registry's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", help="also write the table as CSV")
    parser.add_argument("--parts", action="store_true", help="also print where each model's FLOPs and parameters go, per backbone stage")
    args = parser.parse_args(argv)
    configs = {
        kind: {"kind": kind, **({"backbone": backbone} if backbone else {})} for kind, backbone in (("teacher", args.teacher), ("student", args.student))
    }
    table = model_report(configs, args.sizes, args.threads, args.runs)
    if args.out:
        table.to_csv(args.out, index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for name, cfg in configs.items() if args.parts else ():
        for size in args.sizes:
            print(f"\n{name} at {size} px")
            print(flops_by_part(build_model({**cfg, "input_size": size}), size).to_string(index=False, float_format=lambda v: f"{v:.4f}"))

    return 0


if __name__ == "__main__":
    sys.exit(main())
