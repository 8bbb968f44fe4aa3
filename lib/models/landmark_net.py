"""The landmark network: backbone -> head -> AAM fusion -> soft-argmax."""

from __future__ import annotations

import torch
from torch import nn

from lib.deploy.run_model import HEATMAP_STRIDE
from lib.models.aam import AAMFusion
from lib.models.decode import soft_argmax
from lib.schemes import Scheme


class LandmarkNet(nn.Module):
    """(B, 3, S, S) normalised images -> dict of
    features   (B, C, S/s, S/s) the backbone's last map, stride s 32 (or 16) (for feature distillation)
    heatmap, pointmap (B, N, S/4, S/4) and edgemap (B, E, S/4, S/4): head logits
    fused      (B, N, S/4, S/4) AAM-fused heatmaps (>= 0)
    landmarks  (B, N, 2) soft-argmax of ``fused``, ``x, y`` in [-1, 1] on the grid
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, scheme: Scheme, input_size: int, kind: str):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.aam = AAMFusion(scheme)
        self.scheme_name = scheme.name
        self.input_size = input_size
        self.grid_size = input_size // HEATMAP_STRIDE
        self.kind = kind

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        pyramid = self.backbone(image)
        maps = self.head(pyramid)
        fused = self.aam(maps["heatmap"], maps["pointmap"], maps["edgemap"])
        return {"features": pyramid[-1], **maps, "fused": fused, "landmarks": soft_argmax(fused)}
