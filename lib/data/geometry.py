"""Crop geometry: face box -> (centre, scale) -> affine crop of the input size, and its inverse;
crop pixels <-> heatmap grid <-> normalised [-1, 1] coordinates.

Conventions: pixel coordinates are 0-based with the centre of the top-left pixel at (0, 0)
(OpenCV's). ``scale`` follows the field's habit of measuring the crop side in units of 200 px.
An affine is a (2, 3) float64 matrix M with ``p' = M[:, :2] @ p + M[:, 2]``. The point
mappings are plain arithmetic and work on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

import cv2
import numpy as np

from lib.deploy.run_model import CROP_UNIT, LANDMARK_BOX_FACTOR

# name -> (which side of the box, enlargement factor); scale = side(w, h) / 200 * factor.
CROP_RULES = {
    "star": ("min", 1.05),  # STAR / ADNet, for detector or WFLW boxes
    "hrnet": ("max", 1.25),  # HRNet
    "landmark_box": ("max", LANDMARK_BOX_FACTOR),  # boxes around the 51 landmarks (no jaw): adds the cheeks and chin
}


def box_to_center_scale(box: np.ndarray, rule: str = "hrnet", factor: float | None = None) -> tuple[np.ndarray, float]:
    """Crop centre (2,) in pixels and scale (crop side / 200 px) of a box ``x0, y0, x1, y1``.

    ``rule`` names an entry of :data:`CROP_RULES`; ``factor`` overrides its enlargement.
    """
    if rule not in CROP_RULES:
        raise KeyError(f"unknown crop rule {rule!r}; options: {sorted(CROP_RULES)}")
    side, default_factor = CROP_RULES[rule]
    box = np.asarray(box, dtype=np.float64)
    width, height = box[2] - box[0], box[3] - box[1]
    if not (width > 0 and height > 0):
        raise ValueError(f"degenerate box {box.tolist()}")
    size = min(width, height) if side == "min" else max(width, height)
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    return centre, float(size / CROP_UNIT * (default_factor if factor is None else factor))


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply_affine(matrix, points):
    """Map (..., N, 2) points through a (2, 3) affine, or (..., 2, 3) batched affines.
    Works on numpy arrays and torch tensors alike."""
    return points @ matrix[..., :2].swapaxes(-1, -2) + matrix[..., None, :, 2]


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``image`` (H, W, C) under ``matrix`` (bilinear, black border)."""
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_to_grid(points, input_size: int, grid_size: int):
    """Crop pixels -> heatmap-grid cells (pixel-centre aligned: cell i covers input pixels
    ``[i * stride - 0.5, (i + 1) * stride - 0.5)``)."""
    return (points + 0.5) * (grid_size / input_size) - 0.5


def grid_to_crop(points, input_size: int, grid_size: int):
    """Inverse of :func:`crop_to_grid`."""
    return (points + 0.5) * (input_size / grid_size) - 0.5


def grid_to_normalised(points, grid_size: int):
    """Heatmap-grid cells -> [-1, 1] (the outer edges of the grid are -1 and 1; cell centres
    sit at ``(2 i + 1) / grid_size - 1``, as in ``align_corners=False``)."""
    return (2.0 * points + 1.0) / grid_size - 1.0


def normalised_to_grid(points, grid_size: int):
    """Inverse of :func:`grid_to_normalised`."""
    return ((points + 1.0) * grid_size - 1.0) / 2.0
