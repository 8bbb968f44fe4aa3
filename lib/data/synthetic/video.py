"""Synthetic video clips with exact per-frame landmarks, for tracking and jitter measurements.

One face per clip, its identity, appearance and background fixed; head pose, position, scale,
the light's direction and the exposure drift slowly (a few sinusoids below 0.3 Hz each), mouth
and smile change faster, with blinks (closures of ~0.2 s) and, in half the clips, a fast head turn (a yaw sweep of 30-50 deg in
0.2-0.3 s). Layout::

    <root>/<split>_<k>/frames/frame_XXXX.jpg   the frames (JPEG, quality fixed per clip)
    <root>/<split>_<k>/labels/frame_XXXX.pts   51 points, 1-based .pts convention
    <root>/<split>_<k>/conditions.csv          per frame: pose, centre, scale, expression
    <root>/manifest.json                       written last: parameters, fps, clip names

``split`` is ``tune`` (clips that choose the tracker's and the filter's settings) or ``test``
(clips that measure them). Every clip is rendered from its own seed (``seed``, split, index),
so the set is the same whatever the number of workers; it is built in ``<root>.partial`` and
renamed into place at the end, like the image set (:func:`lib.data.synthetic.generate.generate`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lib.data.synthetic.face_model import Expression
from lib.data.synthetic.generate import generated_params, move_into_place, parallel_map, partial_folder, write_manifest
from lib.data.synthetic.render import degrade, jpeg_roundtrip, render_background, render_face
from lib.data.synthetic.sampling import sample_face, sample_light
from lib.formats.pts import read_pts, write_pts
from lib.io import atomic_save_csv, atomic_write_bytes
from lib.schemes import load_scheme

VIDEO_VERSION = 6
FRAME_SIZE = (640, 480)  # width, height
SPLIT_IDS = {"tune": 0, "test": 1}
BLINK_FRAMES = 6  # ~0.2 s at 30 fps


def smooth_signal(rng: np.random.Generator, times: np.ndarray, amplitude: float, low_hz: float = 0.1, high_hz: float = 0.6, waves: int = 3) -> np.ndarray:
    """A smooth random signal over ``times`` (s): the sum of ``waves`` sinusoids of random
    frequency in [low_hz, high_hz] and phase, scaled so that its peak is about ``amplitude``."""
    frequencies = rng.uniform(low_hz, high_hz, waves)
    phases = rng.uniform(0, 2 * np.pi, waves)
    weights = rng.uniform(0.5, 1.0, waves)
    return amplitude * (weights[:, None] * np.sin(2 * np.pi * frequencies[:, None] * times[None] + phases[:, None])).sum(0) / weights.sum()


def blinks(rng: np.random.Generator, frames: int, fps: float) -> np.ndarray:
    """(T,) eye closure in [0, 1]: a raised-cosine closure of :data:`BLINK_FRAMES` frames every
    2-4 s."""
    closure = np.zeros(frames)
    start = int(rng.uniform(0.3, 2.0) * fps)
    window = np.sin(np.linspace(0, np.pi, BLINK_FRAMES)) ** 2
    while start + BLINK_FRAMES <= frames:
        closure[start : start + BLINK_FRAMES] = window
        start += int(rng.uniform(2.0, 4.0) * fps)
    return closure


def fast_turn(rng: np.random.Generator, frames: int, fps: float) -> np.ndarray:
    """(T,) yaw offset in degrees: a smoothstep sweep of 30-50 deg over 0.2-0.3 s at a random
    time (zero before it, the full sweep after it)."""
    length = int(rng.uniform(0.2, 0.3) * fps)
    start = int(rng.integers(frames // 4, max(frames // 4 + 1, frames - length - 1)))
    sweep = rng.uniform(30, 50) * rng.choice([-1, 1])
    progress = np.clip((np.arange(frames) - start) / length, 0, 1)
    return sweep * progress * progress * (3 - 2 * progress)


@dataclass(frozen=True)
class Motion:
    """Per-frame (T,) trajectories of one clip: pose in degrees, centre and scale in pixels
    (scale = pixels per eye distance), expression in [0, 1], the light's turn about the vertical
    axis in degrees and the exposure (a brightness factor)."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    centre_x: np.ndarray
    centre_y: np.ndarray
    scale: np.ndarray
    mouth_open: np.ndarray
    smile: np.ndarray
    eye_closure: np.ndarray
    light_turn: np.ndarray
    brightness: np.ndarray

    def frame(self, t: int) -> dict:
        return {name: float(getattr(self, name)[t]) for name in self.__dataclass_fields__}


def sample_motion(rng: np.random.Generator, frames: int, fps: float, width: int, height: int) -> Motion:
    """Head motion of someone facing a camera: slow drifts of pose, position and distance (below
    0.3 Hz, the face moving a few pixels a frame) under faster expression changes, and in half
    the clips one fast turn, as the light moves and the exposure adapts; the face stays inside
    the frame."""
    times = np.arange(frames) / fps
    scale = rng.uniform(0.12, 0.2) * min(width, height) * np.exp(smooth_signal(rng, times, 0.08, 0.05, 0.3))
    turn = fast_turn(rng, frames, fps) if rng.random() < 0.5 else np.zeros(frames)
    base_yaw = rng.uniform(-20, 20) - turn[-1] / 2
    margin = 2.2 * scale.max()
    return Motion(
        yaw=np.clip(base_yaw + smooth_signal(rng, times, 15, 0.05, 0.3) + turn, -60, 60),
        pitch=rng.uniform(-8, 8) + smooth_signal(rng, times, 8, 0.05, 0.3),
        roll=rng.uniform(-10, 10) + smooth_signal(rng, times, 8, 0.05, 0.3),
        centre_x=width / 2 + smooth_signal(rng, times, 0.4 * max(0.0, width / 2 - margin), 0.05, 0.3),
        centre_y=height * 0.45 + smooth_signal(rng, times, 0.4 * max(0.0, height * 0.45 - margin), 0.05, 0.3),
        scale=scale,
        mouth_open=np.clip(smooth_signal(rng, times, 0.9, 0.2, 0.8), 0, 1),
        smile=np.clip(smooth_signal(rng, times, 0.8, 0.1, 0.4), -0.2, 1),
        eye_closure=blinks(rng, frames, fps),
        light_turn=smooth_signal(rng, times, 25, 0.05, 0.3),
        brightness=np.exp(smooth_signal(rng, times, 0.15, 0.05, 0.3)),
    )


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 100 + SPLIT_IDS[split], index])


def render_clip(seed: int, split: str, index: int, frames: int, fps: float) -> tuple[list[bytes], np.ndarray, pd.DataFrame]:
    """One clip: its frames as JPEG bytes, the (T, 51, 2) landmarks in pixels and the per-frame
    conditions."""
    rng = clip_rng(seed, split, index)
    width, height = FRAME_SIZE
    motion = sample_motion(rng, frames, fps, width, height)
    spec, _ = sample_face(rng, 0.5, float(motion.scale[0]), np.array([motion.centre_x[0], motion.centre_y[0]]))
    light, _ = sample_light(rng, 0.5)
    background = render_background(rng, height, width, int(rng.integers(0, 20)))
    quality, noise = int(rng.integers(70, 95)), float(rng.uniform(0.0, 0.02))
    texture_seed = int(rng.integers(2**31))  # the same skin texture on every frame
    to_51 = load_scheme("ivslab51").from_ibug68
    jpegs, points, rows = [], [], []
    for t in range(frames):
        state = motion.frame(t)
        frame_spec = replace(
            spec,
            yaw=state["yaw"],
            pitch=state["pitch"],
            roll=state["roll"],
            scale=state["scale"],
            centre=np.array([state["centre_x"], state["centre_y"]]),
            expression=Expression(state["mouth_open"], state["smile"], state["eye_closure"], state["eye_closure"], spec.expression.brow_raise),
        )
        turn = np.deg2rad(state["light_turn"])
        about_vertical = np.array([[np.cos(turn), 0, np.sin(turn)], [0, 1, 0], [-np.sin(turn), 0, np.cos(turn)]])
        image = background.copy()
        landmarks = render_face(image, frame_spec, replace(light, direction=about_vertical @ light.direction), np.random.default_rng(texture_seed))
        image = degrade(image, rng, state["brightness"], 1.0, 0.0, 0, noise)
        jpegs.append(jpeg_roundtrip((image * 255 + 0.5).astype(np.uint8), quality))
        points.append(landmarks[to_51])
        rows.append({"frame": t, **state})
    return jpegs, np.array(points), pd.DataFrame(rows)


def _clip_job(args: tuple[int, str, int, int, float]) -> tuple[str, list[bytes], np.ndarray, pd.DataFrame]:
    seed, split, index, frames, fps = args
    return (f"{split}_{index:02d}", *render_clip(seed, split, index, frames, fps))


def frame_name(t: int) -> str:
    return f"frame_{t + 1:04d}"


def generate_clips(root: str | Path, tune: int, test: int, frames: int = 90, fps: float = 30.0, seed: int = 0, workers: int = 1) -> Path:
    """Render ``tune`` + ``test`` clips of ``frames`` frames into ``root`` (skipped when a
    complete set with the same parameters is there; built in ``<root>.partial``, never replacing
    a folder a generator did not write: :func:`lib.data.synthetic.generate.partial_folder`)."""
    root = Path(root)
    params = {"generator_version": VIDEO_VERSION, "tune": tune, "test": test, "frames": frames, "fps": fps, "seed": seed}
    partial = partial_folder(root, params)
    if partial is None:
        return root
    jobs = [(seed, split, k, frames, fps) for split, count in (("tune", tune), ("test", test)) for k in range(count)]
    names = []
    for name, jpegs, points, conditions in parallel_map(_clip_job, jobs, workers, "video clips"):
        for t, (jpeg, face) in enumerate(zip(jpegs, points, strict=True)):
            atomic_write_bytes(partial / name / "frames" / f"{frame_name(t)}.jpg", jpeg)
            write_pts(partial / name / "labels" / f"{frame_name(t)}.pts", face)
        atomic_save_csv(conditions, partial / name / "conditions.csv", index=False)
        names.append(name)
    write_manifest(partial, {"params": params, "clips": names})
    return move_into_place(partial, root)


@dataclass(frozen=True)
class Clip:
    """A labelled clip: its ``name``, frame image paths (T,), landmarks (T, N, 2) in 0-based
    pixels and frame rate."""

    name: str
    frames: list[Path]
    points: np.ndarray
    fps: float


def read_clips(root: str | Path, split: str) -> list[Clip]:
    """The clips of ``split`` (``tune`` or ``test``) of a generated set, in order."""
    root = Path(root)
    params = generated_params(root)
    if params is None or "fps" not in params:
        raise FileNotFoundError(f"{root}: no generated clip set (manifest.json missing or not a clip set's)")
    clips = []
    for name in json.loads((root / "manifest.json").read_text())["clips"]:
        if not name.startswith(f"{split}_"):
            continue
        frames = sorted((root / name / "frames").glob("frame_*.jpg"))
        points = np.stack([read_pts(root / name / "labels" / f"{frame.stem}.pts", 51) for frame in frames])
        clips.append(Clip(name, frames, points, float(params["fps"])))
    return clips
