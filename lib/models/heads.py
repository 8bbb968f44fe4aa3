"""Heads from the backbone's feature maps to the input/4 heatmap grid, and their three 1x1
outputs. Every head takes the backbone's list of maps (finest first, the last at stride 32); the
paper's two heads read only the stride-32 map."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lib.deploy.run_model import HEATMAP_STRIDE


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
    transposed convs x4 then x2 (BN + ReLU): the stride-32 map (B, C, s, s) -> three maps of
    (B, *, 8 s, 8 s)."""

    def __init__(self, in_channels: int, num_points: int, num_edges: int, channels: int = 256, noise_std: float = 0.1):
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, channels, 1)
        self.noise_std = noise_std
        self.upsample = nn.Sequential(_up_block(channels, 4), _up_block(channels, 2))
        self.outputs = Outputs(channels, num_points, num_edges)

    def forward(self, pyramid: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.reduce(pyramid[-1])
        if self.training and self.noise_std > 0:
            x = x + torch.randn_like(x) * self.noise_std
        return self.outputs(self.upsample(x))


class StudentHead(nn.Module):
    """The paper's student head, ``outputs(upsample_x8(features))``, computed in the cheaper
    order ``upsample_x8(outputs(features))``: the stride-32 map (B, C, s, s) -> three maps of
    (B, *, 8 s, 8 s).
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

    def forward(self, pyramid: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: self.upsample(logits) for name, logits in self.outputs(self.project(pyramid[-1])).items()}


def _separable_block(channels: int) -> nn.Sequential:
    """3x3 depthwise then 1x1 pointwise conv, each followed by BN + ReLU (shape-preserving)."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


class PyramidHead(nn.Module):
    """A top-down feature pyramid (as in FPN) over the backbone's maps at ``strides``
    (s_0 < ... < 32), then the three 1x1 outputs at stride s_0, upsampled bilinearly to stride 4:
    [(B, C_i, S/s_i, S/s_i)] -> three maps of (B, *, S/4, S/4).

    Each level adds a 1x1 projection of its map to ``channels`` to the x2-upsampled (bilinear)
    level above, then refines the sum with a depthwise-separable 3x3 block. Not in the paper: at a
    small input the stride-32 grid is a few cells (3x3 at 96 px), too coarse for the paper's
    heads to place a landmark; the finer maps carry where each part is. As in
    :class:`StudentHead`, the outputs run before the last upsampling (they commute with it).
    """

    def __init__(self, in_channels: Sequence[int], strides: Sequence[int], num_points: int, num_edges: int, channels: int = 64):
        super().__init__()
        if len(in_channels) != len(strides) or any(b != 2 * a for a, b in zip(strides, strides[1:], strict=False)) or strides[0] < HEATMAP_STRIDE:
            raise ValueError(
                f"pyramid strides must double from level to level, from at least 4, one width each; got strides {list(strides)}, widths {list(in_channels)}"
            )
        self.lateral = nn.ModuleList(nn.Conv2d(width, channels, 1) for width in in_channels)
        self.refine = nn.ModuleList(_separable_block(channels) for _ in in_channels[:-1])
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        factor = strides[0] // HEATMAP_STRIDE
        self.upsample = nn.Upsample(scale_factor=factor, mode="bilinear", align_corners=False) if factor > 1 else nn.Identity()
        self.outputs = Outputs(channels, num_points, num_edges)

    def forward(self, pyramid: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.lateral[-1](pyramid[-1])
        for level in range(len(pyramid) - 2, -1, -1):
            x = self.refine[level](self.up2(x) + self.lateral[level](pyramid[level]))
        return {name: self.upsample(logits) for name, logits in self.outputs(x).items()}
