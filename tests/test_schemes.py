import numpy as np
import pytest

from lib.data.synthetic.face_model import template_2d
from lib.schemes import available_schemes, load_scheme


def resample(polyline: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Points at arc-length fractions along an open polyline."""
    lengths = np.r_[0, np.cumsum(np.linalg.norm(np.diff(polyline, axis=0), axis=1))]
    targets = np.asarray(fractions) * lengths[-1]
    return np.column_stack([np.interp(targets, lengths, polyline[:, i]) for i in range(2)])


def wflw_from_ibug68(p: np.ndarray) -> np.ndarray:
    """A WFLW-98 shape from an iBUG-68 one, part by part (independent of the flip tables)."""
    contour = resample(p[0:17], np.linspace(0, 1, 33))
    quarter = np.array([0.25, 0.5, 0.75])
    lower_offset = np.array([0, 0.06])
    right_brow = np.vstack([p[17:22], resample(p[17:22][::-1], np.array([0.2, 0.4, 0.6, 0.8])) + lower_offset])
    left_brow = np.vstack([p[22:27], resample(p[22:27][::-1], np.array([0.2, 0.4, 0.6, 0.8])) + lower_offset])

    def eye(ring: np.ndarray) -> np.ndarray:  # ring: corner, upper, upper, corner, lower, lower (68 order)
        upper = resample(ring[[0, 1, 2, 3]], quarter)
        lower = resample(ring[[3, 4, 5, 0]], quarter)
        return np.vstack([ring[0], upper, ring[3], lower])

    pupils = np.vstack([p[36:42].mean(axis=0), p[42:48].mean(axis=0)])
    return np.vstack([contour, right_brow, left_brow, p[27:31], p[31:36], eye(p[36:42]), eye(p[42:48]), p[48:68], pupils])


def mirror(points: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """Horizontal flip about x = 0, then the scheme's relabelling."""
    return (points * [-1, 1])[permutation]


SHAPES = {
    "ibug68": lambda: template_2d(),
    "ivslab51": lambda: template_2d()[17:],
    "wflw98": lambda: wflw_from_ibug68(template_2d()),
}


@pytest.mark.parametrize("name", ["ibug68", "ivslab51", "wflw98"])
def test_flip_twice_is_identity_and_mirrors_a_symmetric_face(name):
    scheme = load_scheme(name)
    permutation = scheme.flip_permutation
    assert sorted(permutation) == list(range(scheme.num_points))
    assert np.array_equal(permutation[permutation], np.arange(scheme.num_points))
    shape = SHAPES[name]()
    assert shape.shape == (scheme.num_points, 2)
    # A symmetric frontal face is its own mirror image once the labels are swapped.
    np.testing.assert_allclose(mirror(shape, permutation), shape, atol=1e-9)


@pytest.mark.parametrize("name", ["ibug68", "ivslab51", "wflw98"])
def test_left_eye_lands_on_right_eye_positions(name):
    scheme = load_scheme(name)
    shape = SHAPES[name]()
    flipped = mirror(shape, scheme.flip_permutation)
    right, left = scheme.part("right_eye"), scheme.part("left_eye")
    assert set(scheme.flip_permutation[right.indices]) == set(left.indices)
    # Right eye is on the image's left (x < 0) before and after the flip.
    assert (shape[right.indices, 0] < 0).all()
    assert (flipped[right.indices, 0] < 0).all()
    np.testing.assert_allclose(flipped[right.indices], shape[right.indices], atol=1e-9)


def test_parts_cover_points_and_51_is_68_without_jaw():
    s51, s68 = load_scheme("ivslab51"), load_scheme("ibug68")
    assert np.array_equal(s51.from_ibug68, np.arange(17, 68))
    assert [p.name for p in s51.parts] == [p.name for p in s68.parts[1:]]
    for p51, p68 in zip(s51.parts, s68.parts[1:], strict=True):
        assert (p51.start + 17, p51.stop + 17, p51.closed) == (p68.start, p68.stop, p68.closed)
    # The 51 flip permutation is the 68 one restricted to non-jaw points.
    np.testing.assert_array_equal(s51.flip_permutation + 17, s68.flip_permutation[17:])
    assert {part.name for part in s51.parts if part.closed} == {"right_eye", "left_eye", "outer_lip", "inner_lip"}
    assert (s51.part_of_point >= 0).all()


def test_normalisers_and_errors():
    scheme = load_scheme("ivslab51")
    assert scheme.default_normaliser == "eye_centroids"
    assert scheme.normaliser("outer_eye_corners").groups == ((19,), (28,))
    assert set(available_schemes()) == {"ibug68", "ivslab51", "wflw98"}
    with pytest.raises(KeyError, match="unknown landmark scheme"):
        load_scheme("nope")
    with pytest.raises(KeyError, match="no normaliser"):
        scheme.normaliser("nope")


def test_points_from_ibug68_keep_the_schemes_points_in_order():
    ibug = np.arange(68 * 2, dtype=float).reshape(68, 2)
    np.testing.assert_array_equal(load_scheme("ivslab51").points_from_ibug68(ibug), ibug[17:])  # iBUG 18-68
    np.testing.assert_array_equal(load_scheme("ibug68").points_from_ibug68(ibug[None])[0], ibug)
    with pytest.raises(ValueError, match="wflw98 has no iBUG-68 mapping"):
        load_scheme("wflw98").points_from_ibug68(ibug)
