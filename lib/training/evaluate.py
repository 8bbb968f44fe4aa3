"""Prediction and evaluation of a model on an annotation table (crops from the table's boxes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from lib.data.dataset import LandmarkDataset
from lib.formats.table import WFLW_FLAGS, points_array
from lib.metrics import nme, nme_by_condition, summarise
from lib.models.decode import to_image_pixels
from lib.schemes import Scheme


@torch.no_grad()
def predict(model: nn.Module, dataset: LandmarkDataset, batch_size: int = 16, workers: int = 0, device: str | torch.device = "cpu") -> np.ndarray:
    """(F, N, 2) landmarks in original-image pixels for every face of ``dataset`` (in order)."""
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    predictions = []
    for batch in loader:
        landmarks = model(batch["image"].to(device))["landmarks"].float().cpu()
        predictions.append(to_image_pixels(landmarks, dataset.grid_size, dataset.input_size, batch["crop_to_image"]).numpy())
    return np.concatenate(predictions)


def condition_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Conditions to break NME down by: WFLW-style flags, and binned pose/occlusion/blur where
    the table records them."""
    frame = pd.DataFrame(index=table.index)
    for flag in WFLW_FLAGS:
        if flag in table:
            frame[flag] = table[flag]
    if "yaw" in table:
        frame["abs_yaw"] = pd.cut(table["yaw"].abs(), [0, 15, 30, 45, 90], include_lowest=True).astype(str)
    if "occluder" in table:
        frame["occluder"] = table["occluder"]
    if "subset" in table:
        frame["subset"] = table["subset"]
    return frame


def evaluate(
    model: nn.Module, dataset: LandmarkDataset, scheme: Scheme, by_condition: bool = False, normaliser: str | None = None, **predict_kwargs
) -> tuple[dict, np.ndarray, pd.DataFrame | None]:
    """Summary metrics (NME under ``normaliser``, default the scheme's; FR@0.10, AUC@0.10, per
    part), the predictions, and optionally the NME by condition."""
    predicted = predict(model, dataset, **predict_kwargs)
    truth = points_array(dataset.table)
    report = summarise(predicted, truth, scheme, normaliser)
    conditions = None
    if by_condition:
        columns = condition_columns(dataset.table)
        conditions = nme_by_condition(nme(predicted, truth, scheme, normaliser), columns, list(columns.columns))
    return report, predicted, conditions
