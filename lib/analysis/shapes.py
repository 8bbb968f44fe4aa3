"""Shape statistics: generalised Procrustes alignment, PCA of aligned shapes, outliers, the
mean-shape baseline that any trained model must beat by far, and the mean-shape offsets between
two labelled sets (label semantics).

Shapes are (F, N, 2) pixel coordinates.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA


def _similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 2) rotation x scale that best maps centred (N, 2) ``source`` onto centred ``target``
    (least squares, no reflection): ``source @ matrix.T``."""
    a = source[:, 0] @ target[:, 0] + source[:, 1] @ target[:, 1]
    b = source[:, 0] @ target[:, 1] - source[:, 1] @ target[:, 0]
    norm = (source**2).sum()
    return np.array([[a, -b], [b, a]]) / norm


def _similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Centred (N, 2) ``source`` mapped by :func:`_similarity_matrix` onto centred ``target``."""
    return source @ _similarity_matrix(source, target).T


def procrustes_align(shapes: np.ndarray, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes analysis: every shape mapped by a similarity onto the mean.

    Returns the aligned shapes (F, N, 2) and the mean (N, 2), centred at 0 with unit RMS radius.
    """
    centred = shapes - shapes.mean(axis=1, keepdims=True)
    mean = centred[0] / np.sqrt((centred[0] ** 2).sum(axis=1).mean())
    aligned = centred
    for _ in range(iterations):
        aligned = np.stack([_similarity_fit(shape, mean) for shape in centred])
        new_mean = aligned.mean(axis=0)
        new_mean /= np.sqrt((new_mean**2).sum(axis=1).mean())
        if np.allclose(new_mean, mean, atol=1e-9):
            break
        mean = new_mean
    return aligned, mean


def shape_pca(aligned: np.ndarray, components: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of aligned shapes: component vectors (K, N*2), explained-variance ratios (K,), and
    each face's scores (F, K)."""
    flat = aligned.reshape(len(aligned), -1)
    pca = PCA(n_components=min(components, *flat.shape)).fit(flat)
    return pca.components_, pca.explained_variance_ratio_, pca.transform(flat)


def procrustes_distance(aligned: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(F,) RMS distance of each aligned shape from the mean (in mean-shape units): large values
    flag unusual poses, expressions or annotation errors."""
    return np.sqrt(((aligned - mean) ** 2).sum(axis=-1).mean(axis=-1))


class MeanShapeBaseline:
    """Predicts the training mean shape, placed in each face's box.

    The mean is computed in box coordinates ((x - x0) / w, (y - y0) / h) over the training faces;
    prediction maps it back into each test box (F, 4). It ignores the image entirely, so its NME
    measures how much the dataset's pose and shape spread asks of a model.
    """

    def fit(self, points: np.ndarray, boxes: np.ndarray) -> MeanShapeBaseline:
        origin, size = boxes[:, None, :2], (boxes[:, 2:] - boxes[:, :2])[:, None, :]
        self.mean_ = ((points - origin) / size).mean(axis=0)
        return self

    def predict(self, boxes: np.ndarray) -> np.ndarray:
        origin, size = boxes[:, None, :2], (boxes[:, 2:] - boxes[:, :2])[:, None, :]
        return origin + self.mean_[None] * size


def eye_line_yaw(points: np.ndarray, nose_tip: int, corners: tuple[int, int]) -> np.ndarray:
    """(F,) a yaw proxy of (F, N, 2) faces: the nose tip's offset along the eye line from the
    middle of the two outer eye corners, in corner distances (0: frontal; on the renderer's
    average head 0.06 at 10 deg of yaw, 0.12 at 20, 0.19 at 30)."""
    left, right = points[:, corners[0]], points[:, corners[1]]
    line = right - left
    distance = np.linalg.norm(line, axis=-1)
    along = ((points[:, nose_tip] - (left + right) / 2) * line).sum(axis=-1) / distance
    return along / distance


def mean_shape_offsets(first: np.ndarray, second: np.ndarray, corners: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where two labelled sets of one scheme differ on average (label semantics: what a point
    means in each markup). (F1, N, 2) and (F2, N, 2) faces -> the first set's Procrustes mean
    mapped by a similarity onto the second's, the second's mean turned upright (its
    ``corners[0]`` -> ``corners[1]`` line along +x, y down as in images; both (N, 2), in the
    second mean's units), and each point's (N, 2) offset first - second in that frame, in
    outer-eye-corner distances of the second mean (``corners``: the two indices)."""
    if first.shape[1:] != second.shape[1:]:
        raise ValueError(f"the two sets hold different points: {first.shape[1:]} and {second.shape[1:]}")
    _, first_mean = procrustes_align(first)
    _, second_mean = procrustes_align(second)
    eye_line = second_mean[corners[1]] - second_mean[corners[0]]
    cos, sin = eye_line / np.linalg.norm(eye_line)
    second_mean = second_mean @ np.array([[cos, -sin], [sin, cos]])
    mapped = _similarity_fit(first_mean, second_mean)
    unit = np.linalg.norm(second_mean[corners[1]] - second_mean[corners[0]])
    return mapped, second_mean, (mapped - second_mean) / unit


def face_frame_errors(predicted: np.ndarray, truth: np.ndarray, corners: tuple[int, int]) -> np.ndarray:
    """(F, N, 2) errors ``predicted - truth`` of (F, N, 2) faces, each in its labelled face's own
    frame: x along the ``corners[0]`` -> ``corners[1]`` line of the truth, y across it (down in an
    upright image), in that face's corner distances. Averaged over faces, what remains is the
    systematic part of a model's error (where it puts a point elsewhere than the labels)."""
    line = truth[:, corners[1]] - truth[:, corners[0]]
    distance = np.linalg.norm(line, axis=-1)[:, None, None]
    along = line[:, None] / distance
    across = np.stack([-along[..., 1], along[..., 0]], axis=-1)
    error = predicted - truth
    return np.stack([(error * along).sum(-1), (error * across).sum(-1)], axis=-1) / distance


def shape_following(predicted: np.ndarray, truth: np.ndarray) -> float:
    """How far (F, N, 2) predicted faces follow their labels' own shapes rather than the mean
    shape. Each label is mapped by a similarity onto the labels' Procrustes mean (its centroid to
    0) and its prediction by the same map; the least-squares slope of the predictions' deviations
    from the mean on the labels' deviations, over all faces and points: 1 when the predictions
    follow every deviation, 0 when they always give the mean shape (placed like the label), below
    0.5 when they keep less than half of what makes each face differ; NaN for fewer than two faces
    (no deviation from their own mean)."""
    if len(truth) < 2:
        return float("nan")
    _, mean = procrustes_align(truth)
    centres = truth.mean(axis=1, keepdims=True)
    maps = np.stack([_similarity_matrix(face, mean) for face in truth - centres])  # (F, 2, 2)
    labelled = np.einsum("fij,fnj->fni", maps, truth - centres) - mean
    followed = np.einsum("fij,fnj->fni", maps, predicted - centres) - mean
    return float((followed * labelled).sum() / (labelled**2).sum())


def bias_share(errors: np.ndarray) -> float:
    """The share of the mean squared error of (F, N, 2) face-frame errors that their per-point mean
    (the systematic part) explains: 0 when every point's errors average out, 1 when every face
    errs alike."""
    return float((errors.mean(axis=0) ** 2).sum(-1).mean() / max((errors**2).sum(-1).mean(), 1e-12))
