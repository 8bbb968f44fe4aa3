"""The detector's layout and score threshold, chosen by measurement: missed faces against invented ones.

The measurement set is a folder in the test's own layout, disjoint from the test:
``images/<stem>.png|jpg`` with ``gt/<stem>.txt`` in the submission format, an empty file for a
face-free image (the synthetic generator writes one, ``PairTree.detector``, of scenes drawn
like the test's and face-free images). Each candidate layout of the package's
:class:`~lib.deploy.run_model.FaceDetector` (tiles of the full-range model, with or without the
short-range close-up model: :data:`LAYOUTS`) runs its models once per image at the lowest
candidate threshold; their anchors are then merged into faces at each candidate ``t`` exactly as
the package merges them at its threshold. A labelled face counts as found at ``t`` when a face
overlaps its landmark box by at least ``min_iou``; every other face is an invented one (all of
them on a face-free image; on a scene, a box on the background or a second box on one face).
For each layout and candidate ``t`` the table holds the share of faces missed and the invented
faces per image; the chosen pair minimises their sum (a missed face and an invented one cost the
same, each one unusable face in a submission); among ties, the layout of fewest model runs, then
the middle threshold. The test images are never used here; the submission step reports the
rates it then gets on them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from lib.deploy.run_model import NO_BOX_MAP, FaceDetector, box_iou, build_detector
from lib.formats.errors import FormatError
from lib.formats.images import load_image
from lib.formats.pair import list_test_images
from lib.inference.calibrate import landmark_boxes
from lib.submission.score import read_ground_truth

CANDIDATES = tuple(np.round(np.arange(0.10, 0.951, 0.05), 2))


Layout = tuple[int, bool]  # (tiles, close-up model)
LAYOUTS: tuple[Layout, ...] = ((1, False), (1, True), (2, False), (2, True), (3, False), (3, True))


def detection_outcomes(
    detector: FaceDetector, images: list[Path], truths: list[np.ndarray], candidates: Iterable[float] = CANDIDATES, min_iou: float = 0.2
) -> tuple[np.ndarray, np.ndarray, float]:
    """Run ``detector``'s models once per image (its threshold at or below every candidate)
    and merge their anchors at each candidate threshold. Returns ``found`` (C, faces): whether a
    face of that threshold overlaps each labelled face; ``invented`` (C, images): how many faces
    overlap no labelled face; the median milliseconds per image. ``truths`` holds each image's
    (F, N, 2) faces (F = 0: face-free)."""
    candidates = list(candidates)
    found, invented, seconds = [], [], []
    for image, faces in zip(images, truths, strict=True):
        pixels = load_image(image)
        started = time.perf_counter()
        anchors = detector.anchor_sets(pixels)
        seconds.append(time.perf_counter() - started)
        labelled = landmark_boxes(faces) if len(faces) else np.zeros((0, 4))
        per_threshold_found, per_threshold_invented = [], []
        for threshold in candidates:
            boxes, _ = detector.merge(anchors, threshold)
            overlap = box_iou(labelled, boxes) >= min_iou if len(boxes) else np.zeros((len(labelled), 0), dtype=bool)
            per_threshold_found.append(overlap.any(axis=1))
            per_threshold_invented.append(int((~overlap.any(axis=0)).sum()))
        found.append(np.array(per_threshold_found).reshape(len(candidates), len(labelled)))
        invented.append(per_threshold_invented)
    return np.concatenate(found, axis=1), np.array(invented).T, 1000 * float(np.median(seconds))


def threshold_table(found: np.ndarray, invented: np.ndarray, candidates: Iterable[float] = CANDIDATES) -> pd.DataFrame:
    """One row per candidate threshold from :func:`detection_outcomes`' ``found`` (C, faces)
    and ``invented`` (C, images): ``min_score``, ``missed_share`` (of the labelled faces),
    ``invented_per_image`` (faces matching no labelled face, per image) and their sum ``cost``."""
    candidates = list(candidates)
    if not found.size or not invented.size:
        raise ValueError("choosing a detector threshold needs labelled faces and images to count invented faces on")
    missed, per_image = 1.0 - found.mean(axis=1), invented.mean(axis=1)
    return pd.DataFrame({"min_score": [float(t) for t in candidates], "missed_share": missed, "invented_per_image": per_image, "cost": missed + per_image})


def choose_threshold(table: pd.DataFrame) -> float:
    """The candidate of lowest cost; among ties, the middle one (the median, rounded down)."""
    best = table.loc[np.isclose(table["cost"], table["cost"].min()), "min_score"].to_numpy()
    return float(best[(len(best) - 1) // 2])


def choose_layout(table: pd.DataFrame) -> tuple[Layout, float]:
    """((tiles, close_up), threshold) of lowest cost in a table of several layouts (columns
    ``tiles``, ``close_up``, ``model_runs`` and :func:`threshold_table`'s); among ties the layout
    of fewest model runs, then :func:`choose_threshold` within it."""
    lowest = table[np.isclose(table["cost"], table["cost"].min())]
    cheapest = lowest.sort_values(["model_runs", "tiles"]).iloc[0]
    layout = table[(table["tiles"] == cheapest["tiles"]) & (table["close_up"] == cheapest["close_up"])]
    return (int(cheapest["tiles"]), bool(cheapest["close_up"])), choose_threshold(layout)


def measure_detector(
    full_range: str | Path,
    close_up: str | Path,
    folder: str | Path,
    num_points: int,
    layouts: Iterable[Layout] = LAYOUTS,
    threads: int = 2,
    close_up_box: tuple[float, float, float] = NO_BOX_MAP,
) -> tuple[Layout, float, pd.DataFrame, dict]:
    """(chosen layout, chosen threshold, the table over layouts and thresholds, counts) on the
    measurement set ``folder`` (``images/`` and ``gt/``): it must hold labelled faces and
    face-free images. ``full_range`` and ``close_up``: the two BlazeFace files;
    ``close_up_box`` maps the close-up model's boxes (:class:`~lib.deploy.run_model.FaceDetector`)."""
    folder = Path(folder)
    images = list_test_images(folder / "images")
    truth = read_ground_truth(folder / "gt", num_points)
    missing = [image.name for image in images if image.stem not in truth]
    if missing:
        raise FormatError(folder / "gt", f"no ground truth for {len(missing)} images, first {missing[:3]}")
    truths = [truth[image.stem] for image in images]
    faces, face_free = sum(len(t) for t in truths), sum(not len(t) for t in truths)
    if not faces or not face_free:
        raise FormatError(
            folder,
            f"a detector set needs labelled faces and face-free images (empty ground-truth files); it has {faces} faces and {face_free} face-free images",
        )
    lowest = min(CANDIDATES)
    tables = []
    for tiles, with_close_up in layouts:
        detector = build_detector(full_range, close_up, lowest, tiles, with_close_up, threads, close_up_box)
        found, invented, milliseconds = detection_outcomes(detector, images, truths)
        layout = {"tiles": tiles, "close_up": with_close_up, "model_runs": detector.model_runs, "ms_per_image": milliseconds}
        tables.append(threshold_table(found, invented).assign(**layout))
    table = pd.concat(tables, ignore_index=True)
    layout, threshold = choose_layout(table)
    return layout, threshold, table, {"faces": faces, "face_free_images": face_free, "images": len(images)}
