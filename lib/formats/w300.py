"""The 300W tree (68 points): each image beside its ``.pts``.

Splits (the usual protocol): train = afw + helen/trainset + lfpw/trainset; common =
helen/testset + lfpw/testset; challenge = ibug; full = common + challenge.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from lib.formats.errors import FormatError
from lib.formats.images import find_image
from lib.formats.pts import read_pts
from lib.formats.table import make_table, require_nonempty, verify_images

PHOTO_SUFFIX = re.compile(r"_\d+$")  # a face's number within its photograph
SPLITS = {
    "train": ["afw", "helen/trainset", "lfpw/trainset"],
    "common": ["helen/testset", "lfpw/testset"],
    "challenge": ["ibug"],
    "full": ["helen/testset", "lfpw/testset", "ibug"],
}


def folder_rows(directory: Path, subset: str) -> list[dict]:
    """One row (``image``, 68 ``points``, ``subset``, ``photo``) per ``.pts`` of a 300-W-layout
    folder, each beside its image. 300-W names the faces of one photograph ``<photo>_<k>`` (each
    with its own copy of the image): ``photo`` is ``<subset>/<photo>``, so a split keeps them
    together."""
    rows = []
    for label in sorted(directory.glob("*.pts")):
        image = find_image(directory, label.stem)
        if image is None:
            raise FormatError(label, "label has no image beside it")
        rows.append({"image": str(image), "points": read_pts(label, 68), "subset": subset, "photo": f"{subset}/{PHOTO_SUFFIX.sub('', label.stem)}"})
    return rows


def read_300w(root: str | Path, split: str = "train", check_images: bool = False, missing_ok: bool = False) -> pd.DataFrame:
    """Read one split of 300W into the annotation table (``subset`` = folder, e.g. ``helen/trainset``).
    ``missing_ok``: read the split's folders that exist (a partial copy, e.g. AFW and HELEN only);
    otherwise a missing folder is an error. No face at all is an error either way."""
    if split not in SPLITS:
        raise ValueError(f"unknown 300W split {split!r}; options: {sorted(SPLITS)}")
    root = Path(root).resolve()
    rows = []
    for folder in SPLITS[split]:
        directory = root / folder
        if not directory.is_dir():
            if missing_ok:
                continue
            raise FormatError(directory, f"300W folder for split {split!r} not found")
        rows.extend(folder_rows(directory, folder))
    table = require_nonempty(make_table(rows), root)
    if check_images:
        verify_images(table)
    return table
