"""Landmark metrics as the field computes them: NME with any normaliser, FR@t, AUC@t, the
cumulative error distribution (CED), per-part NME and NME by condition.

Shapes: ``pred`` and ``gt`` are (F, N, 2) pixel coordinates of F faces with N landmarks.
NME values are fractions (0.05 = 5 %).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.integrate import simpson

from lib.schemes import Scheme


def normalising_distance(gt: np.ndarray, scheme: Scheme, normaliser: str | None = None) -> np.ndarray:
    """(F,) denominator of each face: the distance between two index-group centroids of the
    ground truth (e.g. eye centroids, outer eye corners), or ``sqrt(w * h)`` of its bounding box."""
    spec = scheme.normaliser(normaliser)
    gt = np.asarray(gt, dtype=np.float64)
    if spec.kind == "box":
        extent = gt.max(axis=1) - gt.min(axis=1)
        return np.sqrt(extent[:, 0] * extent[:, 1])
    first, second = (gt[:, list(group)].mean(axis=1) for group in spec.groups)
    return np.linalg.norm(first - second, axis=1)


def point_errors(pred: np.ndarray, gt: np.ndarray, scheme: Scheme, normaliser: str | None = None) -> np.ndarray:
    """(F, N) L2 error of every landmark divided by its face's normalising distance."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred and gt must both be (F, N, 2), got {pred.shape} and {gt.shape}")
    distance = normalising_distance(gt, scheme, normaliser)
    if np.any(distance <= 0):
        raise ValueError("a face has a zero normalising distance")
    return np.linalg.norm(pred - gt, axis=-1) / distance[:, None]


def nme(pred: np.ndarray, gt: np.ndarray, scheme: Scheme, normaliser: str | None = None) -> np.ndarray:
    """(F,) NME of every face: the mean over its landmarks of :func:`point_errors`."""
    return point_errors(pred, gt, scheme, normaliser).mean(axis=1)


def failure_rate(nmes: np.ndarray, threshold: float = 0.10) -> float:
    """FR@t: the share of faces whose NME is above ``threshold``."""
    return float(np.mean(np.asarray(nmes) > threshold))


def ced_curve(nmes: np.ndarray, threshold: float = 0.10, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution on [0, threshold]: (steps,) error levels and the share of
    faces with NME at or below each."""
    levels = np.linspace(0.0, threshold, steps)
    shares = (np.sort(np.asarray(nmes))[None, :] <= levels[:, None]).mean(axis=1)
    return levels, shares


def auc(nmes: np.ndarray, threshold: float = 0.10, method: str = "trapezoid", steps: int = 1001) -> float:
    """AUC@t: the area under the CED curve on [0, threshold] divided by ``threshold``.

    ``method``: ``trapezoid`` or ``simpson`` on ``steps`` levels, or ``exact`` (the CED is a step
    function, so the area is ``mean(max(threshold - nme, 0))``).
    """
    nmes = np.asarray(nmes, dtype=np.float64)
    if method == "exact":
        return float(np.mean(np.clip(threshold - nmes, 0.0, None)) / threshold)
    levels, shares = ced_curve(nmes, threshold, steps)
    if method == "trapezoid":
        return float(np.trapezoid(shares, levels) / threshold)
    if method == "simpson":
        return float(simpson(shares, x=levels) / threshold)
    raise ValueError(f"unknown AUC method {method!r}; options: trapezoid, simpson, exact")


def per_part_nme(pred: np.ndarray, gt: np.ndarray, scheme: Scheme, normaliser: str | None = None) -> dict[str, float]:
    """Mean NME over faces of each part's landmarks: ``{part name: nme}``."""
    errors = point_errors(pred, gt, scheme, normaliser)
    return {part.name: float(errors[:, part.start : part.stop].mean()) for part in scheme.parts}


def nme_by_condition(nmes: np.ndarray, conditions: pd.DataFrame, columns: Sequence[str], threshold: float = 0.10) -> pd.DataFrame:
    """NME, FR and face count per value of each condition column (e.g. WFLW's 0/1 flags, or a
    binned pose); one row per (condition, value)."""
    frame = conditions.reset_index(drop=True).assign(_nme=np.asarray(nmes))
    rows = []
    for column in columns:
        for value, group in frame.groupby(column, observed=True):
            rows.append({"condition": column, "value": value, "faces": len(group), "nme": group["_nme"].mean(), "fr": failure_rate(group["_nme"], threshold)})
    return pd.DataFrame(rows, columns=["condition", "value", "faces", "nme", "fr"])


def summarise(pred: np.ndarray, gt: np.ndarray, scheme: Scheme, normaliser: str | None = None, threshold: float = 0.10) -> dict:
    """The usual report: ``nme``, ``fr``, ``auc`` at ``threshold``, ``faces`` and ``per_part``."""
    nmes = nme(pred, gt, scheme, normaliser)
    return {
        "normaliser": normaliser or scheme.default_normaliser,
        "faces": len(nmes),
        "nme": float(nmes.mean()),
        "fr": failure_rate(nmes, threshold),
        "auc": auc(nmes, threshold),
        "per_part": per_part_nme(pred, gt, scheme, normaliser),
    }
