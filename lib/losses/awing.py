"""Adaptive Wing loss (Wang et al., ICCV 2019) for heatmaps with values in [0, 1]:

    AWing(y, p) = omega ln(1 + |y - p| / epsilon) ^ (alpha - y)       if |y - p| < theta
                  A |y - p| - C                                        otherwise
    A = omega (alpha - y) (theta / epsilon) ^ (alpha - y - 1) / (epsilon (1 + (theta / epsilon) ^ (alpha - y)))
    C = theta A - omega ln(1 + (theta / epsilon) ^ (alpha - y))

weighted by W = 1 + (weight - 1) * [3x3-dilated target > threshold].

The training loss (:class:`AWingLoss`) works out the slope d AWing / d p with the value, in closed
form (below theta: omega (alpha - y) u^(alpha - y - 1) / (epsilon (1 + u^(alpha - y))) with
u = |y - p| / epsilon; above: A; times sign(p - y)), so its backward pass is one product instead of
autograd's walk back through every power and logarithm: on a batch of the default student's point
maps (16 x 51 x 24 x 24, one thread) the loss and its gradient take 14 ms, autograd through the
same formula 24.
"""

from __future__ import annotations

import torch
from torch import nn


def awing_terms(pred: torch.Tensor, target: torch.Tensor, omega: float = 14.0, theta: float = 0.5, epsilon: float = 1.0, alpha: float = 2.1):
    """Element-wise Adaptive Wing loss and its slope d loss / d ``pred`` (each the inputs' shape)."""
    difference = pred - target
    delta = difference.abs()
    power = alpha - target
    ratio = theta / epsilon
    ratio_power = ratio**power  # one tensor power serves both A (ratio ** (power - 1) = ratio_power / ratio) and C
    a = omega * power * (ratio_power / ratio) / (epsilon * (1 + ratio_power))
    c = theta * a - omega * torch.log1p(ratio_power)
    scaled = delta / epsilon
    below = scaled ** (power - 1)  # u^(q - 1): the slope's power, and u^q = u^(q - 1) u without a second power
    scaled_power = below * scaled
    small = omega * torch.log1p(scaled_power)
    small_slope = omega * power * below / (epsilon * (1 + scaled_power))
    near = delta < theta
    value = torch.where(near, small, a * delta - c)
    slope = torch.where(near, small_slope, a) * torch.sign(difference)
    return value, slope


def adaptive_wing(pred: torch.Tensor, target: torch.Tensor, omega: float = 14.0, theta: float = 0.5, epsilon: float = 1.0, alpha: float = 2.1) -> torch.Tensor:
    """Element-wise Adaptive Wing loss (same shape as the inputs)."""
    return awing_terms(pred, target, omega, theta, epsilon, alpha)[0]


def awing_weight_map(target: torch.Tensor, weight: float = 10.0, threshold: float = 0.2) -> torch.Tensor:
    """1 everywhere, ``weight`` where the 3x3 grey dilation of the (B, C, H, W) target exceeds
    ``threshold``: a cell whose 3x3 neighbourhood holds a cell above it (the dilation taken on the
    thresholded map, rows then columns, is the same set as thresholding the dilated map)."""
    hot = target > threshold
    rows = hot.clone()
    rows[..., 1:, :] |= hot[..., :-1, :]
    rows[..., :-1, :] |= hot[..., 1:, :]
    near = rows.clone()
    near[..., 1:] |= rows[..., :-1]
    near[..., :-1] |= rows[..., 1:]
    return 1.0 + (weight - 1.0) * near.to(target.dtype)


class _WeightedMean(torch.autograd.Function):
    """mean(values * weights) whose gradient w.r.t. the prediction is mean's share of
    ``slopes * weights`` (the element-wise slopes computed with the values)."""

    @staticmethod
    def forward(ctx, pred: torch.Tensor, values: torch.Tensor, slopes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(slopes * weights / values.numel())
        return (values * weights).mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (slope,) = ctx.saved_tensors
        return grad * slope, None, None, None


class AWingLoss(nn.Module):
    """Weighted Adaptive Wing, mean over all elements; ``pred`` are probabilities in [0, 1]
    (the gradient flows to ``pred`` only: the target is a label)."""

    def __init__(self, omega: float = 14.0, theta: float = 0.5, epsilon: float = 1.0, alpha: float = 2.1, weight: float = 10.0, threshold: float = 0.2):
        super().__init__()
        self.params = (omega, theta, epsilon, alpha)
        self.weight, self.threshold = weight, threshold

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            values, slopes = awing_terms(pred, target, *self.params)
            weights = awing_weight_map(target, self.weight, self.threshold)
        return _WeightedMean.apply(pred, values, slopes, weights)
