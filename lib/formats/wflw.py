"""WFLW annotation lines: 196 coordinates, a box, six 0/1 flags, an image path (207 fields).

Coordinates are 0-based pixels, as the files give them (no origin shift).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lib.formats.errors import FormatError
from lib.formats.table import WFLW_FLAGS, make_table, points_array, require_nonempty, verify_images
from lib.io import atomic_write_text

NUM_POINTS = 98
NUM_FIELDS = 2 * NUM_POINTS + 4 + len(WFLW_FLAGS) + 1


def parse_wflw_line(line: str, path: str | Path, line_no: int, images_root: Path, subset: str) -> dict:
    """One face of a WFLW list file as a table row."""
    fields = line.split()
    if len(fields) != NUM_FIELDS:
        raise FormatError(path, f"expected {NUM_FIELDS} fields, found {len(fields)}", line_no)
    try:
        numbers = [float(v) for v in fields[: 2 * NUM_POINTS + 4]]
        flags = [int(v) for v in fields[2 * NUM_POINTS + 4 : -1]]
    except ValueError:
        raise FormatError(path, "non-numeric coordinate, box or flag", line_no) from None
    if not all(math.isfinite(v) for v in numbers):
        raise FormatError(path, "NaN or infinite coordinate", line_no)
    if any(flag not in (0, 1) for flag in flags):
        raise FormatError(path, f"flags must be 0 or 1, found {flags}", line_no)
    row = {
        "image": str(images_root / fields[-1]),
        "points": np.array(numbers[: 2 * NUM_POINTS]).reshape(NUM_POINTS, 2),
        "box": np.array(numbers[2 * NUM_POINTS :]),
        "subset": subset,
    }
    row.update(dict(zip(WFLW_FLAGS, flags, strict=True)))
    return row


def read_wflw(annotation_file: str | Path, images_root: str | Path, subset: str | None = None, check_images: bool = False) -> pd.DataFrame:
    """Read ``list_98pt_rect_attr_{train,test}.txt`` into the annotation table.

    ``images_root`` is the ``WFLW_images`` folder; ``subset`` defaults to the file's stem. Faces of
    the same image get increasing ``face_index``.
    """
    annotation_file = Path(annotation_file)
    images_root = Path(images_root).resolve()
    rows = []
    data = annotation_file.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FormatError(annotation_file, f"not UTF-8 text (byte {error.start}); save it as UTF-8", data[: error.start].count(b"\n") + 1) from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            rows.append(parse_wflw_line(line, annotation_file, line_no, images_root, subset or annotation_file.stem))
    table = require_nonempty(make_table(rows), annotation_file)
    table["face_index"] = table.groupby("image").cumcount()
    if check_images:
        verify_images(table)
    return table


def format_wflw_line(points: np.ndarray, box: np.ndarray, flags: list[int], relative_image: str) -> str:
    numbers = [repr(float(v)) for v in np.concatenate([np.ravel(points), box])]
    return " ".join(numbers + [str(int(f)) for f in flags] + [relative_image])


def write_wflw(path: str | Path, table: pd.DataFrame, images_root: str | Path) -> None:
    """Write the table as a WFLW list file (image paths relative to ``images_root``)."""
    images_root = Path(images_root).resolve()
    points = points_array(table)
    lines = [
        format_wflw_line(points[i], np.asarray(row.box), [int(getattr(row, f, 0)) for f in WFLW_FLAGS], Path(row.image).relative_to(images_root).as_posix())
        for i, row in enumerate(table.itertuples(index=False))
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
