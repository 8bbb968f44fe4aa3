"""The landmark Dataset: annotation table -> crops, targets and the way back to the image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from lib.data.augment import IDENTITY, AugmentConfig, GeometryDraw, pixel_pipeline, sample_geometry
from lib.data.geometry import apply_affine, box_to_center_scale, crop_to_grid, grid_to_normalised, invert_affine, warp_image
from lib.data.targets import make_targets
from lib.deploy.run_model import CROP_UNIT, HEATMAP_STRIDE, crop_matrix
from lib.formats.images import load_image
from lib.formats.table import boxes_array, points_array
from lib.schemes import Scheme

PIXEL_MEAN = 127.5
PIXEL_SCALE = 127.5


def normalise_image(crop: np.ndarray) -> torch.Tensor:
    """(S, S, 3) uint8 RGB -> (3, S, S) float32 ``(x - 127.5) / 127.5``."""
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float().sub_(PIXEL_MEAN).div_(PIXEL_SCALE)


class LandmarkDataset(Dataset):
    """Face crops of an annotation table, with targets.

    Each item is a dict of tensors:
        image          (3, S, S) float32, ``(pixel - 127.5) / 127.5``
        heatmap        (N, G, G) float32, Gaussians of std ``heatmap_sigma`` cells (:func:`lib.data.targets.make_targets`)
        pointmap       (N, G, G) float32, Gaussians of std ``point_sigma`` cells
        edgemap        (E, G, G) float32, one anti-aliased polyline per part
        points         (N, 2) float32, landmarks in crop pixels
        points_norm    (N, 2) float32, landmarks on the grid in [-1, 1]
        crop_to_image  (2, 3) float64, affine from crop pixels back to original-image pixels
        flipped        bool; if True, landmark k of the item is landmark ``flip_permutation[k]``
                       of the original face (so ``crop_to_image`` maps ``points[k]`` onto
                       ``original[flip_permutation[k]]``)
        index          int, the row of the table
    with S = ``input_size`` and G = ``input_size // 4``. With ``augment`` None the crop is
    deterministic (validation/test); otherwise every access draws a new augmentation from
    ``seed``, the item index and an internal epoch counter (:meth:`set_epoch`).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        scheme: Scheme,
        input_size: int = 256,
        augment: AugmentConfig | None = None,
        crop_rule: str = "landmark_box",
        crop_factor: float | None = None,
        seed: int = 0,
    ):
        if len(table) == 0:
            raise ValueError("the annotation table is empty")
        if input_size % 4:
            raise ValueError(f"input_size must be a multiple of 4, got {input_size}")
        self.table = table.reset_index(drop=True)
        self.points = points_array(self.table)
        if self.points.shape[1] != scheme.num_points:
            raise ValueError(f"table has {self.points.shape[1]} points per face, scheme {scheme.name} has {scheme.num_points}")
        self.boxes = boxes_array(self.table)
        self.scheme = scheme
        self.input_size = input_size
        self.grid_size = input_size // HEATMAP_STRIDE
        self.augment = augment
        self.pixel_augment = pixel_pipeline(augment) if augment is not None else None
        self.crop_rule, self.crop_factor = crop_rule, crop_factor
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.table)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (call before each epoch)."""
        self.epoch = epoch

    def crop_for(self, index: int, draw: GeometryDraw = IDENTITY) -> np.ndarray:
        """The image-to-crop affine (2, 3) of face ``index`` under a geometric draw."""
        centre, scale = box_to_center_scale(self.boxes[index], self.crop_rule, self.crop_factor)
        scale *= draw.scale_factor
        centre = centre + draw.shift * CROP_UNIT * scale
        return crop_matrix(centre, scale, self.input_size, draw.rotation, draw.flip)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        draw = sample_geometry(rng, self.augment) if self.augment is not None else IDENTITY
        matrix = self.crop_for(index, draw)
        image = load_image(self.table.at[index, "image"])
        crop = warp_image(image, matrix, self.input_size)
        points = apply_affine(matrix, self.points[index])
        if draw.flip:
            points = points[self.scheme.flip_permutation]
        if self.pixel_augment is not None:
            self.pixel_augment.set_random_seed(int(rng.integers(2**31)))
            out = self.pixel_augment(image=crop, keypoints=points.astype(np.float32))
            crop, points = out["image"], np.asarray(out["keypoints"], dtype=np.float64)
        grid_points = crop_to_grid(points, self.input_size, self.grid_size)
        targets = make_targets(grid_points, self.scheme, self.grid_size)
        return {
            "image": normalise_image(crop),
            **{name: torch.from_numpy(value) for name, value in targets.items()},
            "points": torch.from_numpy(points.astype(np.float32)),
            "points_norm": torch.from_numpy(grid_to_normalised(grid_points, self.grid_size).astype(np.float32)),
            "crop_to_image": torch.from_numpy(invert_affine(matrix)),
            "flipped": draw.flip,
            "index": index,
        }
