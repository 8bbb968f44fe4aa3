"""Structured pruning: fewer channels in every layer of a trained network, then fine-tuning.

:func:`prune_channels` removes the same share of channels from every prunable layer group
(torch-pruning's dependency graph keeps residual additions, depthwise convolutions and the
layers that consume a pruned layer consistent), by the L2 norm of their weights, and keeps the
three output convolutions whole (N heatmaps, N point maps, E edge maps). A pruned network is no
longer what its config builds: its checkpoints hold the config (with ``prune_ratio``) and the
weights, and :func:`reshape_like` gives a freshly built network the weights' shapes before they
are loaded (no torch-pruning needed to load one: export and inference run without it).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from lib.models.landmark_net import LandmarkNet


def output_layers(model: LandmarkNet) -> list[nn.Module]:
    """The convolutions whose channels are the landmark, point and edge maps."""
    outputs = model.head.outputs
    return [outputs.heatmap, outputs.pointmap, outputs.edgemap]


# Backbones torch-pruning 1.6.1 cannot prune: tracing MobileViT-v2 did not finish in 5 minutes
# (its unfold/attention blocks), and attention layers would need head-aware pruning anyway.
UNPRUNABLE_BACKBONES = ("mobilevit", "swin")


def prune_channels(model: LandmarkNet, ratio: float) -> None:
    """Remove ``ratio`` of the channels of every prunable layer group of ``model`` in place,
    ranked by their weights' L2 norm; the output layers keep theirs. 0 < ratio < 1 (a config
    naming a backbone of :data:`UNPRUNABLE_BACKBONES` is refused when the model is built)."""
    example = torch.zeros(1, 3, model.input_size, model.input_size)
    prune_network(model, example, ratio, output_layers(model))
    refresh_widths(model)


def prune_network(model: nn.Module, example: torch.Tensor, ratio: float, keep: list[nn.Module]) -> None:
    """torch-pruning's structured pruning of any network traced on ``example``: ``ratio`` of
    each layer group's channels, those of smallest L2 norm (over the whole group: the layer,
    its normalisation and the next layer's inputs), go; the ``keep`` layers keep their outputs."""
    import torch_pruning as tp  # only pruning needs it

    if not 0 < ratio < 1:
        raise ValueError(f"prune_ratio must lie between 0 and 1, got {ratio}")
    was_training = model.training
    model.eval()
    pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=ratio, ignored_layers=keep)
    pruner.step()
    model.train(was_training)


def reshape_like(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    """Give each layer of ``model`` the shapes of ``weights`` (a pruned network's state dict):
    convolutions, batch norms and linear layers get the channel counts the weights imply (a
    depthwise convolution stays depthwise), so ``model.load_state_dict(weights)`` then fits."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        own = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
        changed = {key: weights[prefix + key] for key, value in own.items() if prefix + key in weights and weights[prefix + key].shape != value.shape}
        if not changed:
            continue
        if isinstance(module, nn.Conv2d):
            out_channels, per_group = changed.get("weight", module.weight).shape[:2]
            depthwise = module.groups > 1 and module.groups == module.in_channels
            module.groups = out_channels if depthwise else module.groups
            module.in_channels, module.out_channels = per_group * module.groups, out_channels
        elif isinstance(module, nn.BatchNorm2d):
            module.num_features = changed.get("weight", module.weight).shape[0]
        elif isinstance(module, nn.Linear):
            module.out_features, module.in_features = changed["weight"].shape
        else:
            raise ValueError(f"{name}: a {type(module).__name__} with pruned weights {sorted(changed)}: not a layer reshape_like knows")
        for key, tensor in changed.items():
            if key in module._parameters:
                module._parameters[key] = nn.Parameter(torch.empty_like(tensor), requires_grad=module._parameters[key].requires_grad)
            else:
                module._buffers[key] = torch.empty_like(tensor)
    refresh_widths(model)


def refresh_widths(model: nn.Module) -> None:
    """Record a (possibly pruned) network's feature widths on its backbone (``channels``,
    ``pyramid_channels``: what the feature-distillation adapter is built from)."""
    if not isinstance(model, LandmarkNet):
        return
    was_training = model.training
    model.eval()
    with torch.no_grad():
        maps = model.backbone(torch.zeros(1, 3, model.input_size, model.input_size))
    model.train(was_training)
    model.backbone.pyramid_channels = tuple(int(m.shape[1]) for m in maps)
    model.backbone.channels = model.backbone.pyramid_channels[-1]
