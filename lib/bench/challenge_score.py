"""A leaderboard score in the spirit of the PAIR embedded track, whose official formula is not
public: accuracy, complexity, size and speed, each as a ratio to a reference model (higher is
better), weighted and summed to 100 for a model equal to the reference.

    score = 100 * sum_k w_k * reference_k / value_k,   k in (nme, gflops, size_mb, latency_ms)

with the weights normalised to sum to 1. A model twice as fast as the reference, all else equal,
gains ``100 * w_latency``. The weights are parameters; the defaults favour accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_WEIGHTS = {"nme": 0.5, "gflops": 0.15, "size_mb": 0.15, "latency_ms": 0.2}


def challenge_score(values: Mapping[str, float], reference: Mapping[str, float], weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> float:
    """Score of ``values`` against ``reference`` (both keyed like ``weights``; all positive)."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    for key in weights:
        if not (values[key] > 0 and reference[key] > 0):
            raise ValueError(f"{key} must be positive, got {values[key]} (reference {reference[key]})")
    return 100.0 * sum(weight / total * reference[key] / values[key] for key, weight in weights.items())
