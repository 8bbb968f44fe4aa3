"""What a model costs: parameters, forward FLOPs (``torch.utils.flop_counter``, batch 1; a
multiply-add counts 2, so GMACs = GFLOPs / 2), and where they go."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_size: int) -> int:
    """Forward FLOPs of one (1, 3, S, S) image."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, input_size, input_size))
    return counter.get_total_flops()


def flops_by_part(model: nn.Module, input_size: int) -> pd.DataFrame:
    """Where a :class:`~lib.models.landmark_net.LandmarkNet`'s forward FLOPs (batch 1) and
    parameters go: the backbone's stem and each of its stages (timm's top-level children, the
    ``blocks``/``stages`` containers split into their stages), the head, and the AAM fusion.
    Columns ``part``, ``gflops``, ``params_m``, ``flops_share``; the rows add up to the model."""
    parts = {}
    for name, child in model.backbone.body.named_children():
        container = name in ("blocks", "stages")  # timm's containers of stages (ResNet's layerN are stages already)
        parts.update({f"backbone.body.{name}.{k}": c for k, c in child.named_children()} if container else {f"backbone.body.{name}": child})
    parts.update({"head": model.head, "aam": model.aam})
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, input_size, input_size))
    counts = {name.removeprefix(f"{type(model).__name__}."): sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    rows = [{"part": name, "gflops": counts.get(name, 0) / 1e9, "params_m": count_parameters(module) / 1e6} for name, module in parts.items()]
    table = pd.DataFrame(rows)
    table["flops_share"] = table["gflops"] / table["gflops"].sum()
    return table
