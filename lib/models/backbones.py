"""timm backbones as multi-stride feature extractors (NCHW), never downloading weights."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from lib.models.export_safe import make_export_safe


class Backbone(nn.Module):
    """Feature maps of a timm model at the requested strides, finest first, the last at stride
    32: (B, 3, S, S) -> [(B, C_i, S/s_i, S/s_i) for s_i in ``strides``].

    ``strides``: ascending, ending at 32 (``(32,)``: the last map only, as the paper's heads use).
    ``channels`` is the stride-32 width, ``pyramid_channels`` the width at each stride.
    ``checkpoint``: a local timm/PyTorch state dict to load (weights are never downloaded).
    """

    def __init__(self, name: str, input_size: int, checkpoint: str | Path | None = None, strides: tuple[int, ...] = (32,)):
        super().__init__()
        kwargs = {"img_size": input_size} if name.startswith("swin") else {}
        self.body = timm.create_model(name, pretrained=False, features_only=True, **kwargs)
        reductions, widths = self.body.feature_info.reduction(), self.body.feature_info.channels()
        if list(strides) != sorted(set(strides)) or strides[-1] != 32 or reductions[-1] != 32 or not set(strides) <= set(reductions):
            raise ValueError(f"backbone {name} has strides {reductions}; strides must be ascending, among them and end at 32, got {list(strides)}")
        self.picks = [max(i for i, r in enumerate(reductions) if r == stride) for stride in strides]
        self.strides = tuple(strides)
        self.pyramid_channels = tuple(widths[i] for i in self.picks)
        self.channels = self.pyramid_channels[-1]
        self.channels_last = str(getattr(self.body, "output_fmt", "NCHW")).endswith("NHWC")
        if checkpoint is not None:
            load_backbone_weights(self.body, checkpoint)
        make_export_safe(self.body)
        self._check_grid(name, input_size)

    def _check_grid(self, name: str, input_size: int) -> None:
        """Refuse an input size the backbone does not map to an exact (S/s, S/s) grid at each
        stride s (timm's MobileViT-v2 pads its attention patches: 96 px gives 4x4 at stride 32,
        not 3x3), which would otherwise surface later as a shape mismatch between heatmaps and
        targets."""
        was_training = self.body.training
        self.body.eval()
        with torch.no_grad():
            maps = self(torch.zeros(1, 3, input_size, input_size))
        self.body.train(was_training)
        for stride, features in zip(self.strides, maps, strict=True):
            grid = tuple(features.shape[-2:])
            if grid != (input_size // stride, input_size // stride):
                raise ValueError(
                    f"backbone {name} maps {input_size} px to a {grid[0]}x{grid[1]} grid at stride {stride}, not {input_size // stride}x{input_size // stride}: choose another input size (MobileViT-v2 needs a multiple of 64)"
                )

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        every = self.body(image)
        maps = [every[i] for i in self.picks]
        return [m.permute(0, 3, 1, 2).contiguous() for m in maps] if self.channels_last else list(maps)


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
