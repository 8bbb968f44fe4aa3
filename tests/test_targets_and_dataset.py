"""Targets on the heatmap grid, and the Dataset's way back to the original pixels."""

import numpy as np
import pytest

from lib.data.augment import AugmentConfig, RandomConvolution
from lib.data.dataset import LandmarkDataset
from lib.data.geometry import apply_affine, grid_to_normalised
from lib.data.targets import edge_maps, gaussian_maps, make_targets
from lib.formats.pair import read_pair_train
from lib.formats.table import points_array
from lib.schemes import load_scheme

SCHEME = load_scheme("ivslab51")


def test_gaussian_peak_and_centroid_at_subpixel_points():
    points = np.array([[10.3, 20.7], [31.0, 0.0]])
    maps = gaussian_maps(points, 32, 1.5)
    assert maps.shape == (2, 32, 32)
    assert maps.dtype == np.float32
    ys, xs = np.mgrid[0:32, 0:32]
    expected = np.exp(-((xs - 10.3) ** 2 + (ys - 20.7) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(maps[0], expected, atol=1e-6)
    centroid = np.array([(maps[0] * xs).sum(), (maps[0] * ys).sum()]) / maps[0].sum()
    np.testing.assert_allclose(centroid, points[0], atol=1e-3)
    assert maps[1].max() == pytest.approx(1.0)


def test_edge_maps_follow_parts_and_close_closed_ones():
    scheme = load_scheme("ivslab51")
    points = np.full((51, 2), -100.0)  # everything off-grid ...
    eye = scheme.part("right_eye")
    brow = scheme.part("right_eyebrow")
    square = np.array([[10, 10], [20, 10], [30, 10], [30, 30], [20, 30], [10, 30]], float)
    points[eye.start : eye.stop] = square  # ... but a closed square eye and an open brow
    points[brow.start : brow.stop] = np.column_stack([np.linspace(5, 40, 5), np.full(5, 50.0)])
    maps = edge_maps(points, scheme, 64, sigma=0.0)
    eye_map, brow_map = maps[scheme.parts.index(eye)], maps[scheme.parts.index(brow)]
    assert eye_map.max() == pytest.approx(1.0)
    assert eye_map[20, 10] > 0.5  # the closing segment from (10, 30) back to (10, 10)
    assert eye_map[20, 30] > 0.5
    assert eye_map[10, 25] > 0.5
    assert eye_map[20, 20] == 0  # inside is empty
    assert brow_map[50, 22] > 0.5
    assert brow_map[50, 45] == 0
    others = [i for i, p in enumerate(scheme.parts) if p.name not in ("right_eye", "right_eyebrow")]
    assert maps[others].max() == 0


def test_make_targets_shapes():
    targets = make_targets(np.random.default_rng(0).uniform(0, 47, (51, 2)), SCHEME, 48)
    assert targets["heatmap"].shape == (51, 48, 48)
    assert targets["pointmap"].shape == (51, 48, 48)
    assert targets["edgemap"].shape == (8, 48, 48)


@pytest.fixture(scope="module")
def table(synthetic_root):
    return read_pair_train(synthetic_root / "ivslab_facial_train")


@pytest.mark.parametrize("size", [128, 192, 256])
def test_item_shapes_and_normalisation(table, size):
    item = LandmarkDataset(table, SCHEME, size)[0]
    grid = size // 4
    assert item["image"].shape == (3, size, size)
    assert item["image"].min() >= -1.0
    assert item["image"].max() <= 1.0
    assert item["heatmap"].shape == (51, grid, grid)
    assert item["edgemap"].shape == (8, grid, grid)
    assert item["points"].shape == (51, 2)
    assert item["crop_to_image"].shape == (2, 3)
    # points_norm is points mapped to the grid and then to [-1, 1].
    expected = grid_to_normalised((item["points"].numpy() + 0.5) / 4 - 0.5, grid)
    np.testing.assert_allclose(item["points_norm"].numpy(), expected, atol=1e-5)


def test_inverse_transform_recovers_original_pixels_with_augmentation(table):
    dataset = LandmarkDataset(table, SCHEME, 128, AugmentConfig(rotation_p=1.0), seed=3)
    original = points_array(table)
    flips = 0
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            item = dataset[index]
            back = apply_affine(item["crop_to_image"].numpy(), item["points"].numpy().astype(np.float64))
            expected = original[index][SCHEME.flip_permutation] if item["flipped"] else original[index]
            assert np.abs(back - expected).max() < 1e-3  # float32 crop points
            flips += item["flipped"]
    assert 0 < flips < 3 * len(dataset)


def test_augmentation_is_reproducible_and_changes_with_epoch(table):
    a = LandmarkDataset(table, SCHEME, 128, AugmentConfig(), seed=1)
    b = LandmarkDataset(table, SCHEME, 128, AugmentConfig(), seed=1)
    first, again = a[2], b[2]
    assert np.array_equal(first["image"].numpy(), again["image"].numpy())
    a.set_epoch(1)
    assert not np.array_equal(a[2]["image"].numpy(), first["image"].numpy())
    plain, other = LandmarkDataset(table, SCHEME, 128), LandmarkDataset(table, SCHEME, 128)
    other.set_epoch(3)  # without augmentation the epoch changes nothing
    assert np.array_equal(plain[2]["image"].numpy(), other[2]["image"].numpy())
    assert not np.array_equal(plain[2]["image"].numpy(), first["image"].numpy())


def test_grey_scale_augmentation_greys_every_crop_and_leaves_the_rest_of_the_draw_alone(table):
    no_pixels = {"colour_p": 0.0, "blur_p": 0.0, "noise_p": 0.0, "jpeg_p": 0.0, "dropout_p": 0.0}
    colour = LandmarkDataset(table, SCHEME, 64, AugmentConfig(**no_pixels), seed=2)[1]
    grey = LandmarkDataset(table, SCHEME, 64, AugmentConfig(**no_pixels, gray_p=1.0), seed=2)[1]
    channels = grey["image"].numpy()
    assert np.abs(channels - channels[:1]).max() < 1e-6  # three equal channels
    assert np.abs(colour["image"].numpy() - colour["image"].numpy()[:1]).max() > 0.1  # the synthetic faces are in colour
    # weighted average, as a camera's luminance: 0.299 R + 0.587 G + 0.114 B (within a grey level of rounding)
    luminance = np.tensordot(np.array([0.299, 0.587, 0.114]), colour["image"].numpy(), axes=1)
    assert np.abs(channels[0] - luminance).max() < 2.5 / 127.5
    assert np.array_equal(grey["points"].numpy(), colour["points"].numpy())  # the same geometry drawn
    # gray_p 0 adds nothing to the pipeline, so earlier configurations augment exactly as before
    assert [type(t).__name__ for t in LandmarkDataset(table, SCHEME, 64, AugmentConfig()).pixel_augment.transforms][-1] == "CoarseDropout"


def test_a_random_convolution_changes_colours_and_textures_but_keeps_the_edges_and_the_points(table):
    # A step edge: through any 3-to-3 convolution of 1-7 px and the mixing, the strongest horizontal
    # change stays within a kernel's half-width of the step, and the image keeps its mean and spread.
    step = np.zeros((32, 48, 3), np.uint8)
    step[:, 24:] = (200, 120, 60)
    step[:, :24] = (40, 90, 160)
    for seed in range(8):
        transform = RandomConvolution(p=1.0)
        transform.set_random_seed(seed)
        out = transform(image=step)["image"].astype(float)
        assert out.shape == step.shape
        change = np.abs(np.diff(out, axis=1)).sum(axis=(0, 2))
        assert abs(int(change.argmax()) - 23) <= 3
        assert out.reshape(-1, 3).mean(axis=0) == pytest.approx(step.reshape(-1, 3).mean(axis=0), abs=12)
    no_pixels = {"colour_p": 0.0, "blur_p": 0.0, "noise_p": 0.0, "jpeg_p": 0.0, "dropout_p": 0.0}
    plain = LandmarkDataset(table, SCHEME, 64, AugmentConfig(**no_pixels), seed=2)[1]
    convolved = LandmarkDataset(table, SCHEME, 64, AugmentConfig(**no_pixels, randconv_p=1.0), seed=2)[1]
    assert np.array_equal(convolved["points"].numpy(), plain["points"].numpy())
    assert np.abs(convolved["image"].numpy() - plain["image"].numpy()).mean() > 0.02


def test_heatmap_targets_peak_at_the_landmarks(table):
    item = LandmarkDataset(table, SCHEME, 128)[5]
    grid_points = (item["points"].numpy() + 0.5) / 4 - 0.5
    inside = ((grid_points >= 0) & (grid_points <= 31)).all(axis=1)
    heatmap = item["heatmap"].numpy()
    ys, xs = np.mgrid[0:32, 0:32]
    for k in np.flatnonzero(inside):
        centroid = np.array([(heatmap[k] * xs).sum(), (heatmap[k] * ys).sum()]) / heatmap[k].sum()
        assert np.abs(centroid - grid_points[k]).max() < 0.1


def test_dataset_rejects_bad_configuration(table):
    with pytest.raises(ValueError, match="multiple of 4"):
        LandmarkDataset(table, SCHEME, 130)
    with pytest.raises(ValueError, match="empty"):
        LandmarkDataset(table.iloc[:0], SCHEME)
    with pytest.raises(ValueError, match="scheme ibug68 has 68"):
        LandmarkDataset(table, load_scheme("ibug68"))
