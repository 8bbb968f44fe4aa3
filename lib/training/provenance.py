"""What a run was trained from, beyond its settings: fingerprints of the training data, of the
teacher's weights and of the weights it started from (``init_from``), so a resume can tell that
one of them changed under an unchanged config; and the identity of the data folder a training
started on (:func:`dataset_identity`), which it records for a later run to reuse it by."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from lib.data.synthetic.generate import generated_params
from lib.io import file_sha256


def table_fingerprint(table: pd.DataFrame) -> str:
    """SHA-256 (hex) over each face's subset, image file name and size in bytes, face index and
    landmarks (float64): new labels, images replaced by others, or faces added or removed change
    it; moving the dataset folder does not."""
    digest = hashlib.sha256()
    for row in table.itertuples(index=False):
        image = Path(row.image)
        digest.update(f"{row.subset}/{image.name}:{image.stat().st_size}:{row.face_index}\0".encode())
        digest.update(np.ascontiguousarray(row.points, dtype=np.float64).tobytes())
    return digest.hexdigest()


def run_provenance(
    train_table: pd.DataFrame, val_table: pd.DataFrame, teacher_checkpoint: str | Path | None, init_from: str | Path | None = None
) -> dict[str, str | None]:
    """``{"train_data", "val_data", "teacher", "init_from"}`` fingerprints (the last two None
    without a teacher or a starting checkpoint)."""
    return {
        "train_data": table_fingerprint(train_table),
        "val_data": table_fingerprint(val_table),
        "teacher": file_sha256(teacher_checkpoint) if teacher_checkpoint is not None else None,
        "init_from": file_sha256(init_from) if init_from is not None else None,
    }


def dataset_identity(data_root: str | Path) -> object:
    """What a data folder holds now: the synthetic generator's recorded parameters (size, seed,
    renderer levers) where the generator wrote it, else the resolved folder. A training records it
    as it starts (``results.json``'s ``data``): a set rendered again in the same folder with other
    parameters is then not taken for the one an earlier training saw."""
    folder = Path(data_root).resolve()
    return generated_params(folder) or str(folder)
