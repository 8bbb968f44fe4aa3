"""A quick check of every face of an annotation table before training: readable image headers,
non-degenerate boxes, landmarks inside or near their image. All problems are reported at once,
each naming its file, instead of the first one surfacing mid-epoch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.formats.errors import FormatError
from lib.formats.images import image_size

MIN_BOX_SIDE = 2.0  # pixels: a face box narrower or lower than this cannot be cropped


@dataclass(frozen=True)
class FaceProblem:
    """One face that cannot be trained on: its image, face index and what is wrong."""

    image: str
    face_index: int
    problem: str

    def __str__(self) -> str:
        return f"{self.image} (face {self.face_index}): {self.problem}"


def audit_faces(table: pd.DataFrame, margin: float = 0.5) -> list[FaceProblem]:
    """Problems of the faces of an annotation table (see :mod:`lib.formats.table`), in table
    order: an image whose header cannot be read; a box under :data:`MIN_BOX_SIDE` pixels; a
    landmark more than ``margin`` box sides outside its image. Reads image headers only."""
    sizes, problems = {}, []
    for image in table["image"].unique():
        try:
            sizes[image] = image_size(image)
        except FormatError as error:
            sizes[image] = error
    for row in table.itertuples(index=False):
        size = sizes[row.image]
        if isinstance(size, FormatError):
            problems.append(FaceProblem(row.image, row.face_index, size.message))
            continue
        x_min, y_min, x_max, y_max = np.asarray(row.box, dtype=np.float64)
        side = max(x_max - x_min, y_max - y_min)
        if min(x_max - x_min, y_max - y_min) < MIN_BOX_SIDE:
            problems.append(FaceProblem(row.image, row.face_index, f"degenerate face box {x_max - x_min:.1f} x {y_max - y_min:.1f} px"))
            continue
        width, height = size
        points = np.asarray(row.points, dtype=np.float64)
        low, high = -margin * side, np.array([width, height]) + margin * side
        outside = np.flatnonzero(((points < low) | (points > high)).any(axis=1))
        if len(outside):
            problems.append(
                FaceProblem(
                    row.image,
                    row.face_index,
                    f"{len(outside)} landmarks lie far outside the {width}x{height} image (first: point {outside[0] + 1} at {points[outside[0]].round(1).tolist()})",
                )
            )
    return problems


def drop_bad_faces(table: pd.DataFrame, skip: bool, source: str, shown: int = 20) -> tuple[pd.DataFrame, list[FaceProblem]]:
    """``table`` without its problem faces and the problems found. Unless ``skip``, any problem
    is a ``ValueError`` listing them (the first ``shown``) and how to train without them."""
    problems = audit_faces(table)
    if problems and not skip:
        listed = "\n".join(f"  {p}" for p in problems[:shown])
        more = f"\n  ... and {len(problems) - shown} more" if len(problems) > shown else ""
        raise ValueError(f"{source}: {len(problems)} faces cannot be trained on:\n{listed}{more}\nfix them, or set skip_bad_faces=true to train without them")
    bad = {(p.image, p.face_index) for p in problems}
    keep = [(image, face) not in bad for image, face in zip(table["image"], table["face_index"], strict=True)]
    return table[keep].reset_index(drop=True), problems
