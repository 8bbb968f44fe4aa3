"""The composite training criterion: STAR on the fused heatmaps, AWing on point and edge maps,
and (student) heatmap and feature distillation. Returns the total and every term for logging."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lib.losses.awing import AWingLoss
from lib.losses.distill import FeatureKD, heatmap_kd
from lib.losses.star import STARLoss


@dataclass(frozen=True)
class LossWeights:
    """Weights of each term (0 turns a term off) and the KD mode (``l2`` | ``mse`` | ``kl``)."""

    star: float = 1.0
    pointmap: float = 10.0
    edgemap: float = 10.0
    kd: float = 0.0
    kd_mode: str = "l2"
    feature_kd: float = 0.0


class LandmarkCriterion(nn.Module):
    """``criterion(outputs, batch, teacher_outputs=None) -> (total, {term: value})``; the logged
    values are detached 0-d tensors on the loss's device (no host sync in the training step).

    ``outputs``/``teacher_outputs``: :class:`lib.models.landmark_net.LandmarkNet` dicts;
    ``batch``: a :class:`lib.data.dataset.LandmarkDataset` batch. Feature KD needs the two
    feature widths (``student_channels``, ``teacher_channels``) and owns a trainable projection:
    include ``criterion.parameters()`` in the optimiser.
    """

    def __init__(self, weights: LossWeights = LossWeights(), student_channels: int | None = None, teacher_channels: int | None = None):
        super().__init__()
        self.weights = weights
        self.star = STARLoss()
        self.awing = AWingLoss()
        self.feature_kd = FeatureKD(student_channels, teacher_channels) if weights.feature_kd > 0 else None
        if weights.feature_kd > 0 and (student_channels is None or teacher_channels is None):
            raise ValueError("feature KD needs student_channels and teacher_channels")

    def forward(self, outputs: dict, batch: dict, teacher_outputs: dict | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w = self.weights
        terms = {
            "star": (w.star, lambda: self.star(outputs["fused"], batch["points_norm"])),
            "pointmap": (w.pointmap, lambda: self.awing(torch.sigmoid(outputs["pointmap"]), batch["pointmap"])),
            "edgemap": (w.edgemap, lambda: self.awing(torch.sigmoid(outputs["edgemap"]), batch["edgemap"])),
        }
        if (w.kd > 0 or w.feature_kd > 0) and teacher_outputs is None:
            raise ValueError("distillation terms need teacher_outputs")
        if w.kd > 0:
            terms["kd"] = (w.kd, lambda: heatmap_kd(outputs["fused"], teacher_outputs["fused"], w.kd_mode))
        if w.feature_kd > 0:
            terms["feature_kd"] = (w.feature_kd, lambda: self.feature_kd(outputs["features"], teacher_outputs["features"]))
        total = outputs["fused"].new_zeros(())
        logged = {}
        for name, (weight, compute) in terms.items():
            if weight > 0:
                value = compute()
                total = total + weight * value
                logged[name] = value.detach()
        logged["total"] = total.detach()
        return total, logged
