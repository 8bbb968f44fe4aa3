"""The one timer: milliseconds of repeated calls after warm-up ones (median and 90th percentile)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def time_calls(call: Callable[[], object], warmup: int = 5, runs: int = 50) -> dict[str, float]:
    """``{"median": ms, "p90": ms}`` of ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90))}
