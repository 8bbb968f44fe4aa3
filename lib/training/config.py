"""Training configuration of one stage, read from pipeline.yaml's profile ``train`` section:

    train:
      common:  {...}   # shared by both stages
      teacher: {...}   # stage-specific; ``model`` is a registry config (lib.models.registry)
      student: {...}   # plus ``teacher_checkpoint`` and distillation weights in ``loss``

Later sources win: defaults < common < stage < overrides.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lib.data.sources import Source, profile_sources
from lib.data.splits import split_seed_of
from lib.settings import Dataset, load_pipeline

STAGES = ("teacher", "student")
INF = float("inf")
# setting -> (low, high, (low included, high included)); None values (unset options) pass
RANGES = {
    "input_size": (32, INF, (True, False)),
    "epochs": (1, INF, (True, False)),
    "batch_size": (1, INF, (True, False)),
    "lr": (0, INF, (True, False)),
    "head_lr": (0, INF, (True, False)),
    "weight_decay": (0, INF, (True, False)),
    "warmup_epochs": (0, INF, (True, False)),
    "ema_decay": (0, 1, (True, False)),
    "grad_clip": (0, INF, (False, False)),
    "workers": (0, INF, (True, False)),
    "val_fraction": (0, 1, (False, False)),
    "max_train_faces": (1, INF, (True, False)),
    "stop_after_epochs": (1, INF, (True, False)),
    "threads": (1, INF, (True, False)),
}
TEACHER_PRECISIONS = ("fp32", "bf16", "auto")


def distils(loss: dict) -> bool:
    """A loss with a distillation term (a KD or feature-KD weight above 0)."""
    return loss.get("kd", 0) > 0 or loss.get("feature_kd", 0) > 0


@dataclass
class TrainConfig:
    """Everything one training run needs. Learning rates are per optimiser step, epochs count
    passes over the training split; ``head_lr`` applies to the three output convs."""

    stage: str
    data_root: str = "data/synthetic"
    sources: list | None = None  # the labelled trees trained on (lib.data.sources); None: the PAIR tree at data_root
    out_dir: str = "runs/manual/teacher"
    scheme: str = "ivslab51"
    model: dict = field(default_factory=dict)
    input_size: int = 256
    epochs: int = 10
    batch_size: int = 8
    lr: float = 2e-4
    head_lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    ema_decay: float = 0.999
    grad_clip: float = 5.0
    amp: str = "auto"  # auto: bf16/fp16 autocast on a GPU, fp32 on the CPU; or off
    channels_last: bool = True  # networks and batches in channels-last memory format: faster convolutions, the same arithmetic up to rounding
    teacher_precision: str = "fp32"  # the frozen teacher's forward on the CPU: fp32, bf16 or auto (bf16 where the CPU has bf16 instructions)
    seed: int = 0
    split_seed: int | None = None  # the train/validation split's seed (None: seed); fixed, every seed validates on the same faces
    data_seed: int | None = None  # the seed of the batches' order and augmentation (None: seed); fixed, every seed sees the same batches
    workers: int = 0
    val_fraction: float = 0.1
    max_train_faces: int | None = None
    skip_bad_faces: bool = False  # train without the faces the up-front check rejects (else stop, listing them)
    loss: dict = field(default_factory=dict)
    augment: dict = field(default_factory=dict)
    teacher_checkpoint: str | None = None
    init_from: str | None = None  # a checkpoint of the same architecture whose weights start this run (fine-tuning)
    init_outputs_from_teacher: bool = True
    stop_after_epochs: int | None = None  # end this invocation early (the run stays resumable)
    resume: bool = True
    threads: int | None = None

    def __post_init__(self):
        self._check_types()
        for name, (low, high, closed) in RANGES.items():
            value = getattr(self, name)
            if value is not None and not ((low <= value if closed[0] else low < value) and (value <= high if closed[1] else value < high)):
                raise ValueError(f"training setting {name} must be in {'[' if closed[0] else '('}{low}, {high}{']' if closed[1] else ')'}, not {value!r}")
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.teacher_precision not in TEACHER_PRECISIONS:
            raise ValueError(f"teacher_precision must be one of {TEACHER_PRECISIONS}, got {self.teacher_precision!r}")
        if self.distils and not self.teacher_checkpoint:
            raise ValueError("student distillation needs teacher_checkpoint")

    def _check_types(self) -> None:
        """Each field of its annotated type (an int where a float is asked is fine, a bool never
        counts as a number): ``--set epochs=abc`` stops here, before anything is written."""
        hints = typing.get_type_hints(type(self))
        for setting in dataclasses.fields(self):
            value, expected = getattr(self, setting.name), hints[setting.name]
            allowed = typing.get_args(expected) if isinstance(expected, types.UnionType) else (expected,)
            allowed = tuple(typing.get_origin(kind) or kind for kind in allowed)
            fits = isinstance(value, allowed) or (float in allowed and isinstance(value, int))
            if not fits or (isinstance(value, bool) and bool not in allowed):
                names = " or ".join("null" if kind is type(None) else kind.__name__ for kind in allowed)
                raise ValueError(f"training setting {setting.name} must be {names}, not {value!r}")

    @property
    def distils(self) -> bool:
        """A student with a distillation term: it loads the frozen teacher."""
        return self.stage == "student" and distils(self.loss)

    @property
    def stream(self) -> dict:
        """Which faces this training steps on, in what order, augmented how: its split's seed and
        its data seed, each resolved (None: ``seed``). Trainings with the same stream and data
        settings see the same batches and can be stepped together
        (:func:`lib.training.engine.train_together`)."""
        return {"split_seed": split_seed_of(vars(self)), "data_seed": data_seed_of(vars(self))}

    @property
    def data_sources(self) -> list[Source]:
        return profile_sources(self.sources, self.data_root)

    @property
    def model_config(self) -> dict:
        return {"kind": self.stage, "input_size": self.input_size, "scheme": self.scheme, **self.model}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def data_seed_of(settings: Mapping) -> int:
    """The seed of a training's batch order and augmentation: its ``data_seed``, else its ``seed``."""
    value = settings.get("data_seed")
    return int(settings["seed"] if value is None else value)


def profile_dataset(pipeline: str | Path, profile: str) -> Dataset:
    """The dataset of ``profile`` (where its data lives, whether it is generated, its levers)."""
    return load_pipeline(pipeline).profile(profile).dataset


def train_config(stage: str, pipeline: str | Path = "pipeline.yaml", profile: str = "default", overrides: dict | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of ``stage`` under ``profile``; unknown keys are an error."""
    chosen = load_pipeline(pipeline).profile(profile)
    section = chosen.train
    defaults = {"data_root": chosen.dataset.root or TrainConfig.data_root, "out_dir": f"runs/train-{profile}/{stage}"}
    if stage == "student":
        defaults["teacher_checkpoint"] = f"runs/train-{profile}/teacher/best.pt"
    merged = {**defaults, **(section.get("common") or {}), **(section.get(stage) or {}), **(overrides or {})}
    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"stage"}
    unknown = set(merged) - known
    if unknown:
        raise KeyError(f"unknown training settings {sorted(unknown)}; known: {sorted(known)}")
    return TrainConfig(stage=stage, **merged)
