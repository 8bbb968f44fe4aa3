"""The datasets a profile trains and tests on: its ``sources``, each a labelled tree of one kind.

    sources:
      - {kind: pair, root: data/ivslab}            # a PAIR tree (training folder, optional test + gt)
      - {kind: 300w, root: data/300w, name: 300w}  # a 300-W tree: afw, helen, lfpw, ibug (68 points)
      - {kind: auto, root: data/mine}              # the kind recognised from the layout

Without ``sources`` a profile has one: the tree at its ``data_root``, of the kind its layout
shows. The kinds, their layouts, test sets and normalisers live in :mod:`lib.data.kinds`. Each
source has its own seeded train/validation split (:mod:`lib.data.splits`) and its own test sets.
Every table keeps a ``source`` column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lib.data.kinds import KINDS, dataset_kind, detect_kind
from lib.paths import resolve

AUTO = "auto"  # a source's kind recognised from its folder's layout (lib.data.kinds.detect_kind)


@dataclass(frozen=True)
class Source:
    """One labelled tree: ``name`` (unique in a profile; the ``source`` column), ``kind`` (a
    :mod:`lib.data.kinds` name, or ``auto``) and ``root``."""

    name: str
    kind: str
    root: str

    @property
    def dataset_kind(self):
        """The registered kind (:mod:`lib.data.kinds`) that reads this tree."""
        return detect_kind(resolve(self.root)) if self.kind == AUTO else dataset_kind(self.kind)

    @property
    def normaliser(self) -> str | None:
        """The NME normaliser its test sets are reported with (None: the scheme's default)."""
        return self.dataset_kind.normaliser


def profile_sources(specs: list[dict] | None, data_root: str) -> list[Source]:
    """The :class:`Source` list of a training config (``sources``, else the tree at ``data_root``,
    named for the kind its layout shows); an unknown kind, a missing root or a repeated name is an
    error naming it."""
    if not specs:
        root = resolve(data_root)
        return [Source(detect_kind(root).name if root.is_dir() else "pair", AUTO, data_root)]
    kinds = (*KINDS, AUTO)
    sources = []
    for spec in specs:
        unknown = set(spec) - {"kind", "root", "name"}
        if spec.get("kind") not in kinds or "root" not in spec or unknown:
            raise ValueError(f"a source is {{kind: {' | '.join(kinds)}, root: <folder>, name: <optional>}}, got {spec}")
        sources.append(Source(str(spec.get("name", spec["kind"])), spec["kind"], str(spec["root"])))
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"source names must differ, got {names}: give each a `name`")
    return sources


def source_train_table(source: Source, scheme: str) -> pd.DataFrame:
    """The training faces of a source (before the validation split), with a ``source`` column."""
    return source.dataset_kind.train_faces(resolve(source.root), scheme).assign(source=source.name)


def source_test_tables(source: Source, scheme: str) -> dict[str, pd.DataFrame]:
    """``{test set name: faces}`` of a source: the sets whose folders exist, named
    ``<source>/<set>``."""
    tests = source.dataset_kind.test_sets(resolve(source.root), scheme)
    return {f"{source.name}/{name}": table.assign(source=source.name) for name, table in tests.items()}


def source_of(name: str, sources: list[Source]) -> Source:
    """The source a ``<source>/<set>`` test name belongs to."""
    return next(source for source in sources if name.split("/")[0] == source.name)
