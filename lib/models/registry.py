"""Models built by name from a config: ``build_model({"kind": "student", ...})``.

Config keys (defaults in :data:`DEFAULTS`): ``kind`` (teacher | student), ``backbone`` (a timm
name), ``input_size`` (a multiple of 32), ``scheme``, ``head_channels``, ``noise_std``
(teacher), ``upsample`` (student: ``nearest`` as in the paper, or ``bilinear``), ``checkpoint`` (optional local backbone weights; nothing is downloaded).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from lib.models.backbones import Backbone
from lib.models.heads import StudentHead, TeacherHead
from lib.models.landmark_net import LandmarkNet
from lib.schemes import load_scheme

DEFAULTS = {
    "teacher": {"backbone": "swinv2_tiny_window8_256", "input_size": 256, "scheme": "ivslab51", "head_channels": 256, "noise_std": 0.1, "checkpoint": None},
    "student": {"backbone": "mobilevitv2_050", "input_size": 256, "scheme": "ivslab51", "head_channels": 256, "upsample": "bilinear", "checkpoint": None},
}


def _teacher_head(cfg: dict, in_channels: int, num_points: int, num_edges: int) -> nn.Module:
    return TeacherHead(in_channels, num_points, num_edges, cfg["head_channels"], cfg["noise_std"])


def _student_head(cfg: dict, in_channels: int, num_points: int, num_edges: int) -> nn.Module:
    return StudentHead(in_channels, num_points, num_edges, cfg["head_channels"], cfg["upsample"])


HEADS: dict[str, Callable[..., nn.Module]] = {"teacher": _teacher_head, "student": _student_head}


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
    return full


def build_model(cfg: dict) -> LandmarkNet:
    """A teacher or student :class:`LandmarkNet` from a config dict."""
    cfg = model_config(cfg)
    scheme = load_scheme(cfg["scheme"])
    backbone = Backbone(cfg["backbone"], cfg["input_size"], cfg["checkpoint"])
    head = HEADS[cfg["kind"]](cfg, backbone.channels, scheme.num_points, scheme.num_parts)
    return LandmarkNet(backbone, head, scheme, cfg["input_size"], cfg["kind"])


def init_outputs_from(student: LandmarkNet, teacher: LandmarkNet) -> None:
    """Copy the teacher's three 1x1 output convs into the student (the paper's initialisation)."""
    student.head.outputs.load_state_dict(teacher.head.outputs.state_dict())
