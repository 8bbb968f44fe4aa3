"""The seeded train/validation split of a profile's sources, shared by training, the export's
crops and the reports, so all of them see the same faces."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from lib.data.sources import Source, source_train_table
from lib.formats.audit import drop_bad_faces
from lib.paths import resolve


def split_table(table: pd.DataFrame, val_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random split into (train, validation) faces, grouped by photograph: the faces of
    one picture (one identity, one background) fall on one side, so validation never sees a face
    whose picture was trained on. The photograph is the ``photo`` column where the reader knows it
    (300-W gives each face of a photo its own image file), else the image. ``val_fraction`` of the
    photographs, at least one, are validation."""
    groups = (table["photo"] if "photo" in table and table["photo"].notna().all() else table["image"]).astype(str).to_numpy()
    count = max(1, int(round(len(np.unique(groups)) * val_fraction)))
    splitter = GroupShuffleSplit(n_splits=1, test_size=count, random_state=seed)
    train, val = next(splitter.split(groups, groups=groups))
    return table.iloc[np.sort(train)].reset_index(drop=True), table.iloc[np.sort(val)].reset_index(drop=True)


def split_seed_of(settings: Mapping) -> int:
    """The seed of a run's train/validation split: its ``split_seed``, else its ``seed`` (a fixed
    ``split_seed`` keeps the validation faces, and the teacher's training faces, the same over a
    seed ablation)."""
    value = settings.get("split_seed")
    return int(settings["seed"] if value is None else value)


def training_split(sources: list[Source], scheme: str, val_fraction: float, seed: int, skip_bad_faces: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) tables of a profile's sources (:mod:`lib.data.sources`), each source
    split on its own by :func:`split_table`, after every face is checked up front
    (:func:`lib.formats.audit.drop_bad_faces`: an error listing all problems, or, with
    ``skip_bad_faces``, a warning and the faces left out). Training, the export's crops and the
    reports all split through here, so they agree."""
    trains, vals = [], []
    for source in sources:
        table, problems = drop_bad_faces(source_train_table(source, scheme), skip_bad_faces, str(resolve(source.root)))
        if problems:
            warnings.warn(f"{source.root}: {len(problems)} faces left out (skip_bad_faces), first: {problems[0]}", stacklevel=2)
        train, val = split_table(table, val_fraction, seed)
        trains.append(train)
        vals.append(val)
    return pd.concat(trains, ignore_index=True), pd.concat(vals, ignore_index=True)
