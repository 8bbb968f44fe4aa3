"""Heads from stride-32 features to the input/4 heatmap grid, and their three 1x1 outputs."""

from __future__ import annotations

import torch
from torch import nn


class Outputs(nn.Module):
    """Three 1x1 convs: N landmark heatmaps, N point maps, E edge maps (logits)."""

    def __init__(self, channels: int, num_points: int, num_edges: int):
        super().__init__()
        self.heatmap = nn.Conv2d(channels, num_points, 1)
        self.pointmap = nn.Conv2d(channels, num_points, 1)
        self.edgemap = nn.Conv2d(channels, num_edges, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"heatmap": self.heatmap(x), "pointmap": self.pointmap(x), "edgemap": self.edgemap(x)}


def _up_block(channels: int, factor: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(channels, channels, factor, stride=factor, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class TeacherHead(nn.Module):
    """1x1 conv to ``channels``, Gaussian feature noise (std ``noise_std``, training only),
    transposed convs x4 then x2 (BN + ReLU): (B, C, s, s) -> (B, channels, 8 s, 8 s)."""

    def __init__(self, in_channels: int, num_points: int, num_edges: int, channels: int = 256, noise_std: float = 0.1):
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, channels, 1)
        self.noise_std = noise_std
        self.upsample = nn.Sequential(_up_block(channels, 4), _up_block(channels, 2))
        self.outputs = Outputs(channels, num_points, num_edges)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.reduce(features)
        if self.training and self.noise_std > 0:
            x = x + torch.randn_like(x) * self.noise_std
        return self.outputs(self.upsample(x))


class StudentHead(nn.Module):
    """The paper's student head, ``outputs(upsample_x8(features))``, computed in the cheaper
    order ``upsample_x8(outputs(features))``: (B, C, s, s) -> three maps of (B, *, 8 s, 8 s).
    A 1x1 projection to ``channels`` comes first when the backbone width differs, so the outputs
    can start from a teacher's.

    The two orders give the same maps (to float rounding): nearest and bilinear
    (``align_corners=False``) upsampling make every output cell a convex combination of input
    cells, with weights that sum to 1, and a 1x1 conv with its bias is affine per cell, so the two
    commute. Upsampling the N + N + E output maps instead of ``channels`` feature maps, and running
    the 1x1 convs on s x s cells instead of 8s x 8s, saves ~64x the convs' work.

    ``upsample``: ``nearest`` (the paper) makes every map constant over 8x8-cell blocks, so the
    soft-argmax can only place a landmark by mixing block weights; ``bilinear`` (our default)
    gives smooth maps at the same cost in parameters.
    """

    def __init__(self, in_channels: int, num_points: int, num_edges: int, channels: int = 256, upsample: str = "bilinear"):
        super().__init__()
        if upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be nearest or bilinear, got {upsample!r}")
        self.project = nn.Identity() if in_channels == channels else nn.Conv2d(in_channels, channels, 1)
        self.upsample = nn.Upsample(scale_factor=8, mode=upsample, **({"align_corners": False} if upsample == "bilinear" else {}))
        self.outputs = Outputs(channels, num_points, num_edges)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: self.upsample(logits) for name, logits in self.outputs(self.project(features)).items()}
