"""Crop affines and grid mappings: exact inverses, and agreement with the pixels cv2 warps."""

import cv2
import numpy as np
import pytest

from lib.data.geometry import (
    apply_affine,
    box_to_center_scale,
    crop_to_grid,
    grid_to_crop,
    grid_to_normalised,
    invert_affine,
    normalised_to_grid,
    warp_image,
)
from lib.deploy.run_model import crop_matrix


def test_crop_rules_by_hand():
    centre, scale = box_to_center_scale(np.array([10.0, 20.0, 110.0, 70.0]), "star")
    np.testing.assert_allclose(centre, [60, 45])
    assert scale == pytest.approx(50 / 200 * 1.05)
    _, scale = box_to_center_scale(np.array([10.0, 20.0, 110.0, 70.0]), "hrnet")
    assert scale == pytest.approx(100 / 200 * 1.25)
    _, scale = box_to_center_scale(np.array([10.0, 20.0, 110.0, 70.0]), "hrnet", factor=2.0)
    assert scale == pytest.approx(1.0)
    with pytest.raises(ValueError, match="degenerate"):
        box_to_center_scale(np.array([5.0, 5, 5, 9]))
    with pytest.raises(KeyError, match="unknown crop rule"):
        box_to_center_scale(np.array([0.0, 0, 1, 1]), "nope")


def test_crop_matrix_maps_box_corners_and_centre():
    matrix = crop_matrix(np.array([60.0, 45.0]), 0.5, 128)  # a 100 px square -> 128 px
    np.testing.assert_allclose(apply_affine(matrix, np.array([[60.0, 45.0]])), [[63.5, 63.5]])
    np.testing.assert_allclose(apply_affine(matrix, np.array([[10.0, 45.0]])), [[63.5 - 64, 63.5]])
    flipped = crop_matrix(np.array([60.0, 45.0]), 0.5, 128, flip=True)
    np.testing.assert_allclose(apply_affine(flipped, np.array([[10.0, 45.0]])), [[63.5 + 64, 63.5]])
    rotated = crop_matrix(np.array([0.0, 0.0]), 1.0, 200, rotation=90)
    # Counter-clockwise by 90 degrees in the image: a point right of the centre moves up.
    np.testing.assert_allclose(apply_affine(rotated, np.array([[10.0, 0.0]])), [[99.5, 89.5]], atol=1e-12)


@pytest.mark.parametrize("flip", [False, True])
def test_inverse_returns_points_within_1e9_px(flip):
    rng = np.random.default_rng(0)
    for _ in range(50):
        matrix = crop_matrix(rng.uniform(0, 500, 2), rng.uniform(0.2, 3), int(rng.choice([128, 192, 256])), rng.uniform(-90, 90), flip)
        points = rng.uniform(-100, 600, (51, 2))
        back = apply_affine(invert_affine(matrix), apply_affine(matrix, points))
        assert np.abs(back - points).max() < 1e-9


def test_warp_puts_a_dot_where_the_matrix_says():
    image = np.zeros((200, 300), np.float32)
    dot = np.array([171.3, 88.6])
    ys, xs = np.mgrid[0:200, 0:300]
    image[:] = np.exp(-((xs - dot[0]) ** 2 + (ys - dot[1]) ** 2) / (2 * 3.0**2))
    matrix = crop_matrix(np.array([150.0, 100.0]), 0.8, 128, rotation=25.0, flip=True)
    crop = warp_image(image, matrix, 128)
    cy, cx = np.mgrid[0:128, 0:128]
    found = np.array([(crop * cx).sum(), (crop * cy).sum()]) / crop.sum()
    np.testing.assert_allclose(found, apply_affine(matrix, dot[None])[0], atol=0.02)


def test_grid_mappings_round_trip_and_align_pixel_centres():
    points = np.random.default_rng(1).uniform(-5, 260, (20, 2))
    np.testing.assert_allclose(grid_to_crop(crop_to_grid(points, 256, 64), 256, 64), points, atol=1e-12)
    np.testing.assert_allclose(normalised_to_grid(grid_to_normalised(points, 64), 64), points, atol=1e-12)
    # The centre of a 4x4 block of input pixels is the centre of its grid cell.
    np.testing.assert_allclose(crop_to_grid(np.array([[1.5, 5.5]]), 256, 64), [[0.0, 1.0]])
    # Grid edges map to -1 and 1.
    np.testing.assert_allclose(grid_to_normalised(np.array([[-0.5, 63.5]]), 64), [[-1.0, 1.0]])


def test_cv2_and_our_affine_agree_on_rotation_sign():
    matrix = crop_matrix(np.array([50.0, 50.0]), 0.5, 100, rotation=30.0)
    reference = cv2.getRotationMatrix2D((50.0, 50.0), 30.0, 1.0)
    reference[:, 2] += 49.5 - 50.0
    np.testing.assert_allclose(matrix, reference, atol=1e-12)
