"""The detector's score threshold, chosen by measurement: missed faces against invented ones.

The measurement set is a folder in the test's own layout, disjoint from the test:
``images/<stem>.png|jpg`` with ``gt/<stem>.txt`` in the submission format, an empty file for a
face-free image (the synthetic generator writes one, ``ivslab_facial_detector``, of scenes drawn
like the test's and face-free images). The detector runs once at the lowest candidate threshold.
A labelled face counts as found at threshold ``t`` when a detection of score ``>= t`` overlaps its
landmark box by at least ``min_iou``; every detection of score ``>= t`` on a face-free image is an
invented face. For each candidate ``t`` the table holds the share of faces missed and the invented
faces per face-free image; the chosen threshold minimises their sum (a missed face and an invented
one cost the same, each one unusable face in a submission), the middle of the candidates that
tie. The weighted NMS at the lowest threshold can merge boxes a higher one keeps apart: the rates
are measured, not exact, at ``t``. The test images are never used here; the submission step
reports the rates it then gets on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from lib.deploy.run_model import BlazeFaceDetector, box_iou
from lib.formats.errors import FormatError
from lib.formats.images import load_image
from lib.formats.pair import list_test_images
from lib.inference.calibrate import landmark_boxes
from lib.submission.score import read_ground_truth

CANDIDATES = tuple(np.round(np.arange(0.10, 0.951, 0.05), 2))


def detection_scores(detector: BlazeFaceDetector, images: list[Path], truths: list[np.ndarray], min_iou: float = 0.2) -> tuple[np.ndarray, list[np.ndarray]]:
    """``found``: for every labelled face, the best score of a detection overlapping it (0: none
    did); ``invented``: for every face-free image, the scores of its detections. ``truths`` holds
    each image's (F, N, 2) faces (F = 0: face-free)."""
    found, invented = [], []
    for image, faces in zip(images, truths, strict=True):
        boxes, scores = detector(load_image(image))
        if not len(faces):
            invented.append(scores)
            continue
        overlap = box_iou(landmark_boxes(faces), boxes) if len(boxes) else np.zeros((len(faces), 0))
        found.extend(float(scores[row >= min_iou].max()) if (row >= min_iou).any() else 0.0 for row in overlap)
    return np.array(found), invented


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


def measure_threshold(detector_path: str | Path, folder: str | Path, num_points: int, threads: int = 2) -> tuple[float, pd.DataFrame, dict]:
    """(chosen threshold, the table, counts) on the measurement set ``folder``
    (``images/`` and ``gt/``); it must hold labelled faces and face-free images."""
    folder = Path(folder)
    images = list_test_images(folder / "images")
    truth = read_ground_truth(folder / "gt", num_points)
    missing = [image.name for image in images if image.stem not in truth]
    if missing:
        raise FormatError(folder / "gt", f"no ground truth for {len(missing)} images, first {missing[:3]}")
    truths = [truth[image.stem] for image in images]
    detector = BlazeFaceDetector(detector_path, min_score=min(CANDIDATES), num_threads=threads)
    found, invented = detection_scores(detector, images, truths)
    if not len(found) or not invented:
        raise FormatError(
            folder,
            f"a detector set needs labelled faces and face-free images (empty ground-truth files); it has {len(found)} faces and {len(invented)} face-free images",
        )
    table = threshold_table(found, invented)
    return choose_threshold(table), table, {"faces": len(found), "face_free_images": len(invented)}
