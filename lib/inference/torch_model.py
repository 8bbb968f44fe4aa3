"""The PyTorch side of inference: a trained model behind the runtime's landmark interface
(:class:`lib.deploy.run_model.LandmarkModel`), with optional horizontal-flip test-time
augmentation, so that :class:`lib.deploy.run_model.Pipeline` runs either."""

from __future__ import annotations

import numpy as np
import torch

from lib.data.dataset import normalise_image
from lib.data.geometry import apply_affine, grid_to_crop, invert_affine, normalised_to_grid, warp_image
from lib.deploy.run_model import HEATMAP_STRIDE, crop_matrix, face_prediction
from lib.models.landmark_net import LandmarkNet
from lib.schemes import load_scheme


class TorchLandmarkModel:
    """``face_landmarks(image, centre, scale)`` -> (N, 2) image pixels and their confidence with a PyTorch model.

    ``flip``: also run the mirrored crop and average the two predictions (landmark k of the
    mirrored crop is landmark ``flip_permutation[k]`` of the face, the model scheme's); as with
    the runtime's model, ``flip_permutation`` None means no flip.
    """

    def __init__(self, model: LandmarkNet, flip: bool = False):
        self.model = model.eval()
        self.input_size = model.input_size
        self.scheme_permutation = np.asarray(load_scheme(model.scheme_name).flip_permutation)
        self.num_points = len(self.scheme_permutation)
        self.flip_permutation = self.scheme_permutation if flip else None

    def face_outputs(self, image: np.ndarray, centre: np.ndarray, scale: float, flip: bool = False, rotation: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) landmarks in image pixels for the crop at ``centre``/``scale``/``rotation``
        (``flip``: of the mirrored crop, in the face's landmark order) and the crop's (N, S/4,
        S/4) fused heatmaps, as :meth:`lib.deploy.run_model.LandmarkModel.face_outputs`."""
        matrix = crop_matrix(centre, scale, self.input_size, rotation, flip)
        with torch.no_grad():
            outputs = self.model(normalise_image(warp_image(image, matrix, self.input_size))[None])
        grid = self.input_size // HEATMAP_STRIDE
        crop_points = grid_to_crop(normalised_to_grid(outputs["landmarks"][0].double().numpy(), grid), self.input_size, grid)
        points = apply_affine(invert_affine(matrix), crop_points)
        return (points[self.scheme_permutation] if flip else points), outputs["fused"][0].numpy()

    def face_landmarks(self, image: np.ndarray, centre: np.ndarray, scale: float, rotation: float = 0.0) -> tuple[np.ndarray, float]:
        """(N, 2) image pixels and their confidence, as :meth:`lib.deploy.run_model.LandmarkModel.face_landmarks`."""
        return face_prediction(self, image, centre, scale, rotation, self.flip_permutation is not None)
