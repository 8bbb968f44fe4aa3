"""A landmark's path over a clip: the truth against each tracking mode."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def trace_figure(truth: np.ndarray, tracks: Mapping[str, np.ndarray], landmark: int, fps: float, title: str = "") -> Figure:
    """x and y (pixels) of ``landmark`` over time: the truth (T, N, 2) in black, each mode's
    (T, N, 2) prediction in colour; a third panel zooms on the x error of each mode."""
    seconds = np.arange(len(truth)) / fps
    figure, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    for axis, coordinate in zip(axes[:2], ("x", "y"), strict=True):
        index = "xy".index(coordinate)
        axis.plot(seconds, truth[:, landmark, index], color="black", linewidth=2.2, label="truth")
        for name, points in tracks.items():
            axis.plot(seconds, points[:, landmark, index], linewidth=1.1, label=name)
        axis.set_ylabel(f"{coordinate} (px)")
    for name, points in tracks.items():
        axes[2].plot(seconds, points[:, landmark, 0] - truth[:, landmark, 0], linewidth=1.1, label=name)
    axes[2].axhline(0, color="black", linewidth=0.8)
    axes[2].set_ylabel("x error (px)")
    axes[2].set_xlabel("time (s)")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(title or f"landmark {landmark}")
    figure.tight_layout()
    return figure
