"""A real learning check: each model drives NME on 8 synthetic faces below 3 % in a bounded
number of CPU steps, through the real Dataset, criterion, decoding and metric."""

import numpy as np
import pytest
import torch

from lib.data.dataset import LandmarkDataset
from lib.formats.pair import read_pair_train
from lib.formats.table import points_array
from lib.losses.criterion import LandmarkCriterion
from lib.metrics import nme
from lib.models import build_model
from lib.models.decode import to_image_pixels
from lib.schemes import load_scheme
from lib.training.engine import param_groups

SIZE = 128


def overfit(kind: str, steps: int, lr: float, head_lr: float, cosine: bool, table) -> float:
    torch.manual_seed(0)
    scheme = load_scheme("ivslab51")
    dataset = LandmarkDataset(table, scheme, SIZE)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    model = build_model({"kind": kind, "input_size": SIZE})
    criterion = LandmarkCriterion()
    optimiser = torch.optim.AdamW(param_groups(model, criterion, lr, head_lr, 1e-4))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps) if cosine else None
    model.train()
    for _ in range(steps):
        loss, _ = criterion(model(batch["image"]), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
    model.eval()
    with torch.no_grad():
        landmarks = model(batch["image"])["landmarks"]
    predicted = to_image_pixels(landmarks, dataset.grid_size, SIZE, batch["crop_to_image"]).numpy()
    return float(nme(predicted, points_array(table), scheme).mean())


@pytest.fixture(scope="module")
def eight_faces(synthetic_root):
    return read_pair_train(synthetic_root / "ivslab_facial_train").iloc[:8]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "steps", "lr", "head_lr", "cosine"), [("student", 300, 2e-3, 2e-3, True), ("teacher", 130, 3e-4, 1e-3, False)])
def test_model_overfits_eight_faces(kind, steps, lr, head_lr, cosine, eight_faces):
    torch.set_num_threads(2)
    start = overfit(kind, 0, lr, head_lr, cosine, eight_faces)
    final = overfit(kind, steps, lr, head_lr, cosine, eight_faces)
    assert start > 0.10
    assert final < 0.03, f"{kind}: NME {final:.4f} after {steps} steps"
    assert np.isfinite(final)
