"""Several methods on the same labelled faces, side by side."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lib.formats.images import load_image
from lib.schemes import Scheme
from lib.viz.overlay import draw_landmarks, show_face


def methods_figure(table: pd.DataFrame, faces: pd.DataFrame, predictions: Mapping[str, Mapping[str, np.ndarray]], scheme: Scheme, rows: int = 4) -> Figure:
    """One row per labelled face (the first ``rows`` of ``table``), one column per method: its
    matched face (parts in colour; none when missed) over the ground truth (crosses), titled
    with its NME (outer eye corners). ``faces`` is :func:`lib.bench.real_face_benchmark.benchmark`'s
    per-face table, ``predictions`` its ``{method: {image: (F, N, 2)}}``."""
    shown = table.head(rows)
    methods = list(predictions)
    figure, axes = plt.subplots(len(shown), len(methods), figsize=(3 * len(methods), 3 * len(shown)), squeeze=False)
    for row, (image, truth) in enumerate(zip(shown["image"], shown["points"], strict=True)):
        pixels = load_image(image)
        for column, method in enumerate(methods):
            result = faces[(faces["method"] == method) & (faces["image"] == image) & ~faces["extra"]].iloc[0]
            if result["matched"]:
                matched = np.asarray(predictions[method][image])[int(result["pred_index"])]
                show_face(axes[row, column], pixels, matched, scheme, truth=truth, title=f"{method}: {100 * result['nme_outer_eye_corners']:.1f} %")
            else:
                show_face(axes[row, column], pixels, np.full_like(truth, np.nan), scheme, truth=truth, title=f"{method}: missed")
    figure.tight_layout()
    return figure


def mean_shapes_figure(first: np.ndarray, second: np.ndarray, scheme: Scheme, labels: tuple[str, str], counts: tuple[int, int]) -> Figure:
    """Two mean shapes (N, 2) of one scheme overlaid (``first`` in part colours and dots,
    ``second`` as grey crosses), each point joined to its counterpart (:func:`lib.analysis.shapes.mean_shape_offsets`)."""
    figure, ax = plt.subplots(figsize=(5.5, 5.5))
    for a, b in zip(first, second, strict=True):
        ax.plot([a[0], b[0]], [a[1], b[1]], "-", color="k", linewidth=0.6)
    draw_landmarks(ax, second, scheme, size=30, marker="x", alpha=0.5, lines=False)
    draw_landmarks(ax, first, scheme, size=10)
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set(title=f"{labels[0]} ({counts[0]} faces, dots) on {labels[1]} ({counts[1]}, crosses)", xticks=[], yticks=[])
    figure.tight_layout()
    return figure
