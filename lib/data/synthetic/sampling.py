"""Random conditions of a synthetic face and the WFLW-style flags derived from them.

``difficulty`` scales the spread of the hard conditions (pose, harsh light, blur, occlusion)."""

from __future__ import annotations

import numpy as np

from lib.data.synthetic.face_model import Expression, sample_identity
from lib.data.synthetic.render import OCCLUDERS, Appearance, FaceSpec, Light

SKIN_LIGHT = np.array([0.96, 0.80, 0.70])
SKIN_DARK = np.array([0.33, 0.21, 0.15])
HAIR = np.array([[0.08, 0.06, 0.05], [0.25, 0.16, 0.10], [0.45, 0.30, 0.18], [0.75, 0.62, 0.40], [0.55, 0.55, 0.55], [0.50, 0.20, 0.10]])
IRIS = np.array([[0.30, 0.18, 0.10], [0.15, 0.10, 0.06], [0.25, 0.45, 0.65], [0.30, 0.45, 0.30]])


def sample_expression(rng: np.random.Generator) -> Expression:
    blink = rng.random()
    closure = rng.uniform(0.5, 1.0) if blink < 0.12 else 0.0
    wink = rng.uniform(0.6, 1.0) if 0.12 <= blink < 0.17 else 0.0
    return Expression(
        mouth_open=rng.uniform(0.1, 1.0) if rng.random() < 0.35 else 0.0,
        smile=rng.uniform(0.0, 1.0) if rng.random() < 0.4 else (rng.uniform(-0.4, 0.0) if rng.random() < 0.15 else 0.0),
        eye_closure_right=max(closure, wink),
        eye_closure_left=closure,
        brow_raise=float(np.clip(rng.normal(0, 0.4), -1, 1)),
    )


def sample_appearance(rng: np.random.Generator) -> tuple[Appearance, float]:
    """Appearance and its skin tone in [0, 1] (0 lightest)."""
    tone = rng.random()
    skin = np.clip(SKIN_LIGHT * (1 - tone) + SKIN_DARK * tone + rng.normal(0, 0.02, 3), 0, 1)
    make_up = rng.random() < 0.12
    lips = np.array([0.75, 0.12, 0.25]) * rng.uniform(0.7, 1.1) if make_up else np.clip(skin * [0.95, 0.62, 0.62], 0, 1)
    look = Appearance(
        skin=skin,
        hair=np.clip(HAIR[rng.integers(len(HAIR))] * rng.uniform(0.8, 1.2), 0, 1),
        iris=IRIS[rng.integers(len(IRIS))],
        lips=lips,
        hairline=(rng.uniform(-1.3, -0.75), rng.uniform(0.0, 0.4)),
        hair_side=rng.uniform(-0.2, 0.9),
        bald=rng.random() < 0.08,
        make_up=make_up,
        beard=rng.uniform(0.3, 1.0) if rng.random() < 0.15 else 0.0,
        gaze=np.clip(rng.normal(0, 0.35, 2), -0.8, 0.8),
        brow_thickness=float(np.clip(rng.normal(0.12, 0.025), 0.06, 0.18)),
        brow_density=rng.uniform(0.5, 0.95),
    )
    return look, tone


def sample_face(rng: np.random.Generator, difficulty: float, scale: float, centre: np.ndarray) -> tuple[FaceSpec, dict]:
    """A face placed at ``centre`` (pixels of the point between the eyes) with ``scale`` pixels
    per eye distance; returns it with its recorded conditions."""
    yaw = float(np.clip(rng.normal(0, 24 * difficulty), -60, 60))
    pitch = float(np.clip(rng.normal(0, 11 * difficulty), -30, 30))
    roll = float(np.clip(rng.normal(0, 13 * difficulty), -45, 45))
    expression = sample_expression(rng)
    look, tone = sample_appearance(rng)
    spec = FaceSpec(sample_identity(rng), expression, yaw, pitch, roll, scale, np.asarray(centre, float), look)
    conditions = {
        "yaw": yaw,
        "pitch": pitch,
        "roll": roll,
        "mouth_open": expression.mouth_open,
        "smile": expression.smile,
        "eye_closure": max(expression.eye_closure_left, expression.eye_closure_right),
        "skin_tone": tone,
        "face_size": scale,
        "make_up": int(look.make_up),
        "beard": look.beard,
    }
    return spec, conditions


def sample_light(rng: np.random.Generator, difficulty: float) -> tuple[Light, dict]:
    azimuth, elevation = np.deg2rad(rng.uniform(-80, 80)), np.deg2rad(rng.uniform(-15, 60))
    direction = np.array([np.sin(azimuth) * np.cos(elevation), -np.sin(elevation), np.cos(azimuth) * np.cos(elevation)])
    harsh = rng.random() < 0.2 * difficulty
    ambient = rng.uniform(0.08, 0.25) if harsh else rng.uniform(0.25, 0.7)
    light = Light(direction, ambient, 1 + rng.normal(0, 0.06, 3), rng.uniform(0, 0.25))
    return light, {"light_azimuth": float(np.rad2deg(azimuth)), "light_elevation": float(np.rad2deg(elevation)), "ambient": ambient}


def sample_degradation(rng: np.random.Generator, difficulty: float) -> dict:
    """Image-level degradations; ``blur_sigma`` is in units of 1/50 of the eye distance."""
    blurred = rng.random() < 0.25 * difficulty
    return {
        "brightness": float(np.exp(rng.normal(0, 0.25 * difficulty))),
        "gamma": float(np.exp(rng.normal(0, 0.15))),
        "blur_sigma": rng.uniform(0.5, 2.5) if blurred else 0.0,
        "motion_blur": int(rng.integers(3, 12)) if rng.random() < 0.08 * difficulty else 0,
        "noise_sigma": rng.uniform(0, 0.04) if rng.random() < 0.5 else 0.0,
        "jpeg_quality": int(rng.integers(35, 96)),
        "clutter": int(rng.integers(0, 20)),
    }


def sample_occluder(rng: np.random.Generator, difficulty: float) -> str:
    return str(rng.choice(OCCLUDERS)) if rng.random() < 0.25 * difficulty else "none"


def wflw_flags(conditions: dict) -> dict:
    """WFLW's six attribute flags from a face's recorded conditions."""
    return {
        "pose": int(abs(conditions["yaw"]) >= 40 or abs(conditions["pitch"]) >= 22 or abs(conditions["roll"]) >= 30),
        "expression": int(conditions["mouth_open"] >= 0.5 or conditions["smile"] >= 0.6 or conditions["eye_closure"] >= 0.6),
        "illumination": int(conditions["brightness"] < 0.6 or conditions["brightness"] > 1.5 or conditions["ambient"] < 0.25),
        "make_up": int(conditions["make_up"]),
        "occlusion": int(conditions["occluded_fraction"] >= 0.1),
        "blur": int(conditions["blur_sigma"] >= 1.2 or conditions["motion_blur"] >= 6),
    }
