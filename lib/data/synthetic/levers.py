"""The renderer's levers: what a photograph has and the plain renderer lacks, each switched on by
name (the dataset's ``levers``) and drawn from its own random stream.

    scene    a photo-like backdrop (a dead-leaves layout of flat and textured shapes at every
             scale, out of focus at times) and the shoulders and clothes below the face
    hair     hair beyond the head's outline (short or falling to the shoulders) and, at times, a
             fringe over the forehead that may cover the brows
    skin     skin detail: mottling at two scales, freckles and moles, and lines that come with
             age (forehead, nasolabial folds, crow's feet, under the eyes)
    camera   what the camera adds: a white-balance cast, vignetting, a face shadowed by a hard
             edge, a low-resolution image upscaled, sharpening halos
    crowd    other people: unlabelled faces beside a face, partly hidden behind it or cut by the
             frame, as in a crop of a group photograph

A lever changes pixels only: every face's landmarks, pose and expression are the same with and
without it, and the draws of the other streams are unchanged, so datasets that differ by one
lever hold the same faces (their trainings compare in pairs). Images are float32 RGB in [0, 1];
``scale`` is a face's pixels per head unit (the distance between the eye centres).
"""

from __future__ import annotations

import cv2
import numpy as np

from lib.data.synthetic.face_model import rotation

LEVERS = ("scene", "hair", "skin", "camera", "crowd")
_STREAM_BASE = 100  # lever streams follow the image's own (seed, split, index) key with 100 + the lever's position


def check_levers(names) -> tuple[str, ...]:
    """``names`` as a sorted tuple of known levers; ``ValueError`` naming an unknown one."""
    names = tuple(sorted(set(names)))
    unknown = [name for name in names if name not in LEVERS]
    if unknown:
        raise ValueError(f"unknown renderer lever(s) {unknown}: the levers are {list(LEVERS)}")
    return names


def lever_streams(names: tuple[str, ...], key: list[int]) -> dict[str, np.random.Generator]:
    """One random stream per switched-on lever, keyed by the image's own ``key`` (seed, split,
    index): a lever's draws never shift another stream's."""
    return {name: np.random.default_rng([*key, _STREAM_BASE + LEVERS.index(name)]) for name in names}


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Unit-variance noise with features about ``sigma`` pixels wide: (H, W) float32."""
    coarse = (max(2, int(shape[0] / sigma) + 1), max(2, int(shape[1] / sigma) + 1))
    noise = rng.standard_normal(coarse, dtype=np.float32)
    noise = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return noise / max(float(noise.std()), 1e-6)


def _project(points: np.ndarray, centre: np.ndarray, scale: float, rot: np.ndarray) -> np.ndarray:
    """Head-frame (N, 3) points to (N, 2) pixels."""
    return centre + scale * (points @ rot.T)[:, :2]


def _fill(image: np.ndarray, polygon: np.ndarray, colour: np.ndarray, texture: np.ndarray | None = None, softness: float = 0.0) -> None:
    """Paint the convex hull of ``polygon`` (N, 2 pixels) in place with ``colour`` (3,), times a
    (H, W) ``texture`` around 1, with an edge blurred over ``softness`` pixels. Only the hull's
    bounding box (plus the blur's reach) is touched."""
    height, width = image.shape[:2]
    reach = int(np.ceil(3 * softness)) + 2
    x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int) - reach, 0)
    x1, y1 = np.minimum(np.ceil(polygon.max(axis=0)).astype(int) + reach + 1, [width, height])
    if x0 >= x1 or y0 >= y1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round((polygon - [x0, y0]) * 16).astype(np.int32)), 1.0, cv2.LINE_AA, 4)
    if softness > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), softness)
    paint = colour.astype(np.float32)[None, None, :] * (texture[y0:y1, x0:x1, None] if texture is not None else 1.0)
    alpha = mask[..., None]
    region = image[y0:y1, x0:x1]
    region[:] = region * (1 - alpha) + np.clip(paint, 0, 1) * alpha


# -- scene ------------------------------------------------------------------------------------


def photo_backdrop(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dead-leaves backdrop (H, W, 3) float32: shapes whose sizes follow the 1/r^3 law of
    natural images, flat or shaded, drawn over a soft colour field from a few palette colours, with
    texture at two scales and, at times, a depth-of-field blur."""
    size = max(height, width)
    grey = rng.uniform(0.15, 0.85, (int(rng.integers(3, 7)), 1))
    palette = np.clip(grey + rng.uniform(0.15, 0.7) * (rng.random((len(grey), 3)) - 0.5), 0, 1)
    field = cv2.resize(palette[rng.integers(len(palette), size=(3, 3))].astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    canvas = np.clip(field, 0, 1)
    r_min, r_max = 0.015 * size, 0.7 * size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / size
    ramps = [
        1 + 0.35 * np.sin(2 * np.pi * (xs * np.cos(a) + ys * np.sin(a)) * f + phase) for a, f, phase in rng.uniform([0, 0.3, 0], [np.pi, 2.5, 6.3], (4, 3))
    ]
    count = int(rng.integers(30, 150))
    radii = (r_min**-2 - rng.random(count) * (r_min**-2 - r_max**-2)) ** -0.5
    for radius in radii:
        colour = np.clip(palette[rng.integers(len(palette))] * rng.uniform(0.6, 1.25) + rng.normal(0, 0.06, 3), 0, 1)
        centre = rng.uniform([-0.2 * width, -0.2 * height], [1.2 * width, 1.2 * height])
        kind = rng.integers(3)
        if kind == 0:
            box = cv2.boxPoints(
                ((float(centre[0]), float(centre[1])), (float(2 * radius), float(2 * radius * rng.uniform(0.1, 1))), float(rng.uniform(0, 180)))
            )
            polygon = box
        elif kind == 1:
            angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
            axes = radius * np.array([1.0, rng.uniform(0.3, 1.0)])
            turn = rng.uniform(0, np.pi)
            local = np.column_stack([axes[0] * np.cos(angles), axes[1] * np.sin(angles)])
            polygon = centre + local @ np.array([[np.cos(turn), np.sin(turn)], [-np.sin(turn), np.cos(turn)]])
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
            polygon = centre + radius * rng.uniform(0.5, 1.0, (len(angles), 1)) * np.column_stack([np.cos(angles), np.sin(angles)])
        _fill(canvas, polygon, colour, ramps[rng.integers(len(ramps))] if rng.random() < 0.3 else None)  # a third shaded across
    for sigma, amplitude in ((rng.uniform(1, 3), rng.uniform(0, 0.08)), (rng.uniform(8, 40), rng.uniform(0, 0.15))):
        canvas *= 1 + amplitude * smooth_noise(rng, (height, width), sigma)[..., None]
    if rng.random() < 0.5:
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.8, 4.0))
    return np.clip(canvas, 0, 1)


def draw_shoulders(image: np.ndarray, rng: np.random.Generator, centre: np.ndarray, scale: float) -> None:
    """Shoulders and clothes below the neck of a face placed at ``centre`` (the head origin's
    pixel), in place, before any face is drawn: a torso 4-5 eye distances wide, turned a little
    on its own, in a clothing colour with folds."""
    rot = rotation(float(rng.normal(0, 15)), 0.0, float(rng.normal(0, 8)))
    half = rng.uniform(2.0, 2.6)
    top = rng.uniform(2.2, 2.8)
    outline = np.array(
        [
            [-0.7, top - 0.3, -0.9],
            [0.7, top - 0.3, -0.9],
            [half, top + 0.9, -0.9],
            [half * 1.05, 8.0, -0.9],
            [-half * 1.05, 8.0, -0.9],
            [-half, top + 0.9, -0.9],
        ]
    )
    colour = rng.random(3) ** rng.uniform(0.7, 2.0)
    folds = 1 + rng.uniform(0.05, 0.2) * smooth_noise(rng, image.shape[:2], max(2.0, 0.3 * scale))
    _fill(image, _project(outline, centre, scale, rot), colour, folds, softness=0.6)


# -- hair -------------------------------------------------------------------------------------


def draw_hair_mass(
    image: np.ndarray, rng: np.random.Generator, centre: np.ndarray, scale: float, angles: tuple[float, float, float], colour: np.ndarray, bald: bool
) -> None:
    """Hair beyond the head's outline, in place, before the face is drawn (the head covers the
    inside): a shell 10-35 % larger than the skull over its top and sides, and with one chance in
    three long hair falling to the shoulders beside the neck."""
    if bald:
        return
    rot = rotation(*angles)
    grow = rng.uniform(1.1, 1.35, 3)
    theta = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    phi = np.linspace(-0.5 * np.pi, 0.15 * np.pi, 8)
    shell = [(0, -0.2, -1.0) + grow * (1.08 * np.cos(p) * np.cos(t), 1.75 * np.sin(p), 1.35 * np.cos(p) * np.sin(t)) for t in theta for p in phi]
    points = np.array(shell)
    if rng.random() < 1 / 3:
        length = rng.uniform(1.5, 3.2)
        width = rng.uniform(1.1, 1.45)
        points = np.vstack([points, [[x * width, length, z] for x in (-1, 1) for z in (-1.6, -0.6)]])
    streaks = 1 + rng.uniform(0.1, 0.25) * smooth_noise(rng, image.shape[:2], max(1.5, 0.08 * scale))
    _fill(image, _project(points, centre, scale, rot), colour * rng.uniform(0.85, 1.15), streaks, softness=max(0.5, 0.04 * scale))


def draw_fringe(image: np.ndarray, rng: np.random.Generator, landmarks68: np.ndarray, scale: float, colour: np.ndarray, bald: bool) -> None:
    """With one chance in three (not on a bald head or a face turned beyond 35 degrees, which
    the caller checks), a fringe over the forehead, in place, after the face: from well above the
    brows down to between a third of an eye distance above them and a tenth below (covering
    them), with a ragged edge."""
    if bald or rng.random() >= 1 / 3:
        return
    brows = landmarks68[17:27]
    eyes = landmarks68[36:48].mean(axis=0)
    up = brows.mean(axis=0) - eyes
    up /= max(np.linalg.norm(up), 1e-6)
    lift = rng.uniform(-0.1, 0.35)
    ends = brows[[0, -1]] + (brows[[0, -1]] - brows.mean(axis=0)) * 0.25
    edge = np.vstack([ends[0], brows, ends[1]]) + up * scale * (lift + rng.normal(0, 0.05, (12, 1)))
    top = edge + up * scale * 1.3
    fringe_colour = colour * rng.uniform(0.85, 1.15)
    streaks = 1 + rng.uniform(0.1, 0.25) * smooth_noise(rng, image.shape[:2], max(1.5, 0.06 * scale))
    for left, right in zip(range(11), range(1, 12), strict=True):  # the fringe's outline is concave: paint it piece by piece
        _fill(image, np.vstack([edge[[left, right]], top[[right, left]]]), fringe_colour, streaks, softness=max(0.4, 0.03 * scale))


# -- skin -------------------------------------------------------------------------------------


def skin_detail(texture: np.ndarray, points_xy: np.ndarray, tex_scale: float, to_tex, rng: np.random.Generator) -> np.ndarray:
    """Skin detail on a face's albedo texture (Ht, Wt, 3) uint8 (head-frame ``points_xy`` of
    the 68 landmarks; ``to_tex`` maps head-frame (N, 2) to cv2's fixed-point texture pixels):
    mottling at two scales, freckles and moles, and with age (uniform in [0, 1]) lines on the
    forehead, the nasolabial folds, crow's feet and under the eyes. Returns the new texture."""
    height, width = texture.shape[:2]
    tex = texture.astype(np.float32)
    mottling = rng.uniform(0.02, 0.07) * smooth_noise(rng, (height, width), 0.02 * tex_scale) + rng.uniform(0.02, 0.08) * smooth_noise(
        rng, (height, width), 0.3 * tex_scale
    )
    tint = np.array([1.0, 0.8, 0.8], np.float32) * rng.uniform(0.5, 1.0)
    tex *= 1 + mottling[..., None] * tint
    age = rng.random()
    lines = np.zeros((height, width), np.uint8)
    thick = max(1, int(round(0.012 * tex_scale)))
    aa = dict(lineType=cv2.LINE_AA, shift=4)
    if age > 0.35:
        for y in np.linspace(-1.15, -0.75, int(rng.integers(2, 5))):
            xs = np.linspace(-0.6, 0.6, 7)
            cv2.polylines(lines, [to_tex(np.column_stack([xs, y + 0.04 * np.cos(xs * 2.5) + rng.normal(0, 0.01, 7)]))], False, 255, thick, **aa)
    if age > 0.2:
        for wing, corner in ((31, 48), (35, 54)):
            start, end = points_xy[wing], points_xy[corner]
            bulge = np.sign(start[0]) * 0.1
            curve = np.array([start + (end - start) * s + [bulge * np.sin(np.pi * s) + np.sign(start[0]) * 0.06, 0] for s in np.linspace(0, 1.1, 6)])
            cv2.polylines(lines, [to_tex(curve)], False, 255, thick + 1, **aa)
    if age > 0.5:
        for outer, side in ((36, -1), (45, 1)):
            for turn in (-0.3, 0.0, 0.3):
                start = points_xy[outer] + [side * 0.05, 0]
                cv2.polylines(lines, [to_tex(np.vstack([start, start + [side * 0.15, turn * 0.15]]))], False, 255, thick, **aa)
        for eye in (points_xy[36:42], points_xy[42:48]):
            lower = eye[[3, 4, 5, 0]] + [0, 0.1]
            cv2.polylines(lines, [to_tex(lower)], False, 255, thick, **aa)
    depth = cv2.GaussianBlur(lines.astype(np.float32) / 255, (0, 0), max(0.5, 0.006 * tex_scale)) * age * rng.uniform(0.15, 0.35)
    tex *= (1 - depth)[..., None]
    for _ in range(int(rng.poisson(rng.choice([2, 25])))):
        spot = np.array([rng.uniform(-0.9, 0.9), rng.uniform(-0.9, 1.2)])
        radius = int(rng.uniform(0.006, 0.02) * tex_scale * 16) + 1
        centre = tuple(int(v) for v in to_tex(spot[None])[0])
        colour = tuple(float(c) for c in np.array([0.55, 0.4, 0.33]) * tex[min(height - 1, centre[1] >> 4), min(width - 1, centre[0] >> 4)])
        cv2.circle(tex, centre, radius, colour, -1, **aa)
    return np.clip(tex, 0, 255).astype(np.uint8)


# -- camera -----------------------------------------------------------------------------------


def cast_shadow(image: np.ndarray, rng: np.random.Generator, centre: np.ndarray, scale: float) -> None:
    """With one chance in four, a hard-edged shadow over part of a face, in place: one side of a
    line passing within an eye distance of the face's centre darkened to 35-75 %."""
    if rng.random() >= 0.25:
        return
    height, width = image.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)], np.float32)
    through = centre + rng.normal(0, 0.5 * scale, 2)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = (xs - through[0]) * normal[0] + (ys - through[1]) * normal[1]
    softness = max(0.5, rng.uniform(0.02, 0.3) * scale)
    share = 1 / (1 + np.exp(-np.clip(distance / softness, -30, 30)))
    image *= (1 - (1 - rng.uniform(0.35, 0.75)) * share)[..., None]


def camera(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera's marks on a finished image (H, W, 3) float32: a white-balance cast (each
    channel's gain log-normal, sigma 0.12), vignetting (half the images), upscaled from 1.5-4x
    fewer pixels (three in ten), and sharpening halos (a quarter)."""
    height, width = image.shape[:2]
    image = image * np.exp(rng.normal(0, 0.12, 3)).astype(np.float32)
    if rng.random() < 0.5:
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        radius = np.hypot((xs - width / 2) / width, (ys - height / 2) / height) * 2
        image *= (1 - rng.uniform(0.1, 0.45) * radius**2)[..., None]
    if rng.random() < 0.3:
        factor = rng.uniform(1.5, 4.0)
        small = cv2.resize(image, (max(8, int(width / factor)), max(8, int(height / factor))), interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC)
    if rng.random() < 0.25:
        blurred = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.8, 2.0))
        image = image + rng.uniform(0.3, 1.0) * (image - blurred)
    return np.clip(image, 0, 1)
