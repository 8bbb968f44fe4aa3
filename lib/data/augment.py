"""Training augmentation.

Geometry (flip, rotation, scale, shift) is folded into the crop affine, so the image is
resampled once and the crop keeps an exact inverse; a flip also permutes the landmarks with the
scheme's flip permutation. Pixel-level augmentation (colour, blur, noise, JPEG, coarse dropout
as synthetic occlusion) runs through albumentations, which carries the keypoints along.
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
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
    randconv_p: float = 0.0  # ours: the crop's colours and textures through a random convolution (RandomConvolution)


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


class RandomConvolution(A.ImageOnlyTransform):
    """Random convolution (RandConv; Xu et al., "Robust and Generalizable Visual Representation
    Learning via Random Convolutions", ICLR 2021): the (H, W, 3) uint8 crop through a 3-to-3
    convolution of a random odd size (1, 3, 5 or 7 px) with weights ~ N(0, 1 / (3 k^2)), each
    output channel brought to the crop's own mean and spread, then mixed with the crop by a weight
    ~ U(0, 1). Colours and local textures change, shapes and edges stay: a network that cannot
    rely on a renderer's textures must rely on the face's shape."""

    def __init__(self, kernel_sizes: tuple[int, ...] = (1, 3, 5, 7), p: float = 0.5):
        super().__init__(p=p)
        self.kernel_sizes = kernel_sizes

    def get_params(self) -> dict:
        size = int(self.random_generator.choice(self.kernel_sizes))
        weights = self.random_generator.normal(0, 1 / np.sqrt(3 * size * size), (3, 3, size, size)).astype(np.float32)
        return {"weights": weights, "mix": float(self.random_generator.random())}

    def apply(self, img: np.ndarray, weights: np.ndarray, mix: float, **params) -> np.ndarray:
        image = img.astype(np.float32)
        channels = [sum(cv2.filter2D(image[..., source], -1, weights[out, source], borderType=cv2.BORDER_REFLECT) for source in range(3)) for out in range(3)]
        convolved = np.stack(channels, axis=-1)
        mean, spread = image.reshape(-1, 3).mean(axis=0), image.reshape(-1, 3).std(axis=0) + 1e-3
        convolved = (convolved - convolved.reshape(-1, 3).mean(axis=0)) / (convolved.reshape(-1, 3).std(axis=0) + 1e-6) * spread + mean
        return np.clip(mix * image + (1 - mix) * convolved, 0, 255).astype(np.uint8)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("kernel_sizes",)


def pixel_pipeline(config: AugmentConfig) -> A.Compose:
    """Photometric and occlusion augmentation, then (with ``randconv_p``) a random convolution and
    (with ``gray_p``) grey scale; keypoints (``xy``) are passed through unchanged."""
    return A.Compose(
        [
            A.ColorJitter(brightness=(0.7, 1.3), contrast=(0.7, 1.3), saturation=(0.7, 1.3), hue=(-0.05, 0.05), p=config.colour_p),
            A.OneOf([A.GaussianBlur(sigma_limit=(0.3, 1.5)), A.MotionBlur(blur_limit=(3, 7))], p=config.blur_p),
            A.GaussNoise(std_range=(0.01, 0.05), p=config.noise_p),
            A.ImageCompression(quality_range=(40, 95), p=config.jpeg_p),
            A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.3), hole_width_range=(0.1, 0.3), fill="random_uniform", p=config.dropout_p),
            *([RandomConvolution(p=config.randconv_p)] if config.randconv_p else []),  # absent at 0, as the grey scale
            *([A.ToGray(num_output_channels=3, p=config.gray_p)] if config.gray_p else []),  # absent at 0: earlier configs draw exactly as before
        ],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
    )
