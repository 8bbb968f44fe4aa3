import numpy as np
import pytest

from lib.analysis.shapes import (
    MeanShapeBaseline,
    bias_share,
    eye_line_yaw,
    face_frame_errors,
    mean_shape_offsets,
    procrustes_align,
    procrustes_distance,
    shape_following,
    shape_pca,
)
from lib.data.synthetic.face_model import template_2d


def similarity(points, angle, scale, shift):
    c, s = np.cos(angle), np.sin(angle)
    return scale * points @ np.array([[c, s], [-s, c]]) + shift


def test_procrustes_removes_similarity_transforms():
    base = template_2d()[17:]
    rng = np.random.default_rng(0)
    shapes = np.stack([similarity(base, rng.uniform(-1, 1), rng.uniform(20, 80), rng.uniform(0, 300, 2)) for _ in range(10)])
    aligned, mean = procrustes_align(shapes)
    assert abs(np.sqrt((mean**2).sum(axis=1).mean()) - 1) < 1e-9
    assert procrustes_distance(aligned, mean).max() < 1e-9
    # The same shapes with one expression change: that face is the outlier and PCA finds one mode.
    shapes[3, 38:] += [0, 30.0]
    aligned, mean = procrustes_align(shapes)
    assert np.argmax(procrustes_distance(aligned, mean)) == 3
    components, ratios, scores = shape_pca(aligned, 3)
    assert ratios[0] > 0.99
    assert np.argmax(np.abs(scores[:, 0])) == 3
    # The scores reconstruct the shapes: mean + scores @ components, exact with all components.
    flat = aligned.reshape(len(aligned), -1)
    assert np.allclose(flat.mean(axis=0) + scores @ components, flat, atol=1e-3 * np.abs(flat).max())
    all_components, all_ratios, all_scores = shape_pca(aligned, 20)
    assert all_scores.shape == (10, 10)
    assert abs(all_ratios.sum() - 1) < 1e-9
    assert np.allclose(flat.mean(axis=0) + all_scores @ all_components, flat, atol=1e-12)


def test_mean_shape_baseline_is_exact_for_box_scaled_copies():
    base = template_2d()[17:]
    shapes = np.stack([base * [sx, sy] + [tx, ty] for sx, sy, tx, ty in [(50, 60, 10, 20), (30, 30, 200, 5), (80, 70, 0, 0)]])
    boxes = np.column_stack([shapes.min(axis=1), shapes.max(axis=1)])
    baseline = MeanShapeBaseline().fit(shapes, boxes)
    np.testing.assert_allclose(baseline.predict(boxes), shapes, atol=1e-9)


def test_mean_shape_offsets_find_a_point_defined_elsewhere():
    """Two sets of one markup under random similarities, the second placing the first brow point
    0.1 eye-corner distances higher. The offsets equal those of the two underlying shapes fitted
    directly (a least-squares similarity solved as a linear system): the moved point stands out,
    lower in the first set (+y), the others move little (the fit spreads the change); the order
    of the sets flips the sign, and two sets of one shape differ by nothing."""
    base = template_2d()[17:]
    corners = (19, 28)
    moved = base.copy()
    moved[0, 1] -= 0.1 * np.linalg.norm(base[28] - base[19])
    rng = np.random.default_rng(1)

    def faces(shape, count):
        return np.stack([similarity(shape, rng.uniform(-0.5, 0.5), rng.uniform(20, 80), rng.uniform(0, 300, 2)) for _ in range(count)])

    # Independently: x' = a x - b y + tx, y' = b x + a y + ty fitted from base onto moved.
    ones, zeros = np.ones(len(base)), np.zeros(len(base))
    design = np.vstack([np.column_stack([base[:, 0], -base[:, 1], ones, zeros]), np.column_stack([base[:, 1], base[:, 0], zeros, ones])])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, np.concatenate([moved[:, 0], moved[:, 1]]), rcond=None)
    fitted = np.column_stack([a * base[:, 0] - b * base[:, 1] + tx, b * base[:, 0] + a * base[:, 1] + ty])
    expected = (fitted - moved) / np.linalg.norm(moved[28] - moved[19])

    mapped, second_mean, offsets = mean_shape_offsets(faces(base, 12), faces(moved, 7), corners)
    np.testing.assert_allclose(offsets, expected, atol=1e-6)
    assert offsets[0, 1] > 0.08
    assert np.argmax(np.linalg.norm(offsets, axis=1)) == 0
    assert np.linalg.norm(offsets[1:], axis=1).max() < 0.02
    np.testing.assert_allclose(mapped - second_mean, offsets * np.linalg.norm(second_mean[28] - second_mean[19]))
    np.testing.assert_allclose(mean_shape_offsets(faces(moved, 7), faces(base, 12), corners)[2][0], -offsets[0], atol=0.005)
    assert np.abs(mean_shape_offsets(faces(base, 5), faces(base, 9), corners)[2]).max() < 1e-6


def test_eye_line_yaw_of_a_turned_face():
    """The nose tip moved along the eye line by a share of the corner distance reads as that share,
    whatever the face's rotation, scale and place."""
    base = template_2d()[17:]
    unit = base[28] - base[19]
    turned = base.copy()
    turned[16] += 0.1 * unit
    faces = np.stack([similarity(shape, 0.7, 40.0, np.array([100.0, 50.0])) for shape in (base, turned)])
    np.testing.assert_allclose(eye_line_yaw(faces, 16, (19, 28)), [0.0, 0.1], atol=1e-9)


def test_face_frame_errors_undo_each_faces_turn_and_size():
    """A prediction shifted by 0.1 corner distances along the eye line and 0.05 across it, on
    faces turned, scaled and placed anyhow, reads (0.1, 0.05) at every point; as the shift is the
    whole error, its bias share is 1, and errors that flip sign from face to face have share 0."""
    base = template_2d()[17:]
    corners = (19, 28)
    rng = np.random.default_rng(2)
    truth, predicted = [], []
    for _ in range(6):
        angle, scale, shift = rng.uniform(-1, 1), rng.uniform(20, 80), rng.uniform(0, 300, 2)
        face = similarity(base, angle, scale, shift)
        line = face[corners[1]] - face[corners[0]]
        across = np.array([-line[1], line[0]])
        truth.append(face)
        predicted.append(face + 0.1 * line + 0.05 * across)
    errors = face_frame_errors(np.stack(predicted), np.stack(truth), corners)
    np.testing.assert_allclose(errors, np.broadcast_to([0.1, 0.05], errors.shape), atol=1e-12)
    assert bias_share(errors) == pytest.approx(1.0)
    flipped = errors * np.array([1, -1, 1, -1, 1, -1])[:, None, None]
    assert bias_share(flipped) == pytest.approx(0.0, abs=1e-12)


def test_shape_following_reads_how_much_of_each_faces_shape_a_prediction_keeps():
    """Faces are the template plus their own small deviations, each turned, scaled and placed
    anyhow; a prediction that keeps a share k of the deviation (placed like the face) reads k,
    the labels themselves 1, and the template alone (the mean shape) about 0."""
    base = template_2d()[17:]
    rng = np.random.default_rng(3)
    deviations = rng.normal(0.0, 0.02, (40, *base.shape))
    deviations -= deviations.mean(axis=0)
    poses = [(rng.uniform(-0.6, 0.6), rng.uniform(30, 90), rng.uniform(0, 300, 2)) for _ in deviations]
    truth = np.stack([similarity(base + d, *pose) for d, pose in zip(deviations, poses, strict=True)])
    for share in (0.0, 0.5, 1.2):
        predicted = np.stack([similarity(base + share * d, *pose) for d, pose in zip(deviations, poses, strict=True)])
        assert shape_following(predicted, truth) == pytest.approx(share, abs=0.03)
    assert shape_following(truth, truth) == pytest.approx(1.0)
    assert np.isnan(shape_following(truth[:1], truth[:1]))
