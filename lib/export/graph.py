"""The graph that is exported: raw RGB pixels in, landmarks and fused heatmaps out.

Input ``(1, S, S, 3)`` float32 RGB in ``[0, 255]`` (NHWC, the layout images already have on a
phone); the ``(x - 127.5) / 127.5`` normalisation is inside the graph, so a runtime only crops
and resizes. Outputs, in this order:

    landmarks  (1, N, 2) float32: soft-argmax ``x, y`` in [-1, 1] on the heatmap grid
               (:func:`lib.data.geometry.normalised_to_grid` then ``grid_to_crop`` give crop pixels)
    heatmaps   (1, N, S/4, S/4) float32: the AAM-fused heatmaps (for the parity gate)

Decoding stays in the graph (a few reductions), so the file is usable on its own.
"""

from __future__ import annotations

import torch
from torch import nn

from lib.data.dataset import PIXEL_MEAN, PIXEL_SCALE
from lib.models.export_safe import make_export_safe
from lib.models.landmark_net import LandmarkNet


class DeployableLandmarks(nn.Module):
    """(1, S, S, 3) RGB pixels -> (landmarks (1, N, 2), fused heatmaps (1, N, S/4, S/4))."""

    def __init__(self, model: LandmarkNet):
        super().__init__()
        self.model = make_export_safe(model).eval()
        self.input_size = model.input_size

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image = (pixels.permute(0, 3, 1, 2) - PIXEL_MEAN) / PIXEL_SCALE
        outputs = self.model(image)
        return outputs["landmarks"], outputs["fused"]
