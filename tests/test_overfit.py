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


def overfit(kind: str, size: int, steps: int, lr: float, head_lr: float, cosine: bool, table) -> float:
    torch.manual_seed(0)
    scheme = load_scheme("ivslab51")
    dataset = LandmarkDataset(table, scheme, size)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    model = build_model({"kind": kind, "input_size": size})
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
    predicted = to_image_pixels(landmarks, dataset.grid_size, size, batch["crop_to_image"]).numpy()
    return float(nme(predicted, points_array(table), scheme).mean())


@pytest.fixture(scope="module")
def eight_faces(synthetic_root):
    return read_pair_train(synthetic_root / "ivslab_facial_train").iloc[:8]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "size", "steps", "lr", "head_lr", "cosine"),
    [
        ("student", 128, 300, 2e-3, 2e-3, True),  # MobileViT-v2 sees a 2x2 grid at 64 px: too coarse to overfit in these steps
        ("teacher", 64, 100, 3e-4, 1e-3, False),
    ],
)
def test_model_overfits_eight_faces(kind, size, steps, lr, head_lr, cosine, eight_faces):
    torch.set_num_threads(2)
    start = overfit(kind, size, 0, lr, head_lr, cosine, eight_faces)
    final = overfit(kind, size, steps, lr, head_lr, cosine, eight_faces)
    assert start > 0.10
    assert final < 0.03, f"{kind}: NME {final:.4f} after {steps} steps"
    assert np.isfinite(final)
