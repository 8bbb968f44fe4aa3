"""The PyTorch side of inference: a trained model behind the runtime's landmark interface
(:class:`lib.deploy.run_model.LandmarkModel`), with optional horizontal-flip test-time
augmentation, so that :class:`lib.deploy.run_model.Pipeline` runs either."""

from __future__ import annotations

import numpy as np
import torch

from lib.data.dataset import normalise_image
from lib.data.geometry import apply_affine, grid_to_crop, invert_affine, normalised_to_grid, warp_image
from lib.deploy.run_model import HEATMAP_STRIDE, crop_matrix
from lib.models.landmark_net import LandmarkNet
from lib.schemes import load_scheme


class TorchLandmarkModel:
    """``face_landmarks(image, centre, scale)`` -> (N, 2) image pixels with a PyTorch model.

    ``flip``: also run the mirrored crop and average the two predictions (landmark k of the
    mirrored crop is landmark ``flip_permutation[k]`` of the face).
    """

    def __init__(self, model: LandmarkNet, flip: bool = False):
        self.model = model.eval()
        self.input_size = model.input_size
        self.flip = flip
        self.flip_permutation = load_scheme(model.scheme_name).flip_permutation

    def face_landmarks(self, image: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
        flips = (False, True) if self.flip else (False,)
        matrices = [crop_matrix(centre, scale, self.input_size, flip=flip) for flip in flips]
        batch = torch.stack([normalise_image(warp_image(image, matrix, self.input_size)) for matrix in matrices])
        with torch.no_grad():
            landmarks = self.model(batch)["landmarks"].double().numpy()
        grid = self.input_size // HEATMAP_STRIDE
        crop_points = grid_to_crop(normalised_to_grid(landmarks, grid), self.input_size, grid)
        faces = [apply_affine(invert_affine(matrix), points) for matrix, points in zip(matrices, crop_points, strict=True)]
        if self.flip:
            faces[1] = faces[1][self.flip_permutation]
        return np.mean(faces, axis=0)
