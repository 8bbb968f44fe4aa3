"""The datasets a profile trains and tests on: its ``sources``, each a labelled tree of one kind.

    sources:
      - {kind: pair, root: data/ivslab}            # a PAIR tree (ivslab_facial_train, optional test + gt)
      - {kind: 300w, root: data/300w, name: 300w}  # a 300-W tree: afw, helen, lfpw, ibug (68 points)

Without ``sources`` a profile has one: the PAIR tree at its ``data_root``. Each source has its own
seeded train/validation split (:mod:`lib.data.splits`) and its own test sets: a PAIR tree's
``ivslab_facial_test`` with its ground truth; a 300-W tree's ``common``, ``challenge`` and ``full``
sets, scored with the outer-eye-corner normaliser the literature reports. A 300-W tree may be
partial: it trains on the training folders it has (afw, helen/trainset, lfpw/trainset) and tests
on each set whose folders are all there. 68-point labels become
the scheme's points by its ``from_ibug68`` mapping (the PAIR 51 are iBUG's points 18-68 exactly).
Every table keeps a ``source`` column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lib.formats.pair import read_faces_folder, read_pair_train
from lib.formats.w300 import SPLITS, read_300w
from lib.paths import resolve
from lib.schemes import load_scheme

KINDS = ("pair", "300w")
W300_TESTS = ("common", "challenge", "full")


@dataclass(frozen=True)
class Source:
    """One labelled tree: ``name`` (unique in a profile; the ``source`` column), ``kind`` and ``root``."""

    name: str
    kind: str
    root: str

    @property
    def normaliser(self) -> str | None:
        """The NME normaliser its test sets are reported with (None: the scheme's default)."""
        return "outer_eye_corners" if self.kind == "300w" else None


def profile_sources(specs: list[dict] | None, data_root: str) -> list[Source]:
    """The :class:`Source` list of a training config (``sources``, else the PAIR tree at
    ``data_root``); an unknown kind, a missing root or a repeated name is an error naming it."""
    if not specs:
        return [Source("pair", "pair", data_root)]
    sources = []
    for spec in specs:
        unknown = set(spec) - {"kind", "root", "name"}
        if spec.get("kind") not in KINDS or "root" not in spec or unknown:
            raise ValueError(f"a source is {{kind: {' | '.join(KINDS)}, root: <folder>, name: <optional>}}, got {spec}")
        sources.append(Source(str(spec.get("name", spec["kind"])), spec["kind"], str(spec["root"])))
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"source names must differ, got {names}: give each a `name`")
    return sources


def _to_scheme(table: pd.DataFrame, scheme: str) -> pd.DataFrame:
    """68-point labels as the scheme's points (:meth:`lib.schemes.Scheme.points_from_ibug68`)."""
    target = load_scheme(scheme)
    return table.assign(points=[target.points_from_ibug68(points) for points in table["points"]])


def source_train_table(source: Source, scheme: str) -> pd.DataFrame:
    """The training faces of a source (before the validation split), with a ``source`` column."""
    root = resolve(source.root)
    table = read_pair_train(root / "ivslab_facial_train", scheme) if source.kind == "pair" else _to_scheme(read_300w(root, "train", missing_ok=True), scheme)
    return table.assign(source=source.name)


def source_test_tables(source: Source, scheme: str) -> dict[str, pd.DataFrame]:
    """``{test set name: faces}`` of a source: the sets whose folders exist, named
    ``<source>/<set>``."""
    root = resolve(source.root)
    if source.kind == "pair":
        if not (root / "ivslab_facial_test_gt").is_dir():
            return {}
        table = read_faces_folder(root / "ivslab_facial_test", root / "ivslab_facial_test_gt", scheme)
        return {f"{source.name}/test": table.assign(source=source.name)}
    present = [split for split in W300_TESTS if all((root / folder).is_dir() for folder in SPLITS[split])]
    return {f"{source.name}/{split}": _to_scheme(read_300w(root, split), scheme).assign(source=source.name) for split in present}


def source_of(name: str, sources: list[Source]) -> Source:
    """The source a ``<source>/<set>`` test name belongs to."""
    return next(source for source in sources if name.split("/")[0] == source.name)
