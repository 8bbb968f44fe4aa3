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


def layout_name(tiles: int, close_up: bool) -> str:
    """``whole image`` or ``2x2 tiles``, ``+ close-up`` when the short-range model runs too."""
    return ("whole image" if tiles == 1 else f"{tiles}x{tiles} tiles") + (" + close-up" if close_up else "")


def threshold_figure(sweep: pd.DataFrame, tiles: int, close_up: bool, chosen: float) -> Figure:
    """Left: missed faces (share) and invented faces (per image) against the detector threshold
    for the chosen layout; right: their sum for every layout measured (a
    :func:`lib.submission.detection_threshold.measure_detector` table), the chosen pair dashed."""
    figure, (rates, costs) = plt.subplots(1, 2, figsize=(10, 3.8))
    layout = sweep[(sweep["tiles"] == tiles) & (sweep["close_up"] == close_up)]
    for column, label in (("missed_share", "missed faces (share)"), ("invented_per_image", "invented faces per image"), ("cost", "sum")):
        rates.plot(layout["min_score"], layout[column], marker=".", label=label)
    rates.set(xlabel="detector score threshold", ylabel="rate", title=f"{layout_name(tiles, close_up)}: threshold {chosen:.2f}")
    for (each_tiles, each_close_up), rows in sweep.groupby(["tiles", "close_up"], sort=False):
        label = f"{layout_name(each_tiles, each_close_up)} ({rows['ms_per_image'].iloc[0]:.0f} ms)"
        costs.plot(rows["min_score"], rows["cost"], marker=".", label=label, linewidth=2.5 if (each_tiles, each_close_up) == (tiles, close_up) else 1)
    costs.set(xlabel="detector score threshold", ylabel="missed share + invented per image", title="every layout (detector ms per image)")
    for ax in (rates, costs):
        ax.set_ylim(0, 1)  # low thresholds invent many faces per image: the choice lies below 1
        ax.axvline(chosen, color="k", linestyle="--", linewidth=1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure
