"""Scoring predicted faces against labelled ones (a submission against ground truth written in
the same format, or a method against a real-face set: :mod:`lib.bench.real_face_benchmark`).

Faces are matched per image **by position, never by error**: a predicted face may match a
labelled face when the centre of its landmarks' box lies inside the labelled face's landmark box,
or when the two boxes overlap by at least :data:`MATCH_IOU`; among those pairs a Hungarian
assignment takes the closest centres. So a wildly wrong shape placed on a face is that face's
prediction and counts with its NME however large; only a face no prediction lies on is *missed*.
A predicted face with no match is *extra* (it may be a real, unlabelled person).

Every labelled face counts: ``nme`` and ``median`` are over all labelled faces, a missed one at
:data:`MISSED_NME` (the stated cap: an error as large as the normalising distance); FR and AUC
count a missed face as a failure; ``nme_matched`` is the mean over matched faces alone.

FR and AUC ignore false faces (extra faces, and faces predicted on images without ground truth),
so a lower detector threshold could only help them; ``fr_with_false``/``auc_with_false`` count
each false face as one more failure (error ``inf``): they show what a detector threshold costs
(it is chosen on a detector set disjoint from the test, :mod:`lib.submission.detection_threshold`,
never here).
An image whose ground truth is empty holds no face: every face predicted on it is extra, and
``faces_on_face_free`` / ``face_free_with_a_face`` count them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from lib.deploy.run_model import box_iou
from lib.formats.errors import FormatError
from lib.formats.pair import files_by_stem
from lib.formats.pts import read_pts_blocks
from lib.inference.calibrate import landmark_boxes
from lib.metrics import auc, failure_rate, nme
from lib.schemes import Scheme

MATCH_IOU = 0.3  # landmark boxes overlapping this much are one face even when a centre falls outside
MISSED_NME = 1.0  # a missed face's error in means and medians: the normalising distance itself
UNMATCHABLE = 1e12  # assignment cost of a pair that does not qualify


def read_ground_truth(folder: str | Path, num_points: int) -> dict[str, np.ndarray]:
    """``{image stem: (F, N, 2)}`` of a ground-truth folder in the submission format
    (:class:`FormatError` naming a folder that is missing or holds no ``.txt`` file)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(folder, "ground-truth folder not found")
    if not any(folder.glob("*.txt")):
        raise FormatError(folder, "the ground-truth folder holds no .txt file")
    return {
        stem: np.stack(blocks) if (blocks := read_pts_blocks(path, num_points)) else np.zeros((0, num_points, 2))
        for stem, path in files_by_stem(Path(folder), [".txt"], "ground-truth").items()
    }


def match_faces(pred: np.ndarray, gt: np.ndarray) -> list[tuple[int, int]]:
    """Matched ``(pred index, gt index)`` of one image's (P, N, 2) predicted and (G, N, 2)
    labelled faces, by position (the module's rule): a pair qualifies when the predicted box's
    centre lies inside the labelled box or their IoU is at least :data:`MATCH_IOU`; qualifying
    pairs are assigned to minimise the distance between box centres. Faces with non-finite
    points match nothing."""
    if len(pred) == 0 or len(gt) == 0:
        return []
    pred_boxes, gt_boxes = landmark_boxes(pred), landmark_boxes(gt)
    pred_centres, gt_centres = (pred_boxes[:, :2] + pred_boxes[:, 2:]) / 2, (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    inside = np.all((pred_centres[:, None] >= gt_boxes[None, :, :2]) & (pred_centres[:, None] <= gt_boxes[None, :, 2:]), axis=-1)  # (P, G)
    qualifies = (inside | (box_iou(pred_boxes, gt_boxes) >= MATCH_IOU)) & np.isfinite(pred_boxes).all(axis=1)[:, None]
    distance = np.linalg.norm(pred_centres[:, None] - gt_centres[None], axis=-1)
    cost = np.where(qualifies, distance, UNMATCHABLE)
    rows, cols = linear_sum_assignment(cost)
    return [(int(p), int(g)) for p, g in zip(rows, cols, strict=True) if qualifies[p, g]]


def error_summary(errors: np.ndarray, threshold: float = 0.10) -> dict:
    """``nme``, ``median``, ``p90`` (the worst decile's edge), ``fr`` and ``auc`` at
    ``threshold`` over every labelled face's error (``inf`` for a missed face: at
    :data:`MISSED_NME` in the mean and the quantiles, a failure in FR and AUC), and
    ``nme_matched``, the mean over the finite errors alone (NaN when none)."""
    errors = np.asarray(errors, dtype=np.float64)
    if not len(errors):
        raise ValueError("no labelled face to summarise")
    capped = np.where(np.isfinite(errors), errors, MISSED_NME)
    matched = np.isfinite(errors)
    return {
        "nme": float(capped.mean()),
        "median": float(np.median(capped)),
        "p90": float(np.quantile(capped, 0.9)),
        "fr": failure_rate(errors, threshold),
        "auc": auc(errors, threshold, method="exact"),
        "nme_matched": float(errors[matched].mean()) if matched.any() else float("nan"),
    }


def score_submission(
    predictions: Mapping[str, np.ndarray], ground_truth: Mapping[str, np.ndarray], scheme: Scheme, normaliser: str | None = None, threshold: float = 0.10
) -> tuple[dict, pd.DataFrame]:
    """Summary (``faces, matched, missed, missed_share, extra, false_faces, face_free_images,
    faces_on_face_free, face_free_with_a_face``, :func:`error_summary`'s ``nme, median, p90, fr,
    auc, nme_matched``, then ``fr_with_false, auc_with_false``) and a per-face table (one row per
    ground-truth face and per extra face: ``image_id, gt_index, pred_index, nme``; ``inf`` for a
    missed face, NaN for an extra one).

    ``predictions`` and ``ground_truth`` map image stems to (F, N, 2) pixel arrays; an image
    missing from ``predictions`` has all its faces missed.
    """
    rows = []
    for stem in sorted(ground_truth):
        gt = np.asarray(ground_truth[stem], dtype=np.float64)
        pred = np.asarray(predictions.get(stem, np.zeros((0, *gt.shape[1:]))), dtype=np.float64)
        by_gt = dict((g, p) for p, g in match_faces(pred, gt))
        for g in range(len(gt)):
            p = by_gt.get(g)
            value = float(nme(pred[p][None], gt[g][None], scheme, normaliser)[0]) if p is not None else np.inf
            rows.append({"image_id": stem, "gt_index": g, "pred_index": p, "nme": value})
        for p in sorted(set(range(len(pred))) - set(by_gt.values())):
            rows.append({"image_id": stem, "gt_index": None, "pred_index": p, "nme": np.nan})
    faces = pd.DataFrame(rows, columns=["image_id", "gt_index", "pred_index", "nme"]).astype({"gt_index": "Int64", "pred_index": "Int64"})
    errors = faces.loc[faces["gt_index"].notna(), "nme"].to_numpy(np.float64)
    if not len(errors):
        raise ValueError("the ground truth holds no faces")
    matched = np.isfinite(errors)
    unknown = sorted(set(predictions) - set(ground_truth))
    extra = int(faces["gt_index"].isna().sum())
    false_faces = extra + sum(len(predictions[stem]) for stem in unknown)
    with_false = np.concatenate([errors, np.full(false_faces, np.inf)])
    face_free = [stem for stem, gt in ground_truth.items() if not len(gt)]
    on_face_free = [len(predictions.get(stem, ())) for stem in face_free]
    summary = {
        "faces": len(errors),
        "matched": int(matched.sum()),
        "missed": int((~matched).sum()),
        "missed_share": float((~matched).mean()),
        "extra": extra,
        "unknown_images": unknown,
        "false_faces": false_faces,
        "face_free_images": len(face_free),
        "faces_on_face_free": int(sum(on_face_free)),
        "face_free_with_a_face": int(sum(count > 0 for count in on_face_free)),
        **error_summary(errors, threshold),
        "fr_with_false": failure_rate(with_false, threshold),
        "auc_with_false": auc(with_false, threshold, method="exact"),
        "threshold": threshold,
        "missed_nme": MISSED_NME,
        "normaliser": normaliser or scheme.default_normaliser,
    }
    return summary, faces
