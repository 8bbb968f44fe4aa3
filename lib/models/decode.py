"""Heatmaps -> landmark coordinates, and on to original-image pixels.

Coordinates on the grid are normalised to [-1, 1] with cell centres at ``(2 i + 1) / G - 1``
(see :mod:`lib.data.geometry`).
"""

from __future__ import annotations

import torch

from lib.data.geometry import apply_affine, grid_to_crop, normalised_to_grid


def cell_centres(grid_size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(G,) normalised coordinates of the cell centres."""
    return (2 * torch.arange(grid_size, device=device, dtype=dtype) + 1) / grid_size - 1


def soft_argmax(maps: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Expected position of each map taken as a distribution (no softmax: negative values are
    clipped and each map is divided by its sum). (B, N, G, G) -> (B, N, 2) ``x, y`` in [-1, 1]."""
    weights = maps.clamp_min(0)
    total = weights.sum(dim=(-2, -1)) + eps
    centres_x = cell_centres(maps.shape[-1], maps.device, maps.dtype)
    centres_y = cell_centres(maps.shape[-2], maps.device, maps.dtype)
    x = (weights.sum(dim=-2) * centres_x).sum(dim=-1) / total
    y = (weights.sum(dim=-1) * centres_y).sum(dim=-1) / total
    return torch.stack([x, y], dim=-1)


def to_image_pixels(points_norm: torch.Tensor, grid_size: int, input_size: int, crop_to_image: torch.Tensor) -> torch.Tensor:
    """(B, N, 2) normalised grid coordinates -> original-image pixels through each item's
    (B, 2, 3) crop-to-image affine (float64 result)."""
    crop = grid_to_crop(normalised_to_grid(points_norm.double(), grid_size), input_size, grid_size)
    return apply_affine(crop_to_image.double(), crop)
