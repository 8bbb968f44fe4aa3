"""The command line that runs one export in the export environment (``.venv-export``): the
kernel cannot import the converter, so notebook 03 and the tests call ``python -m lib.export``
as a subprocess built here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def export_command(
    python: str | Path,
    checkpoint: str | Path,
    out_dir: str | Path,
    precisions: Sequence[str] = ("fp32", "fp16", "int8w", "int8"),
    require: Sequence[str] | None = None,
    data_root: str | Path | None = None,
    calibration_crops: int = 64,
    parity_faces: int = 64,
    nme_budget: float | None = None,
    input_size: int | None = None,
    name: str | None = None,
) -> list[str]:
    """``[python, -m, lib.export, ...]`` with every option that is given (None: the CLI's default)."""
    command = [str(python), "-m", "lib.export", "--checkpoint", str(checkpoint), "--out", str(out_dir), "--precision", *precisions]
    if require is not None:
        command += ["--require", *require]
    options = {
        "--data-root": data_root,
        "--calibration-crops": calibration_crops,
        "--parity-faces": parity_faces,
        "--nme-budget": nme_budget,
        "--input-size": input_size,
        "--name": name,
    }
    for flag, value in options.items():
        if value is not None:
            command += [flag, str(value)]
    return command
