"""Exponential moving average of a model's weights, evaluated instead of the raw weights."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """``ema = decay_t * ema + (1 - decay_t) * weights`` after every optimiser step, with the
    decay ramped up as ``decay * (1 - exp(-updates / warmup))`` so early averages are not
    dominated by the random initialisation. Floating-point buffers (BN statistics) are averaged
    too; integer ones, and the whole state of a module whose parameters take no gradient (a frozen
    stage: :class:`lib.models.backbones.Backbone`), are copied, so what does not train stays bit
    for bit what it was."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: int = 200):
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.fixed = untrained_state(model)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = self.decay * (1 - math.exp(-self.updates / self.warmup))
        source = model.state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point and name not in self.fixed:
                value.mul_(decay).add_(source[name].detach(), alpha=1 - decay)
            else:
                value.copy_(source[name])

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = state["updates"]


def untrained_state(model: nn.Module) -> set[str]:
    """The ``state_dict`` names of every module whose own parameters all take no gradient (its
    parameters and buffers: a frozen batch norm's statistics with its weights)."""
    names = set()
    for prefix, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if own and not any(p.requires_grad for p in own):
            entries = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
            names |= {f"{prefix}.{name}" if prefix else name for name, _ in entries}
    return names
