"""timm backbones as stride-32 feature extractors (NCHW), never downloading weights."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from lib.models.export_safe import make_export_safe


class Backbone(nn.Module):
    """The last (stride-32) feature map of a timm model: (B, 3, S, S) -> (B, C, S/32, S/32).

    ``checkpoint``: a local timm/PyTorch state dict to load (weights are never downloaded).
    """

    def __init__(self, name: str, input_size: int, checkpoint: str | Path | None = None):
        super().__init__()
        kwargs = {"img_size": input_size} if name.startswith("swin") else {}
        self.body = timm.create_model(name, pretrained=False, features_only=True, out_indices=(-1,), **kwargs)
        self.channels = self.body.feature_info.channels()[-1]
        if self.body.feature_info.reduction()[-1] != 32:
            raise ValueError(f"backbone {name} does not end at stride 32")
        self.channels_last = str(getattr(self.body, "output_fmt", "NCHW")).endswith("NHWC")
        if checkpoint is not None:
            load_backbone_weights(self.body, checkpoint)
        make_export_safe(self.body)
        self._check_grid(name, input_size)

    def _check_grid(self, name: str, input_size: int) -> None:
        """Refuse an input size the backbone does not map to an exact (S/32, S/32) grid (timm's
        MobileViT-v2 pads its attention patches: 96 px gives 4x4, not 3x3), which would otherwise
        surface later as a shape mismatch between heatmaps and targets."""
        was_training = self.body.training
        self.body.eval()
        with torch.no_grad():
            grid = tuple(self(torch.zeros(1, 3, input_size, input_size)).shape[-2:])
        self.body.train(was_training)
        if grid != (input_size // 32, input_size // 32):
            raise ValueError(
                f"backbone {name} maps {input_size} px to a {grid[0]}x{grid[1]} grid, not {input_size // 32}x{input_size // 32}: choose another input size (MobileViT-v2 needs a multiple of 64)"
            )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.body(image)[-1]
        return features.permute(0, 3, 1, 2).contiguous() if self.channels_last else features


def load_backbone_weights(body: nn.Module, checkpoint: str | Path) -> None:
    """Load a classification checkpoint into a ``features_only`` model (heads are ignored);
    raises if no backbone weight matched."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"backbone checkpoint {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state.get("model", state))
    result = body.load_state_dict(state, strict=False)
    if len(result.missing_keys) == len(body.state_dict()):
        raise ValueError(f"{path}: no parameter matches the backbone")
