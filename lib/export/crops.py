"""The crops an export uses: calibration crops from the training split, parity crops from the
validation split, both cut exactly as in training (deterministic, no augmentation)."""

from __future__ import annotations

from lib.data.dataset import LandmarkDataset
from lib.data.sources import profile_sources
from lib.data.splits import split_seed_of, training_split
from lib.schemes import load_scheme


def export_datasets(train_config: dict, input_size: int, data_root: str | None = None) -> tuple[LandmarkDataset, LandmarkDataset]:
    """(calibration, validation) datasets of a checkpoint's training config at ``input_size``
    (``data_root``: the PAIR tree to use instead, for a config without ``sources``)."""
    scheme = load_scheme(train_config["scheme"])
    sources = profile_sources(train_config.get("sources"), data_root or train_config["data_root"])
    train_table, val_table = training_split(
        sources, scheme.name, train_config["val_fraction"], split_seed_of(train_config), train_config.get("skip_bad_faces", False)
    )
    return LandmarkDataset(train_table, scheme, input_size), LandmarkDataset(val_table, scheme, input_size)
