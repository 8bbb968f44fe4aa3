"""STAR loss v2 (Zhou et al., CVPR 2023): the error decomposed along the principal axes of each
predicted heatmap's distribution, each axis weighted by its spread, plus an energy term.

For a heatmap H normalised to sum 1 on cell centres p in [-1, 1]:
    mu = sum_p H p,  S = sum_p H (p - mu)(p - mu)^T / (V1 - V2 / V1),  V1 = sum H = 1, V2 = sum H^2
    S = lambda_1 u_1 u_1^T + lambda_2 u_2 u_2^T  (lambda_1 <= lambda_2)
    L = mean[ d(u_1 . e) / sqrt(lambda_1 + eps) + d(u_2 . e) / sqrt(lambda_2 + eps) ] + w mean(|lambda_1| + |lambda_2|)
with e = g - mu for ground truth g and d the smooth-L1 with its knee at ``scale`` (0.01).
The 2x2 eigen-decomposition is closed form, on the tensors' own device (no CPU round trip).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lib.models.decode import cell_centres


def symmetric_eig2(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of symmetric [[a, b], [b, c]] (any batch shape).

    Returns (lambda_1, lambda_2, u_1, u_2): eigenvalues ascending, unit eigenvectors (..., 2).
    ``eps`` keeps gradients finite where the matrix is isotropic (a = c, b = 0).
    """
    half_diff = (a - c) / 2
    mean = (a + c) / 2
    radius = torch.sqrt(half_diff**2 + b**2 + eps)
    angle = 0.5 * torch.atan2(b, half_diff + eps)  # direction of the larger eigenvalue
    cos, sin = torch.cos(angle), torch.sin(angle)
    major = torch.stack([cos, sin], dim=-1)
    minor = torch.stack([-sin, cos], dim=-1)
    return mean - radius, mean + radius, minor, major


def heatmap_moments(maps: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, N, 2) and unbiased weighted covariance entries (B, N, 3) = (sxx, sxy, syy) of
    each (B, N, G, G) map taken as a distribution on [-1, 1].

    The variances come from the map's marginals (sxx = sum_x m(x) (x - mu_x)^2 with m(x) the
    column sums) and the covariance from one matrix-vector product per map
    (sum_y (y - mu_y) sum_x H(y, x) (x - mu_x)): the same centred sums as over the whole map, in
    a few passes over it instead of one per product."""
    weights = maps.clamp_min(0)
    weights = weights / (weights.sum(dim=(-2, -1), keepdim=True) + eps)
    xs = cell_centres(maps.shape[-1], maps.device, maps.dtype)
    ys = cell_centres(maps.shape[-2], maps.device, maps.dtype)
    along_x, along_y = weights.sum(dim=-2), weights.sum(dim=-1)  # (B, N, G) marginals
    mean_x = (along_x * xs).sum(dim=-1)
    mean_y = (along_y * ys).sum(dim=-1)
    dx = xs - mean_x[..., None]  # (B, N, G)
    dy = ys - mean_y[..., None]
    correction = 1.0 - (weights**2).sum(dim=(-2, -1))  # V1 - V2 / V1 with V1 = 1
    sxx = (along_x * dx * dx).sum(dim=-1) / correction
    syy = (along_y * dy * dy).sum(dim=-1) / correction
    sxy = ((weights @ dx[..., None])[..., 0] * dy).sum(dim=-1) / correction
    return torch.stack([mean_x, mean_y], dim=-1), torch.stack([sxx, sxy, syy], dim=-1)


class STARLoss(nn.Module):
    """STAR v2 on (B, N, G, G) heatmaps against (B, N, 2) ground truth in [-1, 1]."""

    def __init__(self, w: float = 1.0, scale: float = 0.01, eps: float = 1e-5):
        super().__init__()
        self.w, self.scale, self.eps = w, scale, eps

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(x, torch.zeros_like(x), beta=self.scale, reduction="none")

    def forward(self, maps: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mean, cov = heatmap_moments(maps)
        lambda_1, lambda_2, u_1, u_2 = symmetric_eig2(cov[..., 0], cov[..., 1], cov[..., 2])
        error = target - mean
        along_1 = self.distance((u_1 * error).sum(dim=-1)) / torch.sqrt(lambda_1.clamp_min(0) + self.eps)
        along_2 = self.distance((u_2 * error).sum(dim=-1)) / torch.sqrt(lambda_2.clamp_min(0) + self.eps)
        return (along_1 + along_2).mean() + self.w * (lambda_1.abs() + lambda_2.abs()).mean()
