"""Training targets on the heatmap grid: landmark heatmaps, point maps and edge maps.

All maps are float32 with values in [0, 1] and shape (channels, grid, grid); points are given
in heatmap-grid cells (see :func:`lib.data.geometry.crop_to_grid`).
"""

from __future__ import annotations

import cv2
import numpy as np

from lib.schemes import Scheme

SUBPIXEL_BITS = 8
EDGE_SUPERSAMPLE = 4


def gaussian_maps(points: np.ndarray, grid_size: int, sigma: float) -> np.ndarray:
    """(N, G, G) maps with a unit-peak Gaussian of std ``sigma`` cells at each (N, 2) point
    (x, y); a point far outside the grid gives an all-zero map."""
    cells = np.arange(grid_size, dtype=np.float32)
    dx = (cells[None, :] - points[:, 0:1].astype(np.float32)) ** 2
    dy = (cells[None, :] - points[:, 1:2].astype(np.float32)) ** 2
    gx = np.exp(-dx / (2 * sigma**2))
    gy = np.exp(-dy / (2 * sigma**2))
    return (gy[:, :, None] * gx[:, None, :]).astype(np.float32)


def edge_maps(points: np.ndarray, scheme: Scheme, grid_size: int, sigma: float) -> np.ndarray:
    """(E, G, G) maps, one per part of ``scheme``: an anti-aliased polyline through the part's
    points (closed parts closed; a one-point part is a dot), drawn at ``EDGE_SUPERSAMPLE`` x the
    grid resolution, blurred with std ``sigma`` cells and scaled to a peak of 1."""
    fine = grid_size * EDGE_SUPERSAMPLE
    maps = np.zeros((scheme.num_parts, grid_size, grid_size), np.float32)
    fixed = np.round(((points + 0.5) * EDGE_SUPERSAMPLE - 0.5) * (1 << SUBPIXEL_BITS)).astype(np.int32)
    for index, part in enumerate(scheme.parts):
        canvas = np.zeros((fine, fine), np.uint8)
        polyline = fixed[part.start : part.stop]
        if len(polyline) == 1:
            cv2.circle(canvas, tuple(int(v) for v in polyline[0]), EDGE_SUPERSAMPLE << (SUBPIXEL_BITS - 1), 255, -1, cv2.LINE_AA, SUBPIXEL_BITS)
        else:
            cv2.polylines(canvas, [polyline], part.closed, 255, EDGE_SUPERSAMPLE, cv2.LINE_AA, SUBPIXEL_BITS)
        small = cv2.resize(canvas.astype(np.float32) / 255.0, (grid_size, grid_size), interpolation=cv2.INTER_AREA)
        if sigma > 0:
            small = cv2.GaussianBlur(small, (0, 0), sigma)
        peak = small.max()
        maps[index] = small / peak if peak > 0 else small
    return maps


def make_targets(
    points: np.ndarray, scheme: Scheme, grid_size: int, heatmap_sigma: float = 1.5, point_sigma: float = 1.0, edge_sigma: float = 1.0
) -> dict[str, np.ndarray]:
    """All targets for (N, 2) grid points: ``heatmap`` (N, G, G), ``pointmap`` (N, G, G),
    ``edgemap`` (E, G, G)."""
    return {
        "heatmap": gaussian_maps(points, grid_size, heatmap_sigma),
        "pointmap": gaussian_maps(points, grid_size, point_sigma),
        "edgemap": edge_maps(points, scheme, grid_size, edge_sigma),
    }
