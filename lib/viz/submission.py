"""Figures of a scored submission: its matched faces worst first, and the cumulative error curve."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lib.formats.images import find_image
from lib.formats.table import make_table
from lib.metrics import ced_curve
from lib.schemes import Scheme
from lib.viz.overlay import overlay_grid


def matched_faces(
    faces: pd.DataFrame, predictions: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray], images: str | Path
) -> tuple[pd.DataFrame, np.ndarray]:
    """The matched faces of a score table (``lib.submission.score``), worst NME first: an
    annotation table of their ground truth (with ``nme``) and their (F, N, 2) predictions."""
    matched = faces[faces["gt_index"].notna() & faces["pred_index"].notna()].sort_values("nme", ascending=False)
    rows = [
        {"image": str(find_image(Path(images), stem)), "points": truth[stem][int(g)], "subset": "test", "face_index": int(g), "nme": nme}
        for stem, g, nme in zip(matched["image_id"], matched["gt_index"], matched["nme"], strict=True)
    ]
    predicted = np.array([predictions[stem][int(p)] for stem, p in zip(matched["image_id"], matched["pred_index"], strict=True)])
    return make_table(rows), predicted


def worst_faces_figure(table: pd.DataFrame, predicted: np.ndarray, scheme: Scheme, faces: int = 12, columns: int = 6) -> Figure:
    """The ``faces`` worst matched faces: predictions in part colours, ground truth as crosses."""
    rows = list(range(min(faces, len(table))))
    return overlay_grid(table, scheme, rows, columns=columns, titles=[f"NME {table['nme'].iloc[r]:.3f}" for r in rows], predictions=predicted[rows])


def ced_figure(curves: Mapping[str, np.ndarray], threshold: float = 0.10) -> Figure:
    """Cumulative error curves of several runs: ``{label: (F,) per-face NME}`` (``inf`` = missed)."""
    figure, ax = plt.subplots(figsize=(5, 3.5))
    for label, errors in curves.items():
        levels, shares = ced_curve(np.asarray(errors), threshold)
        ax.plot(levels, shares, label=label)
    ax.set(xlabel="NME", ylabel="share of faces", xlim=(0, threshold), ylim=(0, 1), title=f"cumulative error distribution (to {threshold})")
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    return figure


def threshold_figure(sweep: pd.DataFrame, chosen: float) -> Figure:
    """Missed faces (share) and invented faces (per face-free image) against the detector
    threshold (a :func:`lib.submission.detection_threshold.threshold_table`), the chosen one dashed."""
    figure, ax = plt.subplots(figsize=(5, 3.5))
    for column, label in (("missed_share", "missed faces (share)"), ("invented_per_image", "invented faces per face-free image"), ("cost", "sum")):
        ax.plot(sweep["min_score"], sweep[column], marker=".", label=label)
    ax.axvline(chosen, color="k", linestyle="--", linewidth=1)
    ax.set(xlabel="detector score threshold", ylabel="rate", title=f"detector threshold: {chosen:.2f}")
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    return figure
