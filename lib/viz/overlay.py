"""Landmark overlays with one colour per facial part (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lib.formats.images import load_image
from lib.schemes import Scheme


def part_colours(scheme: Scheme) -> list[tuple[float, float, float, float]]:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(scheme.num_parts)]


def draw_landmarks(ax: Axes, points: np.ndarray, scheme: Scheme, size: float = 6.0, lines: bool = True, marker: str = "o", alpha: float = 1.0) -> None:
    """Plot (N, 2) pixel points on ``ax``, parts joined in their scheme order."""
    for part, colour in zip(scheme.parts, part_colours(scheme), strict=True):
        part_points = points[part.start : part.stop]
        if lines and len(part_points) > 1:
            path = np.vstack([part_points, part_points[:1]]) if part.closed else part_points
            ax.plot(path[:, 0], path[:, 1], "-", color=colour, linewidth=0.8, alpha=alpha)
        ax.scatter(part_points[:, 0], part_points[:, 1], s=size, color=colour, marker=marker, alpha=alpha, linewidths=0.5)


def show_face(
    ax: Axes, image: np.ndarray, points: np.ndarray, scheme: Scheme, truth: np.ndarray | None = None, title: str | None = None, margin: float = 0.35
) -> None:
    """An image zoomed on a face with its landmarks (and the ground truth as crosses)."""
    ax.imshow(image)
    reference = points if truth is None else truth
    if truth is not None:
        draw_landmarks(ax, truth, scheme, size=10, lines=False, marker="x", alpha=0.9)
    draw_landmarks(ax, points, scheme)
    low, high = reference.min(axis=0), reference.max(axis=0)
    pad = (high - low).max() * margin
    ax.set_xlim(low[0] - pad, high[0] + pad)
    ax.set_ylim(high[1] + pad, low[1] - pad)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def overlay_grid(
    table: pd.DataFrame,
    scheme: Scheme,
    rows: Sequence[int],
    columns: int = 6,
    titles: Sequence[str] | None = None,
    predictions: np.ndarray | None = None,
    tile: float = 2.2,
) -> Figure:
    """A grid of faces (table row numbers ``rows``) with their landmarks; with ``predictions``
    ((len(rows), N, 2)), those are drawn over the table's points, which become the crosses."""
    count = len(rows)
    grid_rows = max(1, -(-count // columns))
    figure, axes = plt.subplots(grid_rows, columns, figsize=(columns * tile, grid_rows * tile), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for slot, row in enumerate(rows):
        face = table.iloc[row]
        points = face["points"] if predictions is None else predictions[slot]
        truth = None if predictions is None else face["points"]
        show_face(axes.ravel()[slot], load_image(face["image"]), points, scheme, truth, titles[slot] if titles else None)
    figure.tight_layout()
    return figure
