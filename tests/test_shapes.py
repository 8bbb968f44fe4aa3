import numpy as np

from lib.analysis.shapes import MeanShapeBaseline, procrustes_align, procrustes_distance, shape_pca
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
