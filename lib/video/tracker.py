"""Following one face through a video: detect once, then crop each frame from the last landmarks.

Frame ``t`` is cropped around the landmarks of frame ``t - 1`` by the rule the models were
trained with (``landmark_box``: the landmarks' box, 1.4 x its longer side), which also centres
the face better than a detector box does. The crop's fused heatmaps say whether the face is
still in it: their confidence (:func:`heatmap_confidence`) below ``min_confidence`` means the
track is lost, and the detector runs on that same frame. With a
:class:`~lib.video.filters.OneEuroSettings` the output landmarks are smoothed, the filter
restarting at every detection; the crops always follow the unfiltered landmarks, so smoothing
never feeds back into tracking.

The tracker runs a landmarker (:func:`lib.inference.landmarker.load_landmarker`: a package, a
``.tflite`` file or a checkpoint) through its three calls: ``detect`` and ``landmarks`` when the
face is new or lost, ``follow`` from the last landmarks otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from lib.deploy.run_model import Pipeline
from lib.video.filters import OneEuroFilter, OneEuroSettings


def face_size(points: np.ndarray) -> float:
    """The longer side of the landmarks' box, in pixels (the filter's speed unit)."""
    return float(np.max(points.max(axis=0) - points.min(axis=0)))


@dataclass(frozen=True)
class TrackedFrame:
    """One frame's result: ``points`` (N, 2) image pixels (smoothed when a filter is set; None:
    no face), ``raw`` the model's own landmarks, ``confidence`` of the crop they came from,
    ``detected`` whether the detector ran, ``seconds`` of detector and model time."""

    points: np.ndarray | None
    raw: np.ndarray | None
    confidence: float
    detected: bool
    seconds: float


class FaceTracker:
    """Call it on consecutive RGB frames (H, W, 3) uint8 with their time in seconds.

    ``detect_every_frame``: run the detector on every frame instead of tracking (the baseline).
    """

    def __init__(self, landmarker: Pipeline, min_confidence: float, smoothing: OneEuroSettings | None = None, detect_every_frame: bool = False):
        self.landmarker = landmarker
        self.min_confidence = min_confidence
        self.detect_every_frame = detect_every_frame
        self.filter = OneEuroFilter(smoothing) if smoothing is not None else None
        self.previous: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the face: the next frame starts with a detection (a new clip, a cut)."""
        self.previous = None
        if self.filter is not None:
            self.filter.reset()

    def __call__(self, image: np.ndarray, time_s: float) -> TrackedFrame:
        started = time.perf_counter()
        points, confidence, detected = None, 0.0, False
        if self.previous is not None and not self.detect_every_frame:
            points, confidence = self.landmarker.follow(image, self.previous)
        if points is None or confidence < self.min_confidence:
            points, confidence, detected = self._detect(image)
        seconds = time.perf_counter() - started
        self.previous = points
        if points is None:
            if self.filter is not None:
                self.filter.reset()
            return TrackedFrame(None, None, confidence, detected, seconds)
        shown = points
        if self.filter is not None:
            if detected:
                self.filter.reset()
            shown = self.filter(points, time_s, face_size(points))
        return TrackedFrame(shown, points, confidence, detected, seconds)

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray | None, float, bool]:
        """The likeliest detection's landmarks and confidence; (None, 0, True) without a face."""
        boxes, _ = self.landmarker.detect(image)
        if not len(boxes):
            return None, 0.0, True
        faces, confidences = self.landmarker.landmarks(image, boxes[:1])
        return faces[0], float(confidences[0]), True
