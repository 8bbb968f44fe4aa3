"""Scoring a submission against ground truth written in the same format.

Faces are matched per image by minimum total NME (Hungarian assignment on the NME of every
predicted face against every ground-truth face); a pair whose NME exceeds ``match_nme`` is no
match. A ground-truth face with no match is *missed* (it counts as a failure, with error
``inf``, in FR and AUC); a predicted face with no match is *extra*. NME is the mean over
matched faces; ``nme_all`` is not defined when a face is missed, so it is not reported.

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

from lib.formats.pair import files_by_stem
from lib.formats.pts import read_pts_blocks
from lib.metrics import auc, failure_rate, nme
from lib.schemes import Scheme


def read_ground_truth(folder: str | Path, num_points: int) -> dict[str, np.ndarray]:
    """``{image stem: (F, N, 2)}`` of a ground-truth folder in the submission format."""
    return {
        stem: np.stack(blocks) if (blocks := read_pts_blocks(path, num_points)) else np.zeros((0, num_points, 2))
        for stem, path in files_by_stem(Path(folder), [".txt"], "ground-truth").items()
    }


def match_faces(pred: np.ndarray, gt: np.ndarray, scheme: Scheme, normaliser: str | None = None, match_nme: float = 0.5) -> list[tuple[int, int, float]]:
    """Matched ``(pred index, gt index, nme)`` of one image's (P, N, 2) and (G, N, 2) faces."""
    if len(pred) == 0 or len(gt) == 0:
        return []
    cost = np.stack([nme(np.broadcast_to(face, gt.shape), gt, scheme, normaliser) for face in pred])  # (P, G)
    rows, cols = linear_sum_assignment(np.minimum(cost, 1e6))
    return [(int(p), int(g), float(cost[p, g])) for p, g in zip(rows, cols, strict=True) if cost[p, g] <= match_nme]


def score_submission(
    predictions: Mapping[str, np.ndarray],
    ground_truth: Mapping[str, np.ndarray],
    scheme: Scheme,
    normaliser: str | None = None,
    threshold: float = 0.10,
    match_nme: float = 0.5,
) -> tuple[dict, pd.DataFrame]:
    """Summary (``faces, matched, missed, missed_share, extra, false_faces, face_free_images,
    faces_on_face_free, face_free_with_a_face, nme, fr, auc, fr_with_false, auc_with_false``) and
    a per-face table (one row
    per ground-truth face and per extra face: ``image_id, gt_index, pred_index, nme``).

    ``predictions`` and ``ground_truth`` map image stems to (F, N, 2) pixel arrays; an image
    missing from ``predictions`` has all its faces missed.
    """
    rows = []
    for stem in sorted(ground_truth):
        gt = np.asarray(ground_truth[stem], dtype=np.float64)
        pred = np.asarray(predictions.get(stem, np.zeros((0, *gt.shape[1:]))), dtype=np.float64)
        matches = match_faces(pred, gt, scheme, normaliser, match_nme)
        by_gt = {g: (p, value) for p, g, value in matches}
        for g in range(len(gt)):
            p, value = by_gt.get(g, (None, np.inf))
            rows.append({"image_id": stem, "gt_index": g, "pred_index": p, "nme": value})
        for p in sorted(set(range(len(pred))) - {p for p, _, _ in matches}):
            rows.append({"image_id": stem, "gt_index": None, "pred_index": p, "nme": np.nan})
    faces = pd.DataFrame(rows, columns=["image_id", "gt_index", "pred_index", "nme"]).astype({"gt_index": "Int64", "pred_index": "Int64"})
    gt_faces = faces[faces["gt_index"].notna()]
    errors = gt_faces["nme"].to_numpy(np.float64)
    matched = np.isfinite(errors)
    if not len(errors):
        raise ValueError("the ground truth holds no faces")
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
        "nme": float(errors[matched].mean()) if matched.any() else float("nan"),
        "fr": failure_rate(errors, threshold),
        "auc": auc(errors, threshold, method="exact"),
        "fr_with_false": failure_rate(with_false, threshold),
        "auc_with_false": auc(with_false, threshold, method="exact"),
        "threshold": threshold,
        "normaliser": normaliser or scheme.default_normaliser,
    }
    return summary, faces
