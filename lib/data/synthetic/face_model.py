"""A parametric 3D face: the iBUG-68 landmark template, identity and expression deformations,
and the head as a union of quadrics (head, jaw, nose, lips, ears, neck) for ray casting.

Head frame: x towards the image's right for a frontal face, y down, z towards the camera;
unit = the distance between the eye centres. The origin is the midpoint of the eye centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (x, y) of the 68 iBUG landmarks on a neutral average face (head-frame units), in 300-W's
# definitions: the brow points trace the brow's upper edge from its tail (beside the temple, level
# with the upper lid) to its head; the bridge starts between the eyes, a little above their
# centres; the inner eye corners sit lower than the outer ones. Brows, nose, eyes and mouth follow
# the mean of near-frontal 300-W labels (rounded to 0.01; the mouth raised as a neutral one, the
# sampled smiles and open mouths bring the synthetic mean to the real one): the renderer's label
# semantics, checked by notebook 06's label overlay (README, Real faces).
_BROWS_RIGHT = [(-0.94, -0.19), (-0.80, -0.32), (-0.59, -0.36), (-0.38, -0.33), (-0.18, -0.26)]
_NOSE = [(0.0, -0.03), (0.0, 0.16), (0.0, 0.35), (0.0, 0.54), (-0.23, 0.67), (-0.12, 0.70), (0.0, 0.73), (0.12, 0.70), (0.23, 0.67)]
_EYE_RIGHT = [(-0.70, 0.0), (-0.57, -0.07), (-0.42, -0.06), (-0.30, 0.03), (-0.43, 0.05), (-0.58, 0.05)]
_OUTER_LIP = [
    (-0.42, 1.05),
    (-0.27, 0.96),
    (-0.10, 0.91),
    (0.0, 0.93),
    (0.10, 0.91),
    (0.27, 0.96),
    (0.42, 1.05),
    (0.27, 1.15),
    (0.12, 1.2),
    (0.0, 1.21),
    (-0.12, 1.2),
    (-0.27, 1.15),
]
_INNER_LIP = [(-0.36, 1.05), (-0.12, 1.03), (0.0, 1.035), (0.12, 1.03), (0.36, 1.05), (0.12, 1.07), (0.0, 1.075), (-0.12, 1.07)]


def _jaw() -> list[tuple[float, float]]:
    angles = np.linspace(0.0, np.pi, 17)
    return [(-1.0 * np.cos(a) * (1 - 0.2 * np.sin(a)), 0.05 + 1.8 * np.sin(a)) for a in angles]


def _mirror(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(-x, y) for x, y in points]


def template_2d() -> np.ndarray:
    """(68, 2) neutral landmark (x, y) in head-frame units, iBUG order."""
    brows_left = _mirror(_BROWS_RIGHT)[::-1]
    eye_left = _mirror(_EYE_RIGHT)
    eye_left = [eye_left[3], eye_left[2], eye_left[1], eye_left[0], eye_left[5], eye_left[4]]
    points = _jaw() + _BROWS_RIGHT + brows_left + _NOSE + _EYE_RIGHT + eye_left + _OUTER_LIP + _INNER_LIP
    return np.array(points, dtype=np.float64)


@dataclass
class Quadric:
    """An ellipsoid ``|(h - centre) / axes| = 1`` (an infinite axis makes a cylinder) clipped to
    ``y_range`` in the head frame; ``part`` names what it renders as."""

    centre: np.ndarray
    axes: np.ndarray
    part: str
    y_range: tuple[float, float] = (-np.inf, np.inf)


@dataclass
class Expression:
    mouth_open: float = 0.0
    smile: float = 0.0
    eye_closure_right: float = 0.0
    eye_closure_left: float = 0.0
    brow_raise: float = 0.0


def _indices(start: int, stop: int) -> np.ndarray:
    return np.arange(start, stop)


def sample_identity(rng: np.random.Generator) -> dict:
    """Random identity parameters (scales near 1, offsets near 0)."""
    return {
        "face_width": rng.normal(1.0, 0.05),
        "face_height": rng.normal(1.0, 0.05),
        "eye_spacing": rng.normal(1.0, 0.04),
        "eye_size": rng.normal(1.0, 0.12),
        "nose_length": rng.normal(1.0, 0.08),
        "nose_width": rng.normal(1.0, 0.12),
        "nose_depth": rng.normal(1.0, 0.15),
        "mouth_width": rng.normal(1.0, 0.09),
        "mouth_height": rng.normal(0.0, 0.05),
        "brow_height": rng.normal(0.0, 0.04),
        "jitter": rng.normal(0.0, 0.012, size=(68, 2)),
    }


def deform(identity: dict, expression: Expression) -> np.ndarray:
    """(68, 2) landmark (x, y) for an identity and an expression."""
    p = template_2d()
    eyes = np.r_[_indices(36, 48)]
    for side in (_indices(36, 42), _indices(42, 48)):
        centre = p[side].mean(axis=0)
        p[side] = centre * [identity["eye_spacing"], 1] + (p[side] - centre) * identity["eye_size"]
    nose = _indices(27, 36)
    p[nose, 1] *= identity["nose_length"]
    p[_indices(31, 36), 0] *= identity["nose_width"]
    mouth = _indices(48, 68)
    p[mouth, 0] *= identity["mouth_width"]
    p[mouth, 1] += identity["mouth_height"]
    brows = _indices(17, 27)
    p[brows, 1] += identity["brow_height"] - 0.08 * expression.brow_raise
    # Expression.
    opening = 0.45 * expression.mouth_open
    lower_lip = np.r_[_indices(55, 60), _indices(65, 68)]
    p[lower_lip, 1] += opening * (1.0 - 0.6 * np.abs(p[lower_lip, 0]) / 0.45)
    chin = _indices(3, 14)
    p[chin, 1] += opening * np.sin(np.linspace(0.2, np.pi - 0.2, len(chin)))
    corners = np.array([48, 54, 60, 64])
    p[corners, 0] += 0.06 * expression.smile * np.sign(p[corners, 0])
    p[corners, 1] -= 0.08 * expression.smile
    p[[49, 53, 55, 59], 1] -= 0.035 * expression.smile
    for closure, upper, lower in ((expression.eye_closure_right, [37, 38], [41, 40]), (expression.eye_closure_left, [43, 44], [47, 46])):
        p[upper, 1] += closure * (p[lower, 1] - p[upper, 1] - 0.01)
    p[eyes] += identity["jitter"][eyes] * 0.5
    others = np.setdiff1d(np.arange(68), eyes)
    p[others] += identity["jitter"][others]
    return p * [identity["face_width"], identity["face_height"]]


def head_quadrics(identity: dict, expression: Expression) -> list[Quadric]:
    """The head as quadrics in the head frame, matched to the identity's proportions, as deep as a
    face: the nose tip about 0.4 eye distances ahead of the inner eye corners (``nose_depth``
    scales its protrusion), the upper lip about 0.3, so a turned head moves nose and mouth as a
    real one does."""
    w, h = identity["face_width"], identity["face_height"]
    drop = 0.45 * expression.mouth_open * 0.6
    nose_len, depth = identity["nose_length"], identity["nose_depth"]

    def q(centre, axes, part, y_range=(-np.inf, np.inf)):
        return Quadric(np.array(centre, float) * [w, h, 1], np.array(axes, float) * [w, h, 1], part, y_range)

    return [
        q((0, -0.2, -1.0), (1.08, 1.75, 1.35), "head"),
        q((0, 1.0 + drop / 2, -0.4), (0.85, 0.95 + drop / 2, 0.95), "jaw"),
        q((0, 0.36 * nose_len, 0.12 + 0.18 * depth), (0.12 * identity["nose_width"], 0.46 * nose_len, 0.3), "nose"),
        q((0, 0.57 * nose_len, 0.18 + 0.3 * depth), (0.15 * identity["nose_width"], 0.13, 0.22), "nose"),
        q((-0.15 * identity["nose_width"], 0.66 * nose_len, 0.1 + 0.14 * depth), (0.11, 0.09, 0.15), "nose"),
        q((0.15 * identity["nose_width"], 0.66 * nose_len, 0.1 + 0.14 * depth), (0.11, 0.09, 0.15), "nose"),
        q((0, 1.03 + identity["mouth_height"] + drop / 2, 0.45), (0.42 * identity["mouth_width"], 0.16 + drop / 2, 0.18), "lips"),
        q((-1.03, 0.25, -0.95), (0.16, 0.42, 0.3), "ear"),
        q((1.03, 0.25, -0.95), (0.16, 0.42, 0.3), "ear"),
        q((0, 0.0, -0.95), (0.68, np.inf, 0.72), "neck", (1.2, 3.4)),
    ]


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) head-to-camera rotation from angles in degrees: yaw turns the nose towards the
    image's right, pitch raises the chin, roll turns the face clockwise in the image."""
    y, p, r = np.deg2rad([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _inverse_axes(axes: np.ndarray, power: int) -> np.ndarray:
    """1 / axes**power, with 0 for an infinite axis (a cylinder along it)."""
    finite = np.isfinite(axes)
    return np.where(finite, 1.0 / np.where(finite, axes, 1.0) ** power, 0.0)


def cast_rays(
    quadrics: list[Quadric], origins: np.ndarray, direction: np.ndarray, candidates: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Front-most hit of rays ``origins + t * direction`` (head frame, t increasing towards the
    camera) on the union of quadrics.

    Args: origins (P, 3); direction (3,); candidates: per quadric, the indices of the rays that
    can reach it (all rays if None). Returns t (P,) (NaN where missed), the index of the hit
    quadric (P,) (-1 where missed) and the unit normal (P, 3) in the head frame.
    """
    best_t = np.full(len(origins), -np.inf, dtype=origins.dtype)
    best_index = np.full(len(origins), -1)
    for index, quad in enumerate(quadrics):
        rays = np.arange(len(origins)) if candidates is None else candidates[index]
        scale = _inverse_axes(quad.axes, 1).astype(origins.dtype)
        u = (origins[rays] - quad.centre.astype(origins.dtype)) * scale
        v = direction.astype(origins.dtype) * scale
        a = v @ v
        b = u @ v
        c = np.einsum("ij,ij->i", u, u) - 1.0
        disc = b * b - a * c
        t = (-b + np.sqrt(np.maximum(disc, 0))) / a
        y = origins[rays, 1] + t * direction[1]
        t = np.where((disc >= 0) & (y >= quad.y_range[0]) & (y <= quad.y_range[1]), t, -np.inf)
        better = t > best_t[rays]
        best_t[rays[better]] = t[better]
        best_index[rays[better]] = index
    hit = best_index >= 0
    centres = np.array([q.centre for q in quadrics])[best_index[hit]]
    inverse_sq = np.array([_inverse_axes(q.axes, 2) for q in quadrics])[best_index[hit]]
    gradient = (origins[hit] + best_t[hit, None] * direction - centres) * inverse_sq
    gradient /= np.maximum(np.sqrt(np.einsum("ij,ij->i", gradient, gradient)), 1e-12)[:, None]
    normals = np.zeros(origins.shape, dtype=origins.dtype)
    normals[hit] = gradient
    best_t[~hit] = np.nan
    return best_t, best_index, normals


def quadric_corners(quad: Quadric) -> np.ndarray:
    """(8, 3) corners of the quadric's bounding box in the head frame."""
    half = np.where(np.isfinite(quad.axes), quad.axes, 0.0)
    low, high = quad.centre - half, quad.centre + half
    if not np.isfinite(quad.axes[1]):
        low[1], high[1] = quad.y_range
    return np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])


def landmarks_3d(landmarks_xy: np.ndarray, quadrics: list[Quadric]) -> np.ndarray:
    """Lift (N, 2) landmark (x, y) onto the front-most head surface: (N, 3)."""
    origins = np.column_stack([landmarks_xy, np.full(len(landmarks_xy), -10.0)])
    t, _, _ = cast_rays(quadrics, origins, np.array([0.0, 0.0, 1.0]))
    return np.column_stack([landmarks_xy, -10.0 + np.nan_to_num(t, nan=10.0)])
