"""The detector's score threshold, chosen by measurement: missed faces against invented ones.

On training-side images the detector runs once at a low threshold. A labelled face counts as
found at threshold ``t`` when a detection of score ``>= t`` overlaps its landmark box by at least
``min_iou``; every detection of score ``>= t`` on a face-free image is an invented face. For each
candidate ``t`` the table holds the share of faces missed and the invented faces per face-free
image; the chosen threshold minimises their sum (a missed face and an invented one cost the same,
as each is one unusable face in a submission), the middle of the candidates that tie. Detections
below the sweep's lowest candidate never count, and the weighted NMS at that lowest threshold
can merge boxes a higher threshold keeps apart: the rates are measured, not exact, at ``t``.

The test images are never used here; the submission step reports the rates it then gets on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from lib.deploy.run_model import BlazeFaceDetector, box_iou
from lib.formats.images import load_image
from lib.inference.calibrate import landmark_boxes

CANDIDATES = tuple(np.round(np.arange(0.10, 0.951, 0.05), 2))


def face_scores(detector: BlazeFaceDetector, table: pd.DataFrame, min_iou: float = 0.2) -> np.ndarray:
    """(F,) the best score of a detection overlapping each labelled face (0: none did). One
    face per image (``table`` rows: ``image``, ``points``)."""
    scores = []
    for image_path, points in zip(table["image"], table["points"], strict=True):
        boxes, found = detector(load_image(image_path))
        overlap = box_iou(landmark_boxes(points[None]), boxes)[0] if len(boxes) else np.zeros(0)
        scores.append(float(found[overlap >= min_iou].max()) if (overlap >= min_iou).any() else 0.0)
    return np.array(scores)


def false_face_scores(detector: BlazeFaceDetector, images: Iterable[Path]) -> list[np.ndarray]:
    """Per face-free image, the scores of the detections on it (every one an invented face)."""
    return [detector(load_image(path))[1] for path in images]


def threshold_table(found: np.ndarray, invented: list[np.ndarray], candidates: Iterable[float] = CANDIDATES) -> pd.DataFrame:
    """One row per candidate threshold: ``min_score``, ``missed_share`` (of the labelled faces),
    ``invented_per_image`` (detections per face-free image) and their sum ``cost``."""
    if not len(found) or not invented:
        raise ValueError("choosing a detector threshold needs labelled faces and face-free images")
    rows = []
    for threshold in candidates:
        missed = float((found < threshold).mean())
        per_image = float(np.mean([(scores >= threshold).sum() for scores in invented]))
        rows.append({"min_score": float(threshold), "missed_share": missed, "invented_per_image": per_image, "cost": missed + per_image})
    return pd.DataFrame(rows)


def choose_threshold(table: pd.DataFrame) -> float:
    """The candidate of lowest cost; among ties, the middle one (the median, rounded down)."""
    best = table.loc[np.isclose(table["cost"], table["cost"].min()), "min_score"].to_numpy()
    return float(best[(len(best) - 1) // 2])


def measure_threshold(
    detector_path: str | Path, table: pd.DataFrame, negatives: list[Path], faces: int = 200, threads: int = 2, seed: int = 0
) -> tuple[float, pd.DataFrame]:
    """(chosen threshold, the table) from up to ``faces`` labelled training faces and the
    face-free ``negatives``."""
    if not negatives:
        raise ValueError("no face-free images to measure invented faces on")
    detector = BlazeFaceDetector(detector_path, min_score=min(CANDIDATES), num_threads=threads)
    rows = table.sample(n=min(faces, len(table)), random_state=seed)
    found, invented = face_scores(detector, rows), false_face_scores(detector, negatives)
    candidates = threshold_table(found, invented)
    return choose_threshold(candidates), candidates
