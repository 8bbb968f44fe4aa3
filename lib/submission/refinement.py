"""How many refinement passes the package makes, chosen by measurement on the detector set.

A pass predicts a face again from the training crop around its last landmarks
(:class:`~lib.deploy.run_model.Pipeline`), optionally turned to level the eyes: it undoes what a
detector box gets wrong (a crop shifted, too large, a rolled face) at the price of one more model
run per face. The measurement set is the detector set (:mod:`lib.submission.detection_threshold`:
scenes drawn like the test's, disjoint from it): the pipeline runs each image once up to the
largest candidate, keeping the landmarks after every pass, and each candidate is scored as a
submission is (faces matched to the labels, NME by the scheme's default normaliser). The chosen
count is the fewest passes whose NME is within ``tolerance`` of the lowest: a pass must pay for
its model run. The candidates stop where a face's network runs would outlast a reference's one
(:func:`passes_within_latency`: the pipeline holds the package to MediaPipe's landmark model).
The test images are never used here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lib.deploy.run_model import Pipeline
from lib.formats.images import load_image
from lib.formats.pair import list_test_images
from lib.progress import track
from lib.schemes import Scheme
from lib.submission.score import read_ground_truth, score_submission

MAX_PASSES = 2
TOLERANCE = 0.001  # NME (0.1 points): a smaller gain does not pay for one more model run per face


def predictions_per_pass(pipeline: Pipeline, images: list[str | Path], max_passes: int = MAX_PASSES, progress: bool = True) -> list[dict[str, np.ndarray]]:
    """For 0, 1, ... ``max_passes`` refinement passes, ``{image path: (F, N, 2)}`` of
    ``pipeline`` on each image (its detector runs once per image)."""
    predictions = [{} for _ in range(max_passes + 1)]
    for image in track(images, desc="refinement passes", disable=not progress):
        for step, (faces, _) in enumerate(pipeline.predict_passes(load_image(image), max_passes)):
            predictions[step][str(image)] = faces
    return predictions


def refinement_table(pipeline: Pipeline, folder: str | Path, scheme: Scheme, max_passes: int = MAX_PASSES, progress: bool = True) -> pd.DataFrame:
    """One row per pass count 0..``max_passes`` on the labelled images of ``folder``
    (``images/`` + ``gt/``, face-free ones skipped): ``passes``, ``faces``, ``matched``, ``nme``,
    ``fr`` (:func:`~lib.submission.score.score_submission`'s, missed faces failing)."""
    folder = Path(folder)
    truth = {stem: faces for stem, faces in read_ground_truth(folder / "gt", scheme.num_points).items() if len(faces)}
    images = [image for image in list_test_images(folder / "images") if image.stem in truth]
    if not images:
        raise ValueError(f"{folder}: no image with a labelled face to measure the refinement on")
    rows = []
    for step, predicted in enumerate(predictions_per_pass(pipeline, images, max_passes, progress)):
        score, _ = score_submission({Path(path).stem: faces for path, faces in predicted.items()}, {image.stem: truth[image.stem] for image in images}, scheme)
        rows.append({"passes": step, **{key: score[key] for key in ("faces", "matched", "nme", "fr")}})
    return pd.DataFrame(rows)


def passes_within_latency(model_ms: float, reference_ms: float, max_passes: int = MAX_PASSES) -> int:
    """The most refinement passes, up to ``max_passes``, whose ``1 + passes`` network runs of
    ``model_ms`` each take at most ``reference_ms``; 0 when even one run is slower."""
    if not (model_ms > 0 and reference_ms > 0):
        raise ValueError(f"latencies must be positive, not {model_ms} and {reference_ms} ms")
    return int(min(max_passes, max(0, np.floor(reference_ms / model_ms + 1e-9) - 1)))


def shipped_and_reference_ms(shipped_report: str | Path, references: str | Path, reference: str = "mediapipe") -> tuple[float, float, str]:
    """(the shipped file's latency, the ``reference`` model's, their column) in ms: the timing
    step's ``best.json`` holds one ``litert_ms_t<threads>`` (the thread count it chose by), read
    from the same column of its ``references.csv``. Errors name the file that lacks it."""
    fields = json.loads(Path(shipped_report).read_text())
    columns = [key for key in fields if key.startswith("litert_ms_t")]
    if len(columns) != 1:
        raise ValueError(f"{shipped_report}: expected one litert_ms_t<threads> field, found {columns}")
    table = pd.read_csv(references)
    row = table[table["name"] == reference]
    if row.empty or columns[0] not in table:
        raise ValueError(f"{references}: no {columns[0]} of {reference!r}")
    return float(fields[columns[0]]), float(row[columns[0]].iloc[0]), columns[0]


def choose_passes(table: pd.DataFrame, tolerance: float = TOLERANCE) -> int:
    """The fewest ``passes`` of :func:`refinement_table` whose NME is within ``tolerance`` of the
    lowest; a count that matched no face (NME NaN) counts as worst, and with none matched: 0."""
    nme = table["nme"].fillna(np.inf)
    good = table[nme <= nme.min() + tolerance]
    return int(good["passes"].min())
