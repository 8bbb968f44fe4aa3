"""Project paths: relative paths in parameters and configs are relative to the project root,
whether code runs from the root (papermill, make) or from ``notebooks/`` (JupyterLab)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def resolve(path: str | Path) -> Path:
    """``path`` if absolute, else the same path under the project root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path
