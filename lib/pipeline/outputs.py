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


def student_models(step_dir: Path) -> list[tuple[str, Path]]:
    """The student step's networks to export, as (name, ``best.pt``): ``student`` (the KD
    student), the same student trained at each other size (``student/sizes/<size>/best.pt``,
    :func:`lib.training.jobs.size_jobs`; its files differ by size), then each pruned student
    (``student/pruned/<name>/best.pt``, :func:`lib.training.jobs.pruning_jobs`). Each is
    exported at the size it trained at."""
    student = Path(step_dir).parent / "student"
    sizes = sorted(student.glob("sizes/*/best.pt"), key=lambda path: int(path.parent.name))
    pruned = sorted(student.glob("pruned/*/best.pt"))
    return [("student", student_checkpoint(step_dir)), *[("student", path) for path in sizes], *[(path.parent.name, path) for path in pruned]]


def student_seed_summary(step_dir: Path) -> Path:
    """The student step's ``ablation_seeds.csv`` (:func:`lib.training.ablation.seed_summary`),
    when it trained several seeds: the spread between seeds that the timing step's rule reads."""
    return Path(step_dir).parent / "student" / "ablation_seeds.csv"


def export_folder(step_dir: Path) -> Path:
    return Path(step_dir).parent / "export"


def shipped_model(step_dir: Path) -> Path:
    """The timing step's pick (:mod:`lib.bench.choice`), which the submission and package use."""
    return Path(step_dir).parent / "timing" / "best.tflite"


def shipped_model_report(step_dir: Path) -> Path:
    """:func:`shipped_model`'s ``best.json``: its fields in ``bench.csv``, its latencies included."""
    return Path(step_dir).parent / "timing" / "best.json"


def timing_references(step_dir: Path) -> Path:
    """The timing step's ``references.csv``: MediaPipe's landmark model and detector, timed beside the files."""
    return Path(step_dir).parent / "timing" / "references.csv"


def submission_folder(step_dir: Path) -> Path:
    return resolve("submissions") / Path(step_dir).parent.name
