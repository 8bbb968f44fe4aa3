"""Models built by name from a config: ``build_model({"kind": "student", ...})``.

Config keys (defaults in :data:`DEFAULTS`): ``kind`` (teacher | student), ``backbone`` (a timm
name), ``input_size`` (a multiple of 32), ``scheme``, ``head`` (``paper``: the paper's head of
the kind, transposed convs for the teacher, upsampling for the student; ``pyramid``: a top-down
feature pyramid over the backbone's maps at ``pyramid_strides``, ending at 32, or at 16 for a
cheaper network without the stride-32 stages), ``head_channels``,
``noise_std`` (teacher's paper head), ``upsample`` (student's paper head: ``nearest`` as in the
paper, or ``bilinear``), ``pretrained`` (backbone weights: None, a timm tag fetched through
timm's hub only when a profile names one, a package of weights, or a local file; see
:mod:`lib.models.backbones`),
``prune_ratio`` (None, or the share of channels a structured pruning removed from the trained
network, or from the one with pretrained weights before it trained: :mod:`lib.models.pruning`;
the config builds the unpruned network, a checkpoint's weights give it their shapes),
``frozen_stages`` (None, or the backbone's stem and first k stages kept as the pretrained
weights left them while the network trains: :class:`lib.models.backbones.Backbone`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from lib.models.backbones import Backbone
from lib.models.heads import PyramidHead, StudentHead, TeacherHead
from lib.models.landmark_net import LandmarkNet
from lib.models.pruning import UNPRUNABLE_BACKBONES
from lib.schemes import load_scheme

_COMMON = {
    "input_size": 256,
    "scheme": "ivslab51",
    "head": "paper",
    "head_channels": 256,
    "pyramid_strides": [8, 16, 32],
    "pretrained": None,
    "prune_ratio": None,
    "frozen_stages": None,
}
DEFAULTS = {
    "teacher": {"backbone": "swinv2_tiny_window8_256", **_COMMON, "noise_std": 0.1},
    "student": {"backbone": "mobilevitv2_050", **_COMMON, "upsample": "bilinear"},
}


def _paper_head(cfg: dict, backbone: Backbone, num_points: int, num_edges: int) -> nn.Module:
    if cfg["kind"] == "teacher":
        return TeacherHead(backbone.channels, num_points, num_edges, cfg["head_channels"], cfg["noise_std"])
    return StudentHead(backbone.channels, num_points, num_edges, cfg["head_channels"], cfg["upsample"])


def _pyramid_head(cfg: dict, backbone: Backbone, num_points: int, num_edges: int) -> nn.Module:
    return PyramidHead(backbone.pyramid_channels, backbone.strides, num_points, num_edges, cfg["head_channels"])


HEADS: dict[str, Callable[..., nn.Module]] = {"paper": _paper_head, "pyramid": _pyramid_head}


def model_config(cfg: dict) -> dict:
    """``cfg`` completed with the defaults of its kind; unknown keys are an error."""
    kind = cfg.get("kind")
    if kind not in DEFAULTS:
        raise KeyError(f"model kind must be one of {sorted(DEFAULTS)}, got {kind!r}")
    unknown = set(cfg) - set(DEFAULTS[kind]) - {"kind"}
    if unknown:
        raise KeyError(f"unknown {kind} config keys {sorted(unknown)}; known: {sorted(DEFAULTS[kind])}")
    full = {"kind": kind, **DEFAULTS[kind], **cfg}
    if full["input_size"] % 32:
        raise ValueError(f"input_size must be a multiple of 32, got {full['input_size']}")
    if full["head"] not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)}, got {full['head']!r}")
    if full["prune_ratio"] and full["backbone"].startswith(UNPRUNABLE_BACKBONES):
        raise ValueError(f"prune_ratio: structured pruning supports CNN backbones (e.g. the default's tf_efficientnet_lite0), not {full['backbone']}")
    return full


def build_model(cfg: dict, load_weights: bool = True) -> LandmarkNet:
    """A teacher or student :class:`LandmarkNet` from a config dict; ``load_weights`` False
    skips the backbone's pretrained weights (a checkpoint about to be loaded replaces them)."""
    cfg = model_config(cfg)
    scheme = load_scheme(cfg["scheme"])
    strides = tuple(cfg["pyramid_strides"]) if cfg["head"] == "pyramid" else (32,)
    backbone = Backbone(cfg["backbone"], cfg["input_size"], cfg["pretrained"], strides, load_weights, cfg["frozen_stages"])
    head = HEADS[cfg["head"]](cfg, backbone, scheme.num_points, scheme.num_parts)
    return LandmarkNet(backbone, head, scheme, cfg["input_size"], cfg["kind"])


def init_outputs_from(student: LandmarkNet, teacher: LandmarkNet) -> None:
    """Copy the teacher's three 1x1 output convs into the student (the paper's initialisation);
    the two heads must have the same width."""
    ours, theirs = student.head.outputs.heatmap.in_channels, teacher.head.outputs.heatmap.in_channels
    if ours != theirs:
        raise ValueError(
            f"the student's output convs read {ours} channels, the teacher's {theirs}: give both heads the same head_channels or set init_outputs_from_teacher: false"
        )
    student.head.outputs.load_state_dict(teacher.head.outputs.state_dict())
