"""Shape statistics: generalised Procrustes alignment, PCA of aligned shapes, outliers, and the
mean-shape baseline that any trained model must beat by far.

Shapes are (F, N, 2) pixel coordinates.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA


def _similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation+scale+translation of centred (N, 2) ``source`` that best matches centred
    ``target`` (least squares, no reflection); returns the mapped source."""
    a = source[:, 0] @ target[:, 0] + source[:, 1] @ target[:, 1]
    b = source[:, 0] @ target[:, 1] - source[:, 1] @ target[:, 0]
    norm = (source**2).sum()
    scale_cos, scale_sin = a / norm, b / norm
    return np.column_stack([scale_cos * source[:, 0] - scale_sin * source[:, 1], scale_sin * source[:, 0] + scale_cos * source[:, 1]])


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
