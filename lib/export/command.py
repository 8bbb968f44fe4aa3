"""How one export runs, and the command line that runs it in the export environment
(``.venv-export``): the kernel cannot import the converter, so notebook 03 and the tests call
``python -m lib.export`` as a subprocess built here, and the export's CLI reads its options back
into the same :class:`ExportSettings`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from lib.export.parity import FP32_TOLERANCE, NME_BUDGET

PRECISIONS = ("fp32", "fp16", "int8w", "int8")


@dataclass(frozen=True)
class ExportSettings:
    """One export's choices: the ``precisions`` written, those ``required`` to pass the parity
    gate (None: every one written), the ``input_size`` (None: the checkpoint's, the size it
    trained at), the network's ``name`` in the file names, the ``data_root`` whose crops calibrate
    and check (None: the checkpoint's), ``calibration_crops`` for int8, ``parity_faces`` checked,
    and the gate's ``fp32_tolerance`` and ``nme_budget`` (an NME fraction: 0.002 is 0.2 points)."""

    precisions: tuple[str, ...] = PRECISIONS
    required: tuple[str, ...] | None = None
    input_size: int | None = None
    name: str = "student"
    data_root: str | None = None
    calibration_crops: int = 64
    parity_faces: int = 64
    fp32_tolerance: float = FP32_TOLERANCE
    nme_budget: float = NME_BUDGET

    def __post_init__(self):
        unknown = sorted((set(self.precisions) | set(self.required or ())) - set(PRECISIONS))
        if unknown:
            raise ValueError(f"unknown precisions {unknown}; options: {PRECISIONS}")
        if not self.name or "_" in self.name or "/" in self.name:
            raise ValueError(f"name {self.name!r}: a network's name in file names must be non-empty, without '_' or '/'")

    def arguments(self) -> list[str]:
        """The CLI options that give these settings (:func:`add_arguments` reads them back)."""
        arguments = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            flag = "--" + field.name.replace("_", "-")
            arguments += [flag, *map(str, value)] if isinstance(value, tuple) else [flag, str(value)]
        return arguments

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> ExportSettings:
        values = {field.name: getattr(args, field.name) for field in fields(cls)}
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in values.items()})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`ExportSettings` field, defaulting to the field's default."""
    defaults = ExportSettings()
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(defaults.precisions), help="the precisions to export (default: all)")
    parser.add_argument(
        "--required",
        nargs="+",
        choices=PRECISIONS,
        default=None,
        help="precisions that must pass the gate (default: all exported); the others are only reported",
    )
    parser.add_argument("--input-size", type=int, default=None, help="input side (default: the checkpoint's)")
    parser.add_argument("--name", default=defaults.name, help="the network's name in the file names (e.g. pruned40)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: the checkpoint's)")
    parser.add_argument("--calibration-crops", type=int, default=defaults.calibration_crops)
    parser.add_argument("--parity-faces", type=int, default=defaults.parity_faces)
    parser.add_argument("--fp32-tolerance", type=float, default=defaults.fp32_tolerance)
    parser.add_argument("--nme-budget", type=float, default=defaults.nme_budget, help="allowed NME increase of quantised files (fraction)")


def export_command(python: str | Path, checkpoint: str | Path, out_dir: str | Path, settings: ExportSettings = ExportSettings()) -> list[str]:
    """``[python, -m, lib.export, --checkpoint, ..., --out, ..., <settings>]``."""
    return [str(python), "-m", "lib.export", "--checkpoint", str(checkpoint), "--out", str(out_dir), *settings.arguments()]
