"""timm backbones as multi-stride feature extractors (NCHW), from scratch or from pretrained
weights: a timm tag (``mobilevitv2_050.cvnets_in1k``), fetched through timm's hub and cache only
when a profile names one; weights a pinned package ships (:mod:`lib.models.packaged_weights`,
read from disk); or a local state-dict file.
"""

from __future__ import annotations

import socket
from pathlib import Path

import huggingface_hub
import timm
import torch
from torch import nn

from lib.models.export_safe import make_export_safe
from lib.models.packaged_weights import PACKAGED_WEIGHTS, PackagedWeights


class Backbone(nn.Module):
    """Feature maps of a timm model at the requested strides, finest first: (B, 3, S, S) ->
    [(B, C_i, S/s_i, S/s_i) for s_i in ``strides``].

    ``strides``: ascending, ending at 32 (``(32,)``: the last map only, as the paper's heads use)
    or at 16, which drops the stages beyond (a cheaper network: EfficientNet and MobileNet
    bodies). ``channels`` is the last map's width, ``pyramid_channels`` the width at each stride.
    ``pretrained``: None (random weights), a timm tag of this architecture (``<name>.<tag>``), a
    package of :data:`~lib.models.packaged_weights.PACKAGED_WEIGHTS` or a local state-dict file
    (:func:`pretrained_source`). With pretrained weights the kit's inputs (``[-1, 1]``) are mapped
    to the normalisation the weights were trained with (the tag's, or the architecture's default
    tag's for a package or a file; no mapping when that is the kit's own, as EfficientNet-Lite's).
    ``load_weights`` False builds the same network without fetching or reading them (a
    checkpoint's weights replace them anyway).

    ``frozen_stages``: None, or k >= 0 to keep the stem and the first k stages as the weights
    left them (a body of ``blocks`` stages): their parameters take no gradient and their batch
    norms keep the weights' statistics (evaluation mode even while the network trains). A
    pretrained body's early filters then read photographs as they learned to, whatever the
    training images look like, and the backward pass stops at the first trained stage.
    """

    def __init__(
        self,
        name: str,
        input_size: int,
        pretrained: str | None = None,
        strides: tuple[int, ...] = (32,),
        load_weights: bool = True,
        frozen_stages: int | None = None,
    ):
        super().__init__()
        kwargs = {"img_size": input_size} if name.startswith("swin") else {}
        source = pretrained_source(name, pretrained, must_exist=load_weights)
        if isinstance(source, str) and load_weights:
            ensure_available(source)
            self.body = timm.create_model(source, pretrained=True, features_only=True, **kwargs)
        else:
            self.body = timm.create_model(name, pretrained=False, features_only=True, **kwargs)
        if isinstance(source, Path) and load_weights:
            load_backbone_weights(self.body, read_state_dict(source), str(source))
        if isinstance(source, PackagedWeights) and load_weights:
            load_backbone_weights(self.body, source.state_dict(self.body), source.distribution)
        affine = input_affine(source if isinstance(source, str) else name) if source is not None else IDENTITY_AFFINE
        self.renormalise = affine != IDENTITY_AFFINE  # weights trained on the kit's [-1, 1]: nothing to map
        if self.renormalise:
            scale, shift = affine
            self.register_buffer("input_scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("input_shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
        reductions, widths = self.body.feature_info.reduction(), self.body.feature_info.channels()
        if list(strides) != sorted(set(strides)) or strides[-1] not in (16, 32) or reductions[-1] != 32 or not set(strides) <= set(reductions):
            raise ValueError(f"backbone {name} has strides {reductions}; strides must be ascending, among them and end at 16 or 32, got {list(strides)}")
        self.picks = [max(i for i, r in enumerate(reductions) if r == stride) for stride in strides]
        self.strides = tuple(strides)
        if self.strides[-1] < 32:
            self._drop_stages_after(self.body.feature_info.info[self.picks[-1]]["module"], name)
        self.pyramid_channels = tuple(widths[i] for i in self.picks)
        self.channels = self.pyramid_channels[-1]
        self.channels_last = str(getattr(self.body, "output_fmt", "NCHW")).endswith("NHWC")
        make_export_safe(self.body)
        self.frozen = self._freeze(frozen_stages, name)
        self._check_grid(name, input_size)

    def _drop_stages_after(self, module: str, name: str) -> None:
        """Remove the stages after ``module`` (the last map taken, e.g. ``blocks.4``) from a body
        that runs its stages as ``blocks`` (timm's EfficientNet and MobileNet families), so an
        ending at stride 16 computes nothing beyond it; a body of another layout is refused."""
        stage = module.removeprefix("blocks.")
        if not (stage.isdigit() and isinstance(getattr(self.body, "blocks", None), nn.Sequential)):
            raise ValueError(f"backbone {name}: only a body of `blocks` stages (timm's EfficientNet and MobileNet families) can end before stride 32")
        self.body.blocks = self.body.blocks[: int(stage) + 1]

    def _freeze(self, frozen_stages: int | None, name: str) -> list[nn.Module]:
        """The stem and the first ``frozen_stages`` stages, their parameters set to take no
        gradient; none when ``frozen_stages`` is None."""
        if frozen_stages is None:
            return []
        stages = getattr(self.body, "blocks", None)
        if not (isinstance(stages, nn.Sequential) and hasattr(self.body, "conv_stem")):
            raise ValueError(f"backbone {name}: frozen_stages needs a body of a stem and `blocks` stages (timm's EfficientNet and MobileNet families)")
        if not 0 <= frozen_stages < len(stages):
            raise ValueError(f"backbone {name}: frozen_stages must be from 0 to {len(stages) - 1} (it has {len(stages)} stages), got {frozen_stages}")
        frozen = [self.body.conv_stem, self.body.bn1, *stages[:frozen_stages]]
        for module in frozen:
            module.requires_grad_(False)
        return frozen

    def train(self, mode: bool = True) -> Backbone:
        """As :meth:`nn.Module.train`, the frozen stages staying in evaluation mode."""
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

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
        every = self.body(image * self.input_scale + self.input_shift if self.renormalise else image)
        maps = [every[i] for i in self.picks]
        return [m.permute(0, 3, 1, 2).contiguous() for m in maps] if self.channels_last else list(maps)


IDENTITY_AFFINE = ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))  # input_affine's (scale, shift) for weights trained on the kit's inputs
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
HUB_HOST = "huggingface.co"


def pretrained_source(name: str, pretrained: str | None, must_exist: bool = True) -> str | Path | PackagedWeights | None:
    """What ``pretrained`` names: None; a package's weights for the architecture ``name``; a
    local file (a path with a weights suffix, or one that exists), which must exist when
    ``must_exist`` (its weights are about to be read); or a timm tag of the architecture."""
    if pretrained is None:
        return None
    if pretrained in PACKAGED_WEIGHTS:
        packaged = PACKAGED_WEIGHTS[pretrained]
        if packaged.architecture != name:
            raise ValueError(f"pretrained {pretrained!r} holds weights of {packaged.architecture}, not of the backbone {name}")
        return packaged
    path = Path(pretrained)
    if path.suffix in WEIGHT_SUFFIXES or path.exists():
        if must_exist and not path.is_file():
            raise FileNotFoundError(f"pretrained backbone weights {path} not found")
        return path
    architecture, tag = timm.models.split_model_name_tag(pretrained)
    if architecture != name or not tag:
        raise ValueError(
            f"pretrained {pretrained!r} must be a timm tag of the backbone {name} (e.g. {name}.<tag>: see timm.list_pretrained('{name}*')), "
            f"a package of weights ({', '.join(sorted(PACKAGED_WEIGHTS))}) or a local file"
        )
    if timm.models.get_pretrained_cfg(pretrained) is None:
        raise ValueError(f"timm has no pretrained weights {pretrained!r}; known for {name}: {timm.list_pretrained(name + '.*')}")
    return pretrained


def input_affine(name_or_tag: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(scale, shift)`` taking the kit's inputs, ``(pixel - 127.5) / 127.5``, to the
    weights' own normalisation ``(pixel / 255 - mean) / std`` (timm's pretrained config: metadata,
    no download)."""
    cfg = timm.models.get_pretrained_cfg(name_or_tag)
    if cfg is None:
        raise ValueError(f"timm knows no pretrained normalisation for {name_or_tag!r}")
    scale = tuple(0.5 / s for s in cfg.std)
    shift = tuple((0.5 - m) / s for m, s in zip(cfg.mean, cfg.std, strict=True))
    return scale, shift


def is_cached(tag: str) -> bool:
    """Whether timm would find the weights of ``tag`` without the network (Hugging Face cache or
    torch hub's checkpoint folder)."""
    cfg = timm.models.get_pretrained_cfg(tag)
    if cfg.hf_hub_id:
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        if any(isinstance(huggingface_hub.try_to_load_from_cache(cfg.hf_hub_id, n), str) for n in names):
            return True
    return bool(cfg.url) and (Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name).is_file()


def hub_reachable(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def ensure_available(tag: str) -> None:
    """Raise at once, naming the tag, the cache folder and the local-file alternative, when the
    weights of ``tag`` are neither cached nor downloadable (this machine is offline)."""
    if is_cached(tag) or hub_reachable():
        return
    raise RuntimeError(
        f"pretrained weights {tag!r} are not in timm's cache ({huggingface_hub.constants.HF_HUB_CACHE}, {Path(torch.hub.get_dir()) / 'checkpoints'}) "
        f"and {HUB_HOST} cannot be reached: run once on a machine that is online (timm caches them), "
        "or set the model's `pretrained` to a local state-dict file (.pth/.safetensors) of this architecture"
    )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (``.safetensors``, or a torch file holding a state dict,
    bare or under ``state_dict``/``model``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state.get("model", state))


def load_backbone_weights(body: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a classification state dict into a ``features_only`` model: its head's keys are
    ignored, and a backbone parameter the weights lack is an error naming ``source`` and the
    first missing ones."""
    own = body.state_dict()
    missing = [key for key, value in own.items() if key not in state or state[key].shape != value.shape]
    if missing:
        raise ValueError(
            f"{source}: not weights of this backbone: {len(missing)} of its {len(own)} tensors are missing or of another shape, first {missing[:5]}"
        )
    body.load_state_dict({key: state[key] for key in own})
