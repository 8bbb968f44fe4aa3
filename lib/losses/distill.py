"""Knowledge-distillation losses: the student's fused heatmaps regress the frozen teacher's
(the paper's L_KD), and, as our addition, student features projected to the teacher's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def heatmap_kd(student: torch.Tensor, teacher: torch.Tensor, mode: str = "l2") -> torch.Tensor:
    """Distance between (B, N, G, G) fused heatmaps.

    ``l2`` (the paper): ||G_T - G_S||_2 per image and landmark, averaged over both;
    ``mse`` (the authors' code): mean squared difference over all elements.
    """
    teacher = teacher.detach()
    if mode == "l2":
        return torch.sqrt(((student - teacher) ** 2).sum(dim=(-2, -1)) + 1e-12).mean()
    if mode == "mse":
        return F.mse_loss(student, teacher)
    raise ValueError(f"unknown heatmap KD mode {mode!r}; options: l2, mse")


class FeatureKD(nn.Module):
    """MSE between a 1x1 projection of the student's stride-32 features (B, Cs, h, w) and the
    teacher's (B, Ct, h, w). The projection is trained with the student."""

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.project = nn.Conv2d(student_channels, teacher_channels, 1)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.project(student), teacher.detach())
