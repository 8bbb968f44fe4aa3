"""Rendering of synthetic faces: a textured, lit, ray-cast head with its landmarks projected
exactly; backgrounds, occluders and image degradations.

Images are float32 RGB in [0, 1] while rendering. Landmarks are 0-based pixel coordinates
(the centre of the top-left pixel is (0, 0)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from lib.data.synthetic.face_model import Expression, cast_rays, deform, head_quadrics, landmarks_3d, quadric_corners, rotation
from lib.data.synthetic.levers import skin_detail, smooth_noise

TEX_X = (-1.3, 1.3)
TEX_Y = (-2.2, 2.2)
SUBPIXEL_BITS = 4


@dataclass
class Appearance:
    """Colours (RGB in [0, 1]) and styling of one face."""

    skin: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    hairline: tuple[float, float] = (-1.0, 0.2)
    hair_side: float = 0.3
    bald: bool = False
    make_up: bool = False
    beard: float = 0.0
    gaze: np.ndarray = field(default_factory=lambda: np.zeros(2))
    brow_thickness: float = 0.12  # head units, at the brow's head
    brow_density: float = 0.85  # opacity of the brow hair


@dataclass
class Light:
    """A directional light (camera frame, towards the light) with an ambient share and tint."""

    direction: np.ndarray
    ambient: float
    tint: np.ndarray
    specular: float


@dataclass
class FaceSpec:
    """Everything that places and styles one face. ``scale`` is pixels per head unit (the
    frontal distance between the eye centres); ``centre`` is the pixel of the head origin."""

    identity: dict
    expression: Expression
    yaw: float
    pitch: float
    roll: float
    scale: float
    centre: np.ndarray
    appearance: Appearance


def _tex(points_xy: np.ndarray, tex_scale: float) -> np.ndarray:
    """Head-frame (x, y) to fixed-point texture pixel coordinates for cv2 drawing."""
    pixels = (points_xy - [TEX_X[0], TEX_Y[0]]) * tex_scale
    return np.round(pixels * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _draw_brows(tex: np.ndarray, points: np.ndarray, look: Appearance, tex_scale: float, rng: np.random.Generator) -> np.ndarray:
    """Both brows on the (Ht, Wt, 3) uint8 texture: hair hanging below the brow points (300-W's
    brow points trace the upper edge), ``look.brow_thickness`` deep at the head, 0.4 of that at
    the tail, soft-edged and streaked, ``look.brow_density`` opaque. Returns the new texture."""
    mask = np.zeros(tex.shape[:2], np.uint8)
    depth = np.linspace(0.4, 1.0, 5)[:, None] * [0.0, look.brow_thickness]
    for brow in (points[17:22], points[22:27][::-1]):  # each from its tail to its head
        cv2.fillPoly(mask, [_tex(np.vstack([brow, (brow + depth)[::-1]]), tex_scale)], 255, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 0.012 * tex_scale)
    streaks = np.clip(0.8 + 0.2 * smooth_noise(rng, mask.shape, 0.01 * tex_scale), 0, 1)
    alpha = (look.brow_density * alpha * streaks)[..., None]
    return (tex * (1 - alpha) + np.clip(look.hair * 255 * 0.8, 0, 255) * alpha).astype(np.uint8)


def _texture(
    points: np.ndarray, expression: Expression, look: Appearance, tex_scale: float, rng: np.random.Generator, skin_rng: np.random.Generator | None
) -> np.ndarray:
    """Albedo texture (Ht, Wt, 3) float32 of the face over the head-frame (x, y) plane; with
    ``skin_rng`` (the ``skin`` lever's stream) the skin gets its detail."""
    width = int((TEX_X[1] - TEX_X[0]) * tex_scale)
    height = int((TEX_Y[1] - TEX_Y[0]) * tex_scale)
    skin = np.clip(look.skin * 255, 0, 255)
    noise = smooth_noise(rng, (height, width), tex_scale * 0.08)
    tex = skin.astype(np.float32)[None, None, :] * (1.0 + 0.04 * noise[..., None])
    xs = (np.arange(width, dtype=np.float32) / tex_scale + TEX_X[0])[None, :]
    ys = (np.arange(height, dtype=np.float32) / tex_scale + TEX_Y[0])[:, None]
    blush = (0.12 * np.exp(-((np.abs(xs) - 0.6) ** 2 + (ys - 0.6) ** 2) / 0.06))[..., None]
    tex = tex * (1 - blush) + np.array([200, 60, 60], np.float32) * blush
    if look.beard > 0:
        region = np.clip((ys - 0.85) * 4, 0, 1) * (np.abs(xs) < 0.95)
        stubble = np.clip(0.6 + 0.4 * rng.standard_normal((height, width), dtype=np.float32), 0, 1)
        tex *= 1 - look.beard * 0.55 * (region * stubble)[..., None]
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    if skin_rng is not None:
        tex = skin_detail(tex, points, tex_scale, lambda xy: _tex(xy, tex_scale), skin_rng)
    aa = dict(lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    tex = _draw_brows(tex, points, look, tex_scale, rng)
    lid = max(1, int(round(0.03 * tex_scale)))
    for eye in (points[36:42], points[42:48]):
        if look.make_up:
            shadow = eye[[0, 1, 2, 3]] - [0, 0.07]
            layer = tex.copy()
            cv2.fillPoly(layer, [_tex(np.vstack([eye[[3, 2, 1, 0]], shadow]), tex_scale)], (90, 50, 110), **aa)
            tex = cv2.addWeighted(tex, 0.55, layer, 0.45, 0)
        eye_mask = np.zeros(tex.shape[:2], np.uint8)
        cv2.fillPoly(eye_mask, [_tex(eye, tex_scale)], 255, **aa)
        iris_layer = np.full_like(tex, 235)
        centre = eye.mean(axis=0) + look.gaze * 0.08
        radius = 0.105 * (eye[3, 0] - eye[0, 0]) / 0.44 * tex_scale
        centre_px = tuple(int(v) for v in _tex(centre[None], tex_scale)[0])
        cv2.circle(iris_layer, centre_px, int(radius * (1 << SUBPIXEL_BITS)), tuple(float(c) for c in look.iris * 255), -1, **aa)
        cv2.circle(iris_layer, centre_px, int(radius * 0.45 * (1 << SUBPIXEL_BITS)), (15, 12, 12), -1, **aa)
        alpha = eye_mask[..., None].astype(np.float32) / 255
        tex = (tex * (1 - alpha) + iris_layer * alpha).astype(np.uint8)
        lid_colour = (35, 25, 25) if not look.make_up else (10, 5, 10)
        cv2.polylines(tex, [_tex(eye[[0, 1, 2, 3]], tex_scale)], False, lid_colour, lid + int(look.make_up), **aa)
        cv2.polylines(tex, [_tex(eye[[3, 4, 5, 0]], tex_scale)], False, (110, 80, 75), max(1, lid // 2), **aa)
    for nostril_x in (-0.1, 0.1):
        base = points[33] + [nostril_x * abs(points[35, 0] - points[31, 0]) / 0.44, -0.025]
        axes = (int(0.05 * tex_scale * 16), int(0.025 * tex_scale * 16))
        cv2.ellipse(tex, tuple(int(v) for v in _tex(base[None], tex_scale)[0]), axes, 0, 0, 360, (60, 35, 35), -1, **aa)
    lip_colour = tuple(float(c) for c in np.clip(look.lips * 255, 0, 255))
    cv2.fillPoly(tex, [_tex(points[48:60], tex_scale)], lip_colour, **aa)
    inner = points[60:68]
    if expression.mouth_open > 0.12:
        cv2.fillPoly(tex, [_tex(inner, tex_scale)], (45, 15, 20), **aa)
        if expression.mouth_open > 0.25:
            mouth_mask = np.zeros(tex.shape[:2], np.uint8)
            cv2.fillPoly(mouth_mask, [_tex(inner, tex_scale)], 255, **aa)
            teeth = np.zeros_like(mouth_mask)
            upper = inner[[0, 1, 2, 3, 4]]
            cv2.fillPoly(teeth, [_tex(np.vstack([upper, (upper + [0, 0.07])[::-1]]), tex_scale)], 255, **aa)
            alpha = (np.minimum(mouth_mask, teeth).astype(np.float32) / 255)[..., None]
            tex = (tex * (1 - alpha) + np.array([230, 225, 210]) * alpha).astype(np.uint8)
    else:
        cv2.polylines(tex, [_tex(inner[[0, 1, 2, 3, 4]], tex_scale)], False, (70, 25, 30), lid, **aa)
    return tex.astype(np.float32) / 255.0


def _screen_box(corners: np.ndarray, spec: FaceSpec, rot: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Pixel box ``x0, y0, x1, y1`` (exclusive ends) covering head-frame ``corners``, or None."""
    pixels = spec.centre + spec.scale * (corners @ rot.T)[:, :2]
    x0, y0 = np.floor(pixels.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(pixels.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
    return None if x0 >= x1 or y0 >= y1 else (x0, y0, x1, y1)


def _cast_surface(quadrics: list, spec: FaceSpec, rot: np.ndarray, box: tuple[int, int, int, int], stride: int) -> tuple[np.ndarray, ...]:
    """Ray-cast the head on every ``stride``-th pixel of ``box`` and interpolate to full resolution.

    Returns, for the (h, w) pixels of the box: coverage (h, w) float32 in [0, 1], head-frame
    surface points (h, w, 3), camera-frame normals (h, w, 3; unit length at ray-cast pixels,
    interpolated between them) and quadric index (h, w) (-1 where missed).
    """
    x0, y0, x1, y1 = box
    vs, us = np.mgrid[y0:y1:stride, x0:x1:stride]
    flat = np.arange(us.size).reshape(us.shape)
    candidates = []
    for quad in quadrics:
        sub = _screen_box(quadric_corners(quad), spec, rot, (y1, x1))
        if sub is None:
            candidates.append(np.empty(0, int))
            continue
        i0, i1 = -(-max(sub[1] - y0, 0) // stride), -(-(sub[3] - y0) // stride)
        j0, j1 = -(-max(sub[0] - x0, 0) // stride), -(-(sub[2] - x0) // stride)
        candidates.append(flat[max(i0 - 1, 0) : i1, max(j0 - 1, 0) : j1].ravel())
    cam = np.column_stack([(us.ravel() - spec.centre[0]) / spec.scale, (vs.ravel() - spec.centre[1]) / spec.scale, np.full(us.size, -10.0)])
    origins = (cam @ rot).astype(np.float32)  # camera to head frame: R^T applied to row vectors
    direction = rot[2].astype(np.float32)
    t, part_index, normals = cast_rays(quadrics, origins, direction, candidates)
    hit = part_index >= 0
    surface = origins + np.nan_to_num(t)[:, None] * direction
    fields = np.concatenate([hit[:, None], surface * hit[:, None], normals @ rot.T.astype(np.float32)], axis=1).reshape(*us.shape, 7).astype(np.float32)
    if stride > 1:
        weight = cv2.GaussianBlur(fields[..., 0], (3, 3), 0)
        filled = cv2.GaussianBlur(fields[..., 1:], (3, 3), 0) / np.maximum(weight, 1e-6)[..., None]
        fields[..., 1:] = np.where(hit.reshape(us.shape)[..., None], fields[..., 1:], filled)
    full_v, full_u = np.mgrid[0 : y1 - y0, 0 : x1 - x0].astype(np.float32) / stride
    first = cv2.remap(fields[..., 0:4], full_u, full_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    second = cv2.remap(fields[..., 4:7], full_u, full_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    index = cv2.remap(part_index.reshape(us.shape).astype(np.float32), full_u, full_v, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return first[..., 0], first[..., 1:4], second, index.astype(int)


def render_face(image: np.ndarray, spec: FaceSpec, light: Light, rng: np.random.Generator, skin_rng: np.random.Generator | None = None) -> np.ndarray:
    """Draw one face into ``image`` (H, W, 3) float32 in place (``skin_rng``: the ``skin``
    lever's stream, :mod:`lib.data.synthetic.levers`).

    The head geometry is ray-cast at every second pixel for faces wider than 40 pixels per eye
    distance (interpolated; the texture stays at full resolution). Returns the (68, 2) projected
    landmarks in pixels.
    """
    look = spec.appearance
    points_xy = deform(spec.identity, spec.expression)
    quadrics = head_quadrics(spec.identity, spec.expression)
    rot = rotation(spec.yaw, spec.pitch, spec.roll)
    landmarks = spec.centre + spec.scale * (landmarks_3d(points_xy, quadrics) @ rot.T)[:, :2]
    box = _screen_box(np.vstack([quadric_corners(q) for q in quadrics]), spec, rot, image.shape[:2])
    if box is None:
        return landmarks
    x0, y0, x1, y1 = box
    mask, surface, normals, part_index = _cast_surface(quadrics, spec, rot, box, 2 if spec.scale > 40 else 1)
    hit = mask > 0.01
    if not hit.any():
        return landmarks
    surface, normals = surface[hit], normals[hit]
    normals /= np.maximum(np.sqrt(np.einsum("ij,ij->i", normals, normals)), 1e-6)[:, None]
    part_codes = part_index[hit]
    names = [q.part for q in quadrics]

    def is_part(name: str) -> np.ndarray:
        return np.isin(part_codes, [i for i, n in enumerate(names) if n == name])

    tex_scale = float(np.clip(spec.scale, 24, 100))
    texture = _texture(points_xy, spec.expression, look, tex_scale, rng, skin_rng)
    map_x = ((surface[:, 0] - TEX_X[0]) * tex_scale).astype(np.float32)
    map_y = ((surface[:, 1] - TEX_Y[0]) * tex_scale).astype(np.float32)
    rows = -(-len(map_x) // 1024)
    pad = rows * 1024 - len(map_x)
    albedo = cv2.remap(
        texture, np.pad(map_x, (0, pad)).reshape(rows, 1024), np.pad(map_y, (0, pad)).reshape(rows, 1024), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    albedo = albedo.reshape(-1, 3)[: len(map_x)]
    neck = is_part("neck")
    albedo[is_part("ear")] = look.skin * 0.92
    albedo[neck] = look.skin * 0.85
    if not look.bald:
        x, y, z = surface.T
        hairline = look.hairline[0] + look.hairline[1] * x**2
        hair = is_part("head") & ((y < hairline) | ((z < -0.55) & (y < look.hair_side)))
        streaks = 0.85 + 0.3 * rng.random(hair.sum(), dtype=np.float32)
        albedo[hair] = look.hair * streaks[:, None]
    cosine = normals @ light.direction.astype(np.float32)
    reflect_z = 2 * cosine * normals[:, 2] - light.direction[2]
    specular = light.specular * np.clip(reflect_z, 0, None) ** 12 * ~neck
    shade = light.ambient + (1 - light.ambient) * np.clip(cosine, 0, None)
    colour = albedo * shade[:, None] * light.tint.astype(np.float32) + specular[:, None]
    region = image[y0:y1, x0:x1]
    patch = region.copy()
    patch[hit] = colour
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.5)[..., None]
    region[:] = region * (1 - alpha) + patch * alpha
    return landmarks


def render_background(rng: np.random.Generator, height: int, width: int, clutter: int) -> np.ndarray:
    """A gradient with ``clutter`` random shapes and some texture: (H, W, 3) float32."""
    corners = rng.integers(0, 256, (2, 2, 3)).astype(np.uint8)
    canvas = cv2.resize(corners, (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(clutter):
        colour = tuple(float(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(4)
        p = rng.integers([0, 0], [width, height], size=(4, 2))
        if kind == 0:
            cv2.rectangle(canvas, tuple(map(int, p[0])), tuple(map(int, p[1])), colour, -1)
        elif kind == 1:
            cv2.circle(canvas, tuple(map(int, p[0])), int(rng.integers(4, max(5, width // 4))), colour, -1, cv2.LINE_AA)
        elif kind == 2:
            cv2.line(canvas, tuple(map(int, p[0])), tuple(map(int, p[1])), colour, int(rng.integers(1, 8)), cv2.LINE_AA)
        else:
            cv2.fillPoly(canvas, [p.astype(np.int32)], colour, cv2.LINE_AA)
    image = canvas.astype(np.float32) * (1 / 255)
    image *= 1 + 0.08 * smooth_noise(rng, (height, width), rng.uniform(1, 6))[..., None]
    return np.clip(image, 0, 1, out=image)


OCCLUDERS = ("hand", "glasses", "mask", "object")


def draw_occluder(image: np.ndarray, kind: str, landmarks68: np.ndarray, scale: float, rng: np.random.Generator, skin: np.ndarray) -> np.ndarray:
    """Draw an occluder over a face in place; returns its mask (H, W) bool."""
    canvas = np.zeros(image.shape[:2], np.uint8)
    aa = dict(lineType=cv2.LINE_AA)
    if kind == "glasses":
        for eye in (landmarks68[36:42], landmarks68[42:48]):
            centre = tuple(int(v) for v in eye.mean(axis=0))
            cv2.ellipse(canvas, centre, (int(0.3 * scale), int(0.2 * scale)), float(rng.uniform(-10, 10)), 0, 360, 255, -1, **aa)
        bridge = landmarks68[[39, 42]].astype(np.int32)
        cv2.line(canvas, tuple(map(int, bridge[0])), tuple(map(int, bridge[1])), 255, max(1, int(0.05 * scale)), **aa)
        colour = rng.uniform(0.0, 0.25, 3)
    elif kind == "mask":
        top = landmarks68[[1, 28, 15]]
        bottom = landmarks68[[15, 12, 8, 4, 1]] + [0, 0.1 * scale]
        cv2.fillPoly(canvas, [np.vstack([top, bottom]).astype(np.int32)], 255, **aa)
        colour = rng.choice([np.array([0.85, 0.9, 0.95]), np.array([0.3, 0.5, 0.8]), rng.random(3)])
    else:
        target = landmarks68[rng.integers(17, 68)]
        size = scale * rng.uniform(0.35, 0.8)
        offset = rng.normal(0, 0.4 * scale, 2)
        centre = target + offset
        if kind == "hand":
            cv2.ellipse(canvas, tuple(int(v) for v in centre), (int(size), int(size * 0.6)), float(rng.uniform(0, 180)), 0, 360, 255, -1, **aa)
            colour = skin * rng.uniform(0.85, 1.1)
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, 6))
            polygon = centre + size * np.column_stack([np.cos(angles), np.sin(angles)]) * rng.uniform(0.5, 1.2, (6, 1))
            cv2.fillPoly(canvas, [polygon.astype(np.int32)], 255, **aa)
            colour = rng.random(3)
    alpha = canvas.astype(np.float32)[..., None] / 255
    ys = np.linspace(0.85, 1.1, image.shape[0], dtype=np.float32)[:, None, None]
    image[:] = image * (1 - alpha) + np.clip(colour * ys, 0, 1) * alpha
    return canvas > 127


def degrade(
    image: np.ndarray, rng: np.random.Generator, brightness: float, gamma: float, blur_sigma: float, motion_length: int, noise_sigma: float
) -> np.ndarray:
    """Global illumination, blur (Gaussian or motion) and sensor noise."""
    levels = np.linspace(0, 1, 1024, dtype=np.float32)
    curve = np.clip(levels * brightness, 0, 1) ** gamma
    image = curve[(np.clip(image, 0, 1) * 1023 + 0.5).astype(np.int32)]
    if blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
    if motion_length > 1:
        kernel = np.zeros((motion_length, motion_length), np.float32)
        kernel[motion_length // 2] = 1.0 / motion_length
        rot = cv2.getRotationMatrix2D(((motion_length - 1) / 2, (motion_length - 1) / 2), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (motion_length, motion_length))
        image = cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))
    if noise_sigma > 0:
        image = image + np.float32(noise_sigma) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image, 0, 1)


def jpeg_roundtrip(image_u8: np.ndarray, quality: int) -> bytes:
    """Encode an RGB uint8 image as JPEG bytes at ``quality``."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()
