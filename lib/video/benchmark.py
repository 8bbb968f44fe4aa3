"""The video benchmark: detector on every frame against tracking and tracking + One Euro filter,
on labelled clips (:mod:`lib.data.synthetic.video`), with the tracker's and the filter's
settings chosen on the ``tune`` clips and measured on the ``test`` clips.

- ``min_confidence`` (:func:`choose_min_confidence`): on tune frames, the confidence of crops
  placed by the training rule around the true landmarks (a face tracked well) against crops
  shifted by 0.6-1.2 crop sides (the face gone: a cut, a turn too fast); the threshold that
  misclassifies the fewest of both.
- The One Euro settings (:func:`choose_smoothing`): the unfiltered tune tracks filtered offline
  over a grid; the least jitter among the settings within ``nme_points`` of the unfiltered NME
  and at most ``max_lag`` frames of lag.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lib.data.synthetic.video import Clip
from lib.deploy.run_model import CROP_UNIT, Pipeline, landmark_crop, read_rgb
from lib.progress import track
from lib.schemes import Scheme
from lib.video.filters import OneEuroSettings, filter_sequence
from lib.video.tracker import FaceTracker, face_size
from lib.video.tracking_metrics import clip_summary

MODES = ("detector every frame", "tracking", "tracking + One Euro")
MIN_CUTOFFS = (0.5, 1.0, 2.0, 4.0, 8.0)  # Hz
BETAS = (0.0, 1.0, 4.0, 16.0, 64.0)  # Hz per (face size per second)


@dataclass(frozen=True)
class VideoSettings:
    """What the video step chose: the tracker's ``min_confidence`` and the filter's settings
    (None: no filter). Stored as JSON beside the step's results; ``python -m lib.video`` reads it."""

    min_confidence: float
    smoothing: OneEuroSettings | None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, path: str | Path) -> VideoSettings:
        try:
            raw = json.loads(Path(path).read_text())
            smoothing = None if raw["smoothing"] is None else OneEuroSettings(**raw["smoothing"])
            return cls(float(raw["min_confidence"]), smoothing)
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise ValueError(f"{path}: not a video settings file ({type(error).__name__}: {error})") from None


@dataclass(frozen=True)
class TrackedClip:
    """A tracker's run over a clip: shown and raw landmarks (T, N, 2) (NaN: no face), the
    confidence (T,), whether the detector ran (T,) and detector + model seconds (T,)."""

    points: np.ndarray
    raw: np.ndarray
    confidence: np.ndarray
    detected: np.ndarray
    seconds: np.ndarray


def run_clip(tracker: FaceTracker, clip: Clip) -> TrackedClip:
    """Track ``clip`` from its first frame (the tracker is reset first)."""
    tracker.reset()
    shape = clip.points.shape
    points, raw = np.full(shape, np.nan), np.full(shape, np.nan)
    confidence, detected, seconds = np.zeros(len(clip.frames)), np.zeros(len(clip.frames), bool), np.zeros(len(clip.frames))
    for t, path in enumerate(clip.frames):
        frame = tracker(read_rgb(path), t / clip.fps)
        if frame.points is not None:
            points[t], raw[t] = frame.points, frame.raw
        confidence[t], detected[t], seconds[t] = frame.confidence, frame.detected, frame.seconds
    return TrackedClip(points, raw, confidence, detected, seconds)


def confidence_samples(landmarker: Pipeline, clips: Sequence[Clip], every: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Confidences (M,) of crops around the true landmarks and (M,) of the same crops shifted
    away from the face by 0.6-1.2 crop sides, on every ``every``-th frame of ``clips``."""
    rng = np.random.default_rng(seed)
    held, lost = [], []
    for clip in clips:
        for t in range(0, len(clip.frames), every):
            image = read_rgb(clip.frames[t])
            _, scale = landmark_crop(clip.points[t])
            held.append(landmarker.follow(image, clip.points[t])[1])
            angle = rng.uniform(0, 2 * np.pi)
            offset = rng.uniform(0.6, 1.2) * CROP_UNIT * scale * np.array([np.cos(angle), np.sin(angle)])
            lost.append(landmarker.follow(image, clip.points[t] + offset)[1])
    return np.array(held), np.array(lost)


def choose_min_confidence(held: np.ndarray, lost: np.ndarray) -> float:
    """The threshold between two sorted neighbours of the pooled confidences that minimises the
    share of ``held`` below it plus the share of ``lost`` at or above it (the middle of the best
    gap; ties: the lowest)."""
    values = np.unique(np.concatenate([held, lost]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]])
    errors = [np.mean(held < c) + np.mean(lost >= c) for c in candidates]
    return float(candidates[int(np.argmin(errors))])


def smoothed(tracked: TrackedClip, fps: float, settings: OneEuroSettings) -> np.ndarray:
    """The raw track filtered offline exactly as :class:`FaceTracker` filters it online: reset
    at detections and after frames without a face, speed in face sizes."""
    sizes = np.array([face_size(p) if np.isfinite(p).all() else 1.0 for p in tracked.raw])
    return filter_sequence(tracked.raw, fps, settings, sizes, tracked.detected)


def choose_smoothing(
    tracks: Sequence[TrackedClip],
    clips: Sequence[Clip],
    scheme: Scheme,
    d_cutoff: float = 1.0,
    nme_points: float = 0.2,
    max_lag: float = 1.0,
) -> tuple[OneEuroSettings | None, pd.DataFrame]:
    """The grid of :data:`MIN_CUTOFFS` x :data:`BETAS` on the tune tracks: one row per setting
    (means over clips) plus the unfiltered row; returns the chosen setting (None if none keeps
    the NME and lag limits) and the table."""

    def summary(points_of: list[np.ndarray]) -> dict:
        rows = [clip_summary(points, clip.points, scheme) for points, clip in zip(points_of, clips, strict=True)]
        return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}

    unfiltered = summary([t.raw for t in tracks])
    rows = [{"min_cutoff": np.nan, "beta": np.nan, **unfiltered}]
    for min_cutoff in MIN_CUTOFFS:
        for beta in BETAS:
            settings = OneEuroSettings(min_cutoff, beta, d_cutoff)
            rows.append({"min_cutoff": min_cutoff, "beta": beta, **summary([smoothed(t, c.fps, settings) for t, c in zip(tracks, clips, strict=True)])})
    table = pd.DataFrame(rows)
    allowed = table["min_cutoff"].notna() & (table["nme"] <= unfiltered["nme"] + nme_points / 100) & (table["lag_frames"] <= max_lag)
    table["allowed"] = allowed
    if not allowed.any():
        return None, table
    best = table[allowed].sort_values("jitter").iloc[0]
    return OneEuroSettings(float(best["min_cutoff"]), float(best["beta"]), d_cutoff), table


def tune(landmarker: Pipeline, clips: Sequence[Clip], scheme: Scheme) -> tuple[VideoSettings, dict]:
    """Choose :class:`VideoSettings` on the tune ``clips``; returns them with what they were
    chosen from (the confidence samples' summary and the filter grid)."""
    held, lost = confidence_samples(landmarker, clips)
    min_confidence = choose_min_confidence(held, lost)
    tracker = FaceTracker(landmarker, min_confidence)
    tracks = [run_clip(tracker, clip) for clip in track(clips, desc="tune clips")]
    smoothing, grid = choose_smoothing(tracks, clips, scheme)
    evidence = {
        "confidence_held": np.percentile(held, [5, 50, 95]).tolist(),
        "confidence_lost": np.percentile(lost, [5, 50, 95]).tolist(),
        "confidence_errors": float(np.mean(held < min_confidence) + np.mean(lost >= min_confidence)),
        "grid": grid,
    }
    return VideoSettings(min_confidence, smoothing), evidence


def evaluate(landmarker: Pipeline, clips: Sequence[Clip], scheme: Scheme, settings: VideoSettings) -> tuple[pd.DataFrame, dict]:
    """Every mode of :data:`MODES` on every clip (the filter's only when ``settings`` has one): a
    table with one row per (mode, clip) (NME, missed share, jitter, lag, mean detector + model
    ms per frame, detector runs per frame) and the tracks, ``{mode: [TrackedClip per clip]}``."""
    trackers = {
        MODES[0]: FaceTracker(landmarker, settings.min_confidence, detect_every_frame=True),
        MODES[1]: FaceTracker(landmarker, settings.min_confidence),
    }
    if settings.smoothing is not None:
        trackers[MODES[2]] = FaceTracker(landmarker, settings.min_confidence, smoothing=settings.smoothing)
    rows, tracks = [], {}
    for mode, tracker in trackers.items():
        tracks[mode] = [run_clip(tracker, clip) for clip in track(clips, desc=mode)]
        for clip, tracked in zip(clips, tracks[mode], strict=True):
            rows.append(
                {
                    "mode": mode,
                    "clip": clip.name,
                    "frames": len(clip.frames),
                    **clip_summary(tracked.points, clip.points, scheme),
                    "ms_per_frame": 1000 * float(np.mean(tracked.seconds)),
                    "detections_per_frame": float(tracked.detected.mean()),
                }
            )
    return pd.DataFrame(rows), tracks


# What tracking with the One Euro filter must reach against the detector on every frame.
MAX_JITTER_RATIO = 0.5  # at most half the detector's jitter
MAX_NME_CHANGE = 0.002  # NME (a fraction: 0.2 points) at most this much above the detector's
MAX_LAG_FRAMES = 1.0  # the filtered track at most a frame behind the truth


def video_targets(summary: pd.DataFrame) -> dict:
    """The video step's verdict from a :func:`mode_summary`: the filtered mode's jitter ratio,
    NME change (in points) and lag, the tracking mode's time ratio, and ``met``: jitter at most
    :data:`MAX_JITTER_RATIO` of the detector's, NME at most :data:`MAX_NME_CHANGE` above it, lag at
    most :data:`MAX_LAG_FRAMES`, and tracking faster than the detector on every frame. Without
    the filtered mode the filter's figures are None and the targets unmet."""
    rows = summary.set_index("mode")
    detector = rows.loc[MODES[0]]
    filtered = rows.loc[MODES[-1]] if MODES[-1] in rows.index else None
    targets = {
        "jitter_ratio": None if filtered is None else float(filtered["jitter_vs_detector"]),
        "nme_change_points": None if filtered is None else 100 * float(filtered["nme"] - detector["nme"]),
        "lag_frames": None if filtered is None else float(filtered["lag_frames"]),
        "tracking_ms_ratio": float(rows.loc[MODES[1], "ms_vs_detector"]),
    }
    targets["met"] = bool(
        filtered is not None
        and targets["jitter_ratio"] <= MAX_JITTER_RATIO
        and targets["nme_change_points"] <= 100 * MAX_NME_CHANGE
        and targets["lag_frames"] <= MAX_LAG_FRAMES
        and targets["tracking_ms_ratio"] < 1
    )
    return targets


def mode_summary(per_clip: pd.DataFrame) -> pd.DataFrame:
    """Per mode: means over clips of NME, missed share, jitter, lag, ms per frame and detector
    runs per frame, with jitter and ms as ratios to the first mode's (detector every frame)."""
    table = per_clip.groupby("mode", sort=False)[["nme", "missed", "jitter", "lag_frames", "ms_per_frame", "detections_per_frame"]].mean().reset_index()
    table["jitter_vs_detector"] = table["jitter"] / table["jitter"].iloc[0]
    table["ms_vs_detector"] = table["ms_per_frame"] / table["ms_per_frame"].iloc[0]
    return table


def video_headline(settings: VideoSettings, targets: dict) -> tuple[str, dict]:
    """The video step's headline (:mod:`lib.headline`): the tuned settings and :func:`video_targets`."""
    line = f"targets {'met' if targets['met'] else 'not met'}: " + ", ".join(f"{key} {value:.3f}" for key, value in targets.items() if isinstance(value, float))
    return line, {"video": {"settings": json.loads(settings.to_json()), "targets": targets}}
