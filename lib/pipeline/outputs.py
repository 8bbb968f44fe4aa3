"""Where the pipeline's steps leave what later steps read, named once: a run is
``runs/<id>/<step>/...`` and its submission ``submissions/<id>/``. Each function takes the
folder of the step that asks (``run_dir`` in a notebook)."""

from __future__ import annotations

from pathlib import Path

from lib.paths import resolve


def teacher_checkpoint(step_dir: Path) -> Path:
    return Path(step_dir).parent / "teacher" / "best.pt"


def student_checkpoint(step_dir: Path) -> Path:
    return Path(step_dir).parent / "student" / "best.pt"


def export_folder(step_dir: Path) -> Path:
    return Path(step_dir).parent / "export"


def shipped_model(step_dir: Path) -> Path:
    """The timing step's pick (:mod:`lib.bench.choice`), which the submission and package use."""
    return Path(step_dir).parent / "timing" / "best.tflite"


def submission_folder(step_dir: Path) -> Path:
    return resolve("submissions") / Path(step_dir).parent.name
