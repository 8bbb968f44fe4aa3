"""The canonical annotation table: one row per face, whatever the source format.

Columns:
    image       str, absolute path of the image file
    face_index  int, index of the face within its image (0 for one-face labels)
    points      object, (N, 2) float64 array, 0-based pixel coordinates of the original image
    box         object, (4,) float64 array ``x_min, y_min, x_max, y_max`` in pixels (given by the
                dataset, or the bounding box of the points where none is given)
    subset      str, sub-folder or split the face comes from
Optional condition columns (e.g. WFLW's flags ``pose expression illumination make_up occlusion
blur``, or the synthetic generator's yaw/pitch/roll...) follow.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from lib.formats.errors import FormatError
from lib.formats.images import load_image

CORE_COLUMNS = ["image", "face_index", "points", "box", "subset"]
WFLW_FLAGS = ["pose", "expression", "illumination", "make_up", "occlusion", "blur"]


def points_box(points: np.ndarray) -> np.ndarray:
    """Bounding box ``x_min, y_min, x_max, y_max`` of (N, 2) points."""
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def make_table(rows: Iterable[dict]) -> pd.DataFrame:
    """Build the table from row dicts holding at least ``image``, ``points`` and ``subset``."""
    rows = list(rows)
    for row in rows:
        row.setdefault("face_index", 0)
        if row.get("box") is None:
            row["box"] = points_box(row["points"])
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=CORE_COLUMNS)
    ordered = CORE_COLUMNS + [c for c in table.columns if c not in CORE_COLUMNS]
    return table[ordered].reset_index(drop=True)


def points_array(table: pd.DataFrame) -> np.ndarray:
    """(F, N, 2) float64 points of every face."""
    return np.stack(table["points"].to_list()).astype(np.float64)


def boxes_array(table: pd.DataFrame) -> np.ndarray:
    """(F, 4) float64 boxes of every face."""
    return np.stack(table["box"].to_list()).astype(np.float64)


def verify_images(table: pd.DataFrame) -> None:
    """Decode every distinct image once; raises :class:`FormatError` naming the first bad file."""
    for path in dict.fromkeys(table["image"]):
        load_image(path)


def require_nonempty(table: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    if table.empty:
        raise FormatError(source, "no labelled faces found")
    return table
