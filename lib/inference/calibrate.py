"""Detector box -> landmark crop: fitting :class:`lib.deploy.run_model.LandmarkCalibration`.

The models are trained on crops around the landmarks (rule ``landmark_box``: the centre of the
landmarks' box, side ``1.4 x`` its longer side). A detector box sits elsewhere (BlazeFace's
box includes the forehead and ends at the chin), so on training faces with known landmarks the
crop's centre offset and side are measured in units of the detector box's longer side and
their medians become the rule. Faces the detector misses, or boxes that overlap the landmark
box by less than ``min_iou``, are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lib.data.geometry import CROP_RULES
from lib.deploy.run_model import BlazeFaceDetector, LandmarkCalibration, box_iou
from lib.formats.images import load_image


def landmark_boxes(points: np.ndarray) -> np.ndarray:
    """(F, 4) ``x0, y0, x1, y1`` boxes of (F, N, 2) landmarks."""
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)


def matched_box(detector, image: np.ndarray, truth: np.ndarray, min_iou: float) -> np.ndarray | None:
    """The detector's box (4,) that overlaps the (1, 4) landmark box ``truth`` most, if by at least
    ``min_iou``; None when no box does (the face was missed)."""
    boxes, _ = detector(image)
    overlap = box_iou(truth, boxes)[0] if len(boxes) else np.zeros(0)
    return boxes[int(overlap.argmax())] if len(boxes) and overlap.max() >= min_iou else None


def fit_calibration(
    detector: BlazeFaceDetector, table: pd.DataFrame, faces: int = 200, min_iou: float = 0.2, seed: int = 0
) -> tuple[LandmarkCalibration, dict]:
    """Fit the rule on up to ``faces`` rows of an annotation table (one face per image);
    returns it and a summary (faces used, detection recall, spread of the fitted values)."""
    rows = table.sample(n=min(faces, len(table)), random_state=seed)
    _, factor = CROP_RULES["landmark_box"]
    offsets, sides = [], []
    for image_path, points in zip(rows["image"], rows["points"], strict=True):
        truth = landmark_boxes(points[None])
        box = matched_box(detector, load_image(image_path), truth, min_iou)
        if box is None:
            continue
        side = max(box[2] - box[0], box[3] - box[1])
        offsets.append(((truth[0, :2] + truth[0, 2:]) / 2 - (box[:2] + box[2:4]) / 2) / side)
        sides.append(factor * max(truth[0, 2] - truth[0, 0], truth[0, 3] - truth[0, 1]) / side)
    if not offsets:
        raise RuntimeError("the detector found none of the calibration faces")
    offsets, sides = np.array(offsets), np.array(sides)
    calibration = LandmarkCalibration(np.median(offsets, axis=0), float(np.median(sides)))
    summary = {
        "faces": len(rows),
        "detected": len(offsets),
        "recall": len(offsets) / len(rows),
        "offset": calibration.offset.tolist(),
        "side_factor": calibration.side_factor,
        "offset_iqr": (np.percentile(offsets, 75, axis=0) - np.percentile(offsets, 25, axis=0)).tolist(),
        "side_iqr": float(np.percentile(sides, 75) - np.percentile(sides, 25)),
    }
    return calibration, summary


def fit_close_up_box(
    full_range: BlazeFaceDetector, close_up: BlazeFaceDetector, table: pd.DataFrame, faces: int = 200, min_iou: float = 0.2, seed: int = 0
) -> tuple[tuple[float, float, float], dict]:
    """The map (:func:`lib.deploy.run_model.map_boxes`) from the close-up model's box of a face
    to the full-range model's box of it: on up to ``faces`` rows of an annotation table (one face
    per image), the faces both models find (each box overlapping the landmark box by at least
    ``min_iou``) give the full-range box centre's offset from the close-up box centre, in
    close-up box sides, and the ratio of their sides; their medians are the map. Returns
    ``(dx, dy, scale)`` and a summary (faces used, faces both found, spread)."""
    rows = table.sample(n=min(faces, len(table)), random_state=seed)
    shifts, scales = [], []
    for image_path, points in zip(rows["image"], rows["points"], strict=True):
        image, truth = load_image(image_path), landmark_boxes(points[None])
        full, close = (matched_box(detector, image, truth, min_iou) for detector in (full_range, close_up))
        if full is None or close is None:
            continue
        side = max(close[2] - close[0], close[3] - close[1])
        shifts.append(((full[:2] + full[2:4]) / 2 - (close[:2] + close[2:4]) / 2) / side)
        scales.append(max(full[2] - full[0], full[3] - full[1]) / side)
    if not shifts:
        raise RuntimeError("no calibration face was found by both detectors")
    shift, scale = np.median(shifts, axis=0), float(np.median(scales))
    summary = {
        "faces": len(rows),
        "both_found": len(shifts),
        "box_map": [float(shift[0]), float(shift[1]), scale],
        "shift_iqr": (np.percentile(shifts, 75, axis=0) - np.percentile(shifts, 25, axis=0)).tolist(),
        "scale_iqr": float(np.percentile(scales, 75) - np.percentile(scales, 25)),
    }
    return (float(shift[0]), float(shift[1]), scale), summary
