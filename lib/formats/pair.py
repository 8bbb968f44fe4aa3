"""The PAIR tree: its folder names (:class:`PairTree`, their one home), the training folder and
the test image folder.

``ivslab_facial_train/<subset>/images/<stem>.{png,jpg}`` with ``<subset>/labels/<stem>.pts``
(one face per label, 51 points; suffixes in any case). An optional ``conditions.csv`` at the root
(columns ``image``, the path relative to the root, ``face_index``, then one column per condition)
is merged in.

Nothing is dropped silently: two files with one stem (``a.png`` and ``a.jpg``, ``a.pts`` and
``a.PTS``) are an error naming both, a label without its image is an error, and images without a
label are reported with a :class:`UnlabelledImagesWarning`.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lib.formats.errors import FormatError
from lib.formats.images import IMAGE_SUFFIXES
from lib.formats.pts import read_pts, read_pts_blocks
from lib.formats.table import make_table, require_nonempty, verify_images
from lib.schemes import load_scheme

CONDITIONS_FILE = "conditions.csv"
LABEL_SUFFIX = ".pts"


@dataclass(frozen=True)
class PairTree:
    """The folders of a PAIR tree under ``root``: ``train`` (``<subset>/{images,labels}``),
    ``test`` (images of 0-3 faces), ``test_gt`` (their ground truth, one ``<stem>.txt`` per image
    in the submission format) and ``detector`` (``images/`` + ``gt/``: the set the submission
    measures its detector and refinement on, disjoint from the test). Only ``train`` is required."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def train(self) -> Path:
        return self.root / "ivslab_facial_train"

    @property
    def test(self) -> Path:
        return self.root / "ivslab_facial_test"

    @property
    def test_gt(self) -> Path:
        return self.root / "ivslab_facial_test_gt"

    @property
    def detector(self) -> Path:
        return self.root / "ivslab_facial_detector"


class UnlabelledImagesWarning(UserWarning):
    """Images of a training folder that have no label file (they are not used)."""


def files_by_stem(folder: Path, suffixes: Iterable[str], what: str) -> dict[str, Path]:
    """``{stem: file}`` of the files of ``folder`` whose suffix, in any case, is one of
    ``suffixes`` (lower case), sorted by stem; none when the folder does not exist. Two files with
    one stem are a :class:`FormatError` naming them (``what`` says what they are)."""
    wanted = set(suffixes)
    groups = defaultdict(list)
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file() and path.suffix.lower() in wanted:
            groups[path.stem].append(path)
    clashes = [paths for paths in groups.values() if len(paths) > 1]
    if clashes:
        listed = "; ".join(", ".join(p.name for p in paths) for paths in clashes[:5])
        raise FormatError(
            folder, f"{len(clashes)} {what} stems name more than one file ({listed}): a stem must name one file, as every output is named by its stem"
        )
    return {stem: paths[0] for stem, paths in sorted(groups.items())}


def read_conditions(path: Path, root: Path) -> pd.DataFrame:
    """Conditions table with ``image`` made absolute against ``root`` (a linked image keeps its
    own path, as the readers' tables name it)."""
    conditions = pd.read_csv(path)
    missing = {"image", "face_index"} - set(conditions.columns)
    if missing:
        raise FormatError(path, f"missing columns {sorted(missing)}", 1)
    conditions["image"] = [os.path.normpath(root / p) for p in conditions["image"]]
    return conditions


def merge_conditions(table: pd.DataFrame, path: Path, image_root: Path) -> pd.DataFrame:
    """Left-join the conditions file ``path`` (if present) whose image paths are relative to
    ``image_root``."""
    if not path.is_file():
        return table
    return table.merge(read_conditions(path, image_root), on=["image", "face_index"], how="left", validate="one_to_one")


def read_pair_train(root: str | Path, scheme: str = "ivslab51", check_images: bool = False) -> pd.DataFrame:
    """Read ``ivslab_facial_train`` into the annotation table (``subset`` = sub-folder).

    Every label must have its image; ``check_images`` also decodes every image.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise FormatError(root, "training folder not found")
    num_points = load_scheme(scheme).num_points
    rows = []
    for labels_dir in sorted(root.glob("*/labels")):
        subset = labels_dir.parent.name
        images_dir = labels_dir.parent / "images"
        images = files_by_stem(images_dir, IMAGE_SUFFIXES, "image")
        labels = files_by_stem(labels_dir, [LABEL_SUFFIX], "label")
        for stem, label in labels.items():
            if stem not in images:
                raise FormatError(label, f"label has no image {stem}{{{','.join(IMAGE_SUFFIXES)}}} in {images_dir}")
            rows.append({"image": str(images[stem]), "points": read_pts(label, num_points), "subset": subset})
        unlabelled = sorted(set(images) - set(labels))
        if unlabelled:
            warnings.warn(
                f"{images_dir}: {len(unlabelled)} images have no label in {labels_dir} and are not used (first: {images[unlabelled[0]].name})",
                UnlabelledImagesWarning,
                stacklevel=2,
            )
    table = require_nonempty(make_table(rows), root)
    if check_images:
        verify_images(table)
    return merge_conditions(table, root / CONDITIONS_FILE, root)


def list_test_images(folder: str | Path) -> list[Path]:
    """Image files of a test folder (``image_XXXX.png``), sorted by stem; an empty folder, or two
    images with one stem (both would be predicted into ``<stem>.txt``), is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(folder, "test image folder not found")
    images = list(files_by_stem(folder, IMAGE_SUFFIXES, "image").values())
    if not images:
        raise FormatError(folder, "no images in the test folder")
    return images


def read_faces_folder(images: str | Path, labels: str | Path, scheme: str = "ivslab51", subset: str = "test") -> pd.DataFrame:
    """Read images with per-image multi-face label files (``<stem>.txt``, the submission format),
    one table row per face. Used for local ground truth of the test set; its optional
    ``conditions.csv`` names images relative to the image folder."""
    labels, folder = Path(labels).resolve(), Path(images).resolve()
    num_points = load_scheme(scheme).num_points
    rows = []
    for image in list_test_images(folder):
        label = labels / f"{image.stem}.txt"
        if not label.is_file():
            raise FormatError(label, f"no ground truth for image {image.name}")
        for face_index, points in enumerate(read_pts_blocks(label, num_points)):
            rows.append({"image": str(image), "face_index": face_index, "points": points, "subset": subset})
    table = require_nonempty(make_table(rows), labels)
    return merge_conditions(table, labels / CONDITIONS_FILE, folder)
