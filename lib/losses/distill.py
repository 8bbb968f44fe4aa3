"""Knowledge-distillation losses: the student's fused heatmaps regress the frozen teacher's
(the paper's L_KD), and, as our addition, student features projected to the teacher's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def map_distribution(maps: torch.Tensor, floor: float = 1e-4) -> torch.Tensor:
    """Each (B, N, G, G) map as the distribution the soft-argmax decodes: clipped at 0, plus a
    ``floor`` per cell (so every cell has mass and a log exists), divided by its sum."""
    weights = maps.clamp_min(0) + floor
    return weights / weights.sum(dim=(-2, -1), keepdim=True)


def heatmap_kd(student: torch.Tensor, teacher: torch.Tensor, mode: str = "l2") -> torch.Tensor:
    """Distance between (B, N, G, G) fused heatmaps.

    ``l2`` (the paper): ||G_T - G_S||_2 per image and landmark, averaged over both;
    ``mse`` (the authors' code): mean squared difference over all elements;
    ``kl`` (ours): KL(p_T || p_S) in nats between the maps as distributions
    (:func:`map_distribution`), averaged over images and landmarks. It compares where each map
    puts its mass and how widely, whatever its scale: the raw maps are nearly all zero, so the
    MSE of them carries almost no signal once both networks have found the face.
    """
    teacher = teacher.detach()
    if mode == "l2":
        return torch.sqrt(((student - teacher) ** 2).sum(dim=(-2, -1)) + 1e-12).mean()
    if mode == "mse":
        return F.mse_loss(student, teacher)
    if mode == "kl":
        p_teacher, p_student = map_distribution(teacher), map_distribution(student)
        return (p_teacher * (p_teacher.log() - p_student.log())).sum(dim=(-2, -1)).mean()
    raise ValueError(f"unknown heatmap KD mode {mode!r}; options: l2, mse, kl")


class FeatureKD(nn.Module):
    """MSE between a 1x1 projection of the student's stride-32 features (B, Cs, h, w) and the
    teacher's (B, Ct, h, w). The projection is trained with the student."""

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.project = nn.Conv2d(student_channels, teacher_channels, 1)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.project(student), teacher.detach())
