"""Writing PAIR submissions: the zip of the ``.txt`` files (written one per image by
:func:`lib.deploy.run_model.pts_text`) and the leaderboard CSV.

A prediction set is a mapping ``{image stem: (F, N, 2) array}`` of F faces in original-image
pixels (0-based in memory, 1-based in files as in :mod:`lib.formats.pts`). Faces are written
right to left by the x of their centre (the challenge's order); :func:`lib.deploy.run_model.right_to_left`
does that ordering once for every writer and for the final package.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from lib.deploy.run_model import DECIMALS, right_to_left
from lib.io import atomic_save_csv, atomic_write_zip


def as_faces(faces) -> np.ndarray:
    """(F, N, 2) float64 from a (F, N, 2) array or a list of (N, 2) arrays (F may be 0)."""
    faces = np.asarray(faces, dtype=np.float64)
    if faces.size == 0:
        return faces.reshape(0, 0, 2)
    if faces.ndim != 3 or faces.shape[-1] != 2:
        raise ValueError(f"faces must have shape (F, N, 2), got {faces.shape}")
    if not np.isfinite(faces).all():
        raise ValueError("faces contain NaN or infinite coordinates")
    return faces


def write_submission_zip(folder: str | Path, zip_path: str | Path) -> Path:
    """Zip the ``.txt`` files of ``folder`` (flat, sorted, fixed timestamps: the same files give
    the same bytes)."""
    texts = sorted(Path(folder).glob("*.txt"))
    if not texts:
        raise ValueError(f"no .txt files in {folder}")
    return atomic_write_zip(zip_path, {text.name: text.read_bytes() for text in texts})


def leaderboard_frame(predictions: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per face: ``image_id, face_index, x0, y0, ..., x{N-1}, y{N-1}`` (0-based pixels,
    faces right to left, the same order as the ``.txt`` files)."""
    rows = []
    num_points = None
    for stem in sorted(predictions):
        faces = as_faces(predictions[stem])
        for face_index, k in enumerate(right_to_left(faces) if len(faces) else []):
            num_points = faces.shape[1]
            rows.append([stem, face_index, *faces[k].reshape(-1)])
    coordinates = [f"{axis}{i}" for i in range(num_points or 0) for axis in ("x", "y")]
    return pd.DataFrame(rows, columns=["image_id", "face_index", *coordinates])


def write_leaderboard_csv(predictions: Mapping[str, np.ndarray], path: str | Path, decimals: int = DECIMALS) -> Path:
    """Write :func:`leaderboard_frame` as CSV atomically."""
    atomic_save_csv(leaderboard_frame(predictions), path, index=False, float_format=f"%.{decimals}f")
    return Path(path)


def read_leaderboard_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Inverse of :func:`write_leaderboard_csv`: ``{image stem: (F, N, 2)}`` in file order."""
    frame = pd.read_csv(path, dtype={"image_id": str})
    coordinates = frame.columns[2:]
    return {stem: group[coordinates].to_numpy(np.float64).reshape(len(group), -1, 2) for stem, group in frame.groupby("image_id", sort=True)}
