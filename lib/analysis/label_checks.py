"""Label sanity of an annotation table, reported by file before any training: landmarks outside
their image, faces whose left and right look swapped, and duplicate files.

Each check returns one row per finding (``check``, ``image``, ``face_index``, ``detail``); the
EDA notebook shows them with the files named. They report, they do not drop: a swapped label or a
duplicate may be deliberate, and :mod:`lib.formats.audit` already stops training on faces that
cannot be cropped at all.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import pandas as pd

from lib.formats.images import image_size
from lib.formats.table import points_array
from lib.io import file_sha256
from lib.schemes import Scheme

COLUMNS = ["check", "image", "face_index", "detail"]


def points_outside(table: pd.DataFrame) -> pd.DataFrame:
    """Faces with landmarks outside their image's pixel area ``[-0.5, size - 0.5]`` (0-based
    pixel centres): how many, and the farthest by how many pixels."""
    sizes = {image: image_size(image) for image in dict.fromkeys(table["image"])}
    rows = []
    for face in table.itertuples(index=False):
        width, height = sizes[face.image]
        points = np.asarray(face.points, dtype=np.float64)
        below = np.maximum(-0.5 - points, 0)
        above = np.maximum(points - (np.array([width, height]) - 0.5), 0)
        beyond = np.maximum(below, above).max(axis=1)
        if (beyond > 0).any():
            rows.append(
                [
                    "outside the image",
                    face.image,
                    face.face_index,
                    f"{int((beyond > 0).sum())} points outside the {width}x{height} image, up to {beyond.max():.1f} px",
                ]
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def mirror_sign(points: np.ndarray, scheme: Scheme) -> np.ndarray:
    """(F,) sign of the turn from the right eye's centroid to the left eye's to the outer lip's
    (image coordinates, y down): +1 for a face labelled as the scheme defines right and left
    (the subject's right eye on the image's left of an upright face), -1 for a mirrored
    labelling, at any in-plane rotation. ``points``: (F, N, 2)."""
    right, left, mouth = (points[:, scheme.part(name).start : scheme.part(name).stop].mean(axis=1) for name in ("right_eye", "left_eye", "outer_lip"))
    across, down = left - right, mouth - right
    return np.sign(across[:, 0] * down[:, 1] - across[:, 1] * down[:, 0])


def swapped_sides(table: pd.DataFrame, scheme: Scheme) -> pd.DataFrame:
    """Faces whose right and left are swapped by geometry (:func:`mirror_sign` below 0)."""
    signs = mirror_sign(points_array(table), scheme)
    rows = [
        ["left and right swapped", face.image, face.face_index, "the right eye, left eye and mouth turn the mirrored way"]
        for face, sign in zip(table.itertuples(index=False), signs, strict=True)
        if sign < 0
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def duplicate_images(table: pd.DataFrame) -> pd.DataFrame:
    """Image files of identical content (SHA-256 of their bytes) under different names, one row per
    file after the first of each group, naming that first file. Links to one file are one file."""
    name_of: dict[str, str] = {}  # each file by the first name the table gives it
    for image in table["image"]:
        name_of.setdefault(os.path.realpath(image), image)
    groups = defaultdict(list)
    for file in name_of:
        groups[file_sha256(file)].append(file)
    rows = [["duplicate image", name_of[file], 0, f"same bytes as {name_of[files[0]]}"] for files in groups.values() for file in files[1:]]
    return pd.DataFrame(rows, columns=COLUMNS)


def label_checks(table: pd.DataFrame, scheme: Scheme) -> pd.DataFrame:
    """Every finding of the three checks, in check order."""
    return pd.concat([points_outside(table), swapped_sides(table, scheme), duplicate_images(table)], ignore_index=True)
