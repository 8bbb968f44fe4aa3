"""The kinds of labelled-face folders the kit reads: one registry, each kind owning its layout,
its readers and its test sets, and recognised from a folder's layout (:func:`detect_kind`).

==========  ====================================================================  ==========
kind        layout                                                                labels
==========  ====================================================================  ==========
``pair``    a training folder of ``<subset>/{images,labels}`` (its name and the   51 points
            others' in :class:`PairTree`; optional test images with ground
            truth: the synthetic set is one)
``300w``    any folders of ``<stem>.pts`` beside ``<stem>.jpg|png`` (afw,         68 points
            helen/{trainset,testset}, lfpw/{trainset,testset}, ibug, or a part)
``wflw``    ``WFLW_annotations/`` + ``WFLW_images/``: refused by name, its 98      98 points
            points have no exact mapping onto the 51
==========  ====================================================================  ==========

Every reader returns the annotation table of :mod:`lib.formats.table` in the scheme's points
(68-point labels by the scheme's ``from_ibug68`` mapping) with a ``photo`` column: the faces of
one photograph share it, so a split keeps them on one side.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lib.data.real_faces import read_real_faces
from lib.formats.errors import FormatError
from lib.formats.pair import PairTree, read_faces_folder, read_pair_train
from lib.formats.w300 import SPLITS, read_300w
from lib.schemes import load_scheme

W300_TESTS = ("common", "challenge", "full")
SHOWN_ENTRIES = 12  # a folder of no known kind: how many of its entries the error lists


def _to_scheme(table: pd.DataFrame, scheme: str) -> pd.DataFrame:
    """68-point labels as the scheme's points (:meth:`lib.schemes.Scheme.points_from_ibug68`)."""
    target = load_scheme(scheme)
    return table.assign(points=[target.points_from_ibug68(points) for points in table["points"]])


def _with_photo(table: pd.DataFrame) -> pd.DataFrame:
    """``photo`` = the image file where the reader does not know the photograph."""
    if "photo" in table and table["photo"].notna().all():
        return table
    return table.assign(photo=table["image"])


class PairKind:
    """The PAIR training tree (the synthetic set is written in it): 51-point labels."""

    name = "pair"
    layout = f"a PAIR tree: {PairTree(Path()).train.name}/<subset>/{{images,labels}} (51-point .pts)"
    normaliser = None  # the scheme's own (eye centroids)

    def matches(self, root: Path) -> bool:
        return PairTree(root).train.is_dir()

    def train_faces(self, root: Path, scheme: str) -> pd.DataFrame:
        return _with_photo(read_pair_train(PairTree(root).train, scheme))

    def test_sets(self, root: Path, scheme: str) -> dict[str, pd.DataFrame]:
        tree = PairTree(root)
        if not tree.test_gt.is_dir():
            return {}
        return {"test": _with_photo(read_faces_folder(tree.test, tree.test_gt, scheme))}

    def all_faces(self, root: Path, scheme: str) -> pd.DataFrame:
        """The training tree's faces, and the test images' where their ground truth is there."""
        return pd.concat([self.train_faces(root, scheme), *self.test_sets(root, scheme).values()], ignore_index=True)


class W300Kind:
    """A 300-W tree (68-point labels, 1-based coordinates): trains on 300-W's usual training
    folders it has, tests on each usual test set whose folders are all there."""

    name = "300w"
    layout = "a 300-W tree: <stem>.pts beside <stem>.jpg|png in afw, helen/..., lfpw/..., ibug (68-point .pts)"
    normaliser = "outer_eye_corners"  # what the literature reports 300-W with

    def matches(self, root: Path) -> bool:
        return next(root.rglob("*.pts"), None) is not None

    def train_faces(self, root: Path, scheme: str) -> pd.DataFrame:
        return _to_scheme(read_300w(root, "train", missing_ok=True), scheme)

    def test_sets(self, root: Path, scheme: str) -> dict[str, pd.DataFrame]:
        present = [split for split in W300_TESTS if all((root / folder).is_dir() for folder in SPLITS[split])]
        return {split: _to_scheme(read_300w(root, split), scheme) for split in present}

    def all_faces(self, root: Path, scheme: str) -> pd.DataFrame:
        """Every labelled face of every folder holding ``.pts`` files."""
        return read_real_faces(root, scheme)


class WflwKind:
    """WFLW, recognised so that it is refused by name rather than misread."""

    name = "wflw"
    layout = "WFLW: WFLW_annotations/ and WFLW_images/ (98 points)"
    normaliser = None
    refusal = (
        "WFLW's 98 points have no exact mapping onto the 51 of the PAIR scheme (the brows and the nose differ): convert its labels to 68 or 51 points first"
    )

    def matches(self, root: Path) -> bool:
        return (root / "WFLW_annotations").is_dir() or (root / "list_98pt_rect_attr_train_test").is_dir()

    def _refuse(self, root: Path, *_) -> pd.DataFrame:
        raise FormatError(root, self.refusal)

    train_faces = all_faces = _refuse

    def test_sets(self, root: Path, scheme: str) -> dict[str, pd.DataFrame]:
        return self._refuse(root)


KINDS = {kind.name: kind for kind in (PairKind(), W300Kind(), WflwKind())}
DETECTION_ORDER = ("wflw", "pair", "300w")  # a PAIR tree holds .pts files too: it is tried first


def dataset_kind(name: str) -> PairKind | W300Kind | WflwKind:
    """The kind registered as ``name``."""
    if name not in KINDS:
        raise ValueError(f"unknown dataset kind {name!r}; kinds: {sorted(KINDS)}")
    return KINDS[name]


def detect_kind(root: str | Path) -> PairKind | W300Kind | WflwKind:
    """The kind of the folder ``root``, recognised from its layout (WFLW is refused here, by
    name); a folder of no known kind is a :class:`FormatError` listing the layouts looked for and
    what the folder holds."""
    root = Path(root)
    if not root.is_dir():
        raise FormatError(root, "the data folder does not exist")
    for name in DETECTION_ORDER:
        kind = KINDS[name]
        if kind.matches(root):
            if name == "wflw":
                raise FormatError(root, kind.refusal)
            return kind
    entries = sorted(path.name + ("/" if path.is_dir() else "") for path in root.iterdir())
    shown = ", ".join(entries[:SHOWN_ENTRIES]) + (f", ... ({len(entries)} in all)" if len(entries) > SHOWN_ENTRIES else "")
    looked_for = "; ".join(KINDS[name].layout for name in ("pair", "300w"))
    raise FormatError(root, f"not a folder of labelled faces the kit reads (looked for {looked_for}); it holds: {shown or 'nothing'}")
