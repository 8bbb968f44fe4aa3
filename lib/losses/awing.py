"""Adaptive Wing loss (Wang et al., ICCV 2019) for heatmaps with values in [0, 1]:

    AWing(y, p) = omega ln(1 + |y - p| / epsilon) ^ (alpha - y)       if |y - p| < theta
                  A |y - p| - C                                        otherwise
    A = omega (alpha - y) (theta / epsilon) ^ (alpha - y - 1) / (epsilon (1 + (theta / epsilon) ^ (alpha - y)))
    C = theta A - omega ln(1 + (theta / epsilon) ^ (alpha - y))

weighted by W = 1 + (weight - 1) * [3x3-dilated target > threshold].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def adaptive_wing(pred: torch.Tensor, target: torch.Tensor, omega: float = 14.0, theta: float = 0.5, epsilon: float = 1.0, alpha: float = 2.1) -> torch.Tensor:
    """Element-wise Adaptive Wing loss (same shape as the inputs)."""
    delta = (target - pred).abs()
    power = alpha - target
    ratio = theta / epsilon
    ratio_power = ratio**power  # one tensor power serves both A (ratio ** (power - 1) = ratio_power / ratio) and C
    a = omega * power * (ratio_power / ratio) / (epsilon * (1 + ratio_power))
    c = theta * a - omega * torch.log1p(ratio_power)
    small = omega * torch.log1p((delta / epsilon) ** power)
    return torch.where(delta < theta, small, a * delta - c)


def awing_weight_map(target: torch.Tensor, weight: float = 10.0, threshold: float = 0.2) -> torch.Tensor:
    """1 everywhere, ``weight`` where the 3x3 grey dilation of the (B, C, H, W) target exceeds ``threshold``."""
    dilated = F.max_pool2d(target, kernel_size=3, stride=1, padding=1)
    return 1.0 + (weight - 1.0) * (dilated > threshold).to(target.dtype)


class AWingLoss(nn.Module):
    """Weighted Adaptive Wing, mean over all elements; ``pred`` are probabilities in [0, 1]."""

    def __init__(self, omega: float = 14.0, theta: float = 0.5, epsilon: float = 1.0, alpha: float = 2.1, weight: float = 10.0, threshold: float = 0.2):
        super().__init__()
        self.params = (omega, theta, epsilon, alpha)
        self.weight, self.threshold = weight, threshold

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (adaptive_wing(pred, target, *self.params) * awing_weight_map(target, self.weight, self.threshold)).mean()
