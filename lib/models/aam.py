"""The anisotropic attention module (AAM, from ADNet) as a fusion of the three head outputs.

    fused = E2H(sigmoid(edge)) * sigmoid(point) * ReLU(InstanceNorm(heatmap))

E2H is a fixed 1x1 map from the E part edge maps to the N landmarks: landmark k takes the edge
map of its part. The product is stretched along the facial contour and tight across it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lib.schemes import Scheme


def edge_to_landmark_matrix(scheme: Scheme) -> torch.Tensor:
    """(N, E) one-hot matrix: row k selects the part of landmark k."""
    matrix = torch.zeros(scheme.num_points, scheme.num_parts)
    matrix[torch.arange(scheme.num_points), torch.as_tensor(scheme.part_of_point)] = 1.0
    return matrix


class AAMFusion(nn.Module):
    """(heatmap (B, N, G, G), pointmap (B, N, G, G), edgemap (B, E, G, G)) -> fused (B, N, G, G) >= 0."""

    def __init__(self, scheme: Scheme, eps: float = 1e-5):
        super().__init__()
        self.register_buffer("e2h", edge_to_landmark_matrix(scheme)[:, :, None, None], persistent=False)
        self.eps = eps

    def forward(self, heatmap: torch.Tensor, pointmap: torch.Tensor, edgemap: torch.Tensor) -> torch.Tensor:
        edge_per_landmark = F.conv2d(torch.sigmoid(edgemap), self.e2h)
        normalised = F.relu(F.instance_norm(heatmap, eps=self.eps))
        return edge_per_landmark * torch.sigmoid(pointmap) * normalised
