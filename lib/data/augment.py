"""Training augmentation.

Geometry (flip, rotation, scale, shift) is folded into the crop affine, so the image is
resampled once and the crop keeps an exact inverse; a flip also permutes the landmarks with the
scheme's flip permutation. Pixel-level augmentation (colour, blur, noise, JPEG, coarse dropout
as synthetic occlusion) runs through albumentations, which carries the keypoints along.
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (the paper's defaults). Shifts are fractions of the crop side;
    rotation in degrees; every ``*_p`` is a probability."""

    flip_p: float = 0.5
    rotation_sigma: float = 45.0
    rotation_p: float = 0.5
    scale_sigma: float = 0.1
    shift_sigma: float = 0.05
    colour_p: float = 0.5
    blur_p: float = 0.2
    noise_p: float = 0.2
    jpeg_p: float = 0.2
    dropout_p: float = 0.3
    gray_p: float = 0.0  # ours: a grey-scale image (domain randomisation: real photographs include black-and-white ones)


@dataclass(frozen=True)
class GeometryDraw:
    """One random draw of the geometric augmentation."""

    flip: bool
    rotation: float
    scale_factor: float
    shift: np.ndarray


IDENTITY = GeometryDraw(False, 0.0, 1.0, np.zeros(2))


def sample_geometry(rng: np.random.Generator, config: AugmentConfig) -> GeometryDraw:
    """Rotation ~ N(0, sigma) clipped to 2 sigma (with probability ``rotation_p``), scale factor
    ~ 1 + N(0, sigma) clipped to 2 sigma, shift ~ N(0, sigma) per axis clipped to 2 sigma."""
    rotation = (
        float(np.clip(rng.normal(0, config.rotation_sigma), -2 * config.rotation_sigma, 2 * config.rotation_sigma)) if rng.random() < config.rotation_p else 0.0
    )
    scale = 1.0 + float(np.clip(rng.normal(0, config.scale_sigma), -2 * config.scale_sigma, 2 * config.scale_sigma))
    shift = np.clip(rng.normal(0, config.shift_sigma, 2), -2 * config.shift_sigma, 2 * config.shift_sigma)
    return GeometryDraw(bool(rng.random() < config.flip_p), rotation, scale, shift)


def pixel_pipeline(config: AugmentConfig) -> A.Compose:
    """Photometric and occlusion augmentation, then (with ``gray_p``) grey scale; keypoints
    (``xy``) are passed through unchanged."""
    return A.Compose(
        [
            A.ColorJitter(brightness=(0.7, 1.3), contrast=(0.7, 1.3), saturation=(0.7, 1.3), hue=(-0.05, 0.05), p=config.colour_p),
            A.OneOf([A.GaussianBlur(sigma_limit=(0.3, 1.5)), A.MotionBlur(blur_limit=(3, 7))], p=config.blur_p),
            A.GaussNoise(std_range=(0.01, 0.05), p=config.noise_p),
            A.ImageCompression(quality_range=(40, 95), p=config.jpeg_p),
            A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.3), hole_width_range=(0.1, 0.3), fill="random_uniform", p=config.dropout_p),
            *([A.ToGray(num_output_channels=3, p=config.gray_p)] if config.gray_p else []),  # absent at 0: earlier configs draw exactly as before
        ],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
    )
