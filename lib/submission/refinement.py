"""The package's test-time work per face, chosen by measurement on the detector set: how many
refinement passes, whether the flip test-time augmentation runs, and whether the first crop is
turned to level the eyes the detector found.

A pass predicts a face again from the training crop around its last landmarks
(:class:`~lib.deploy.run_model.Pipeline`), optionally turned to level the eyes: it undoes what a
detector box gets wrong (a crop shifted, too large, a rolled face) at the price of one more model
run per face. The flip also predicts each crop's mirror and averages the two (landmark k of the
mirror being the scheme's ``flip_permutation[k]``): what the network gets wrong differently on a
face and on its mirror partly cancels, at the price of doubling every run. The detector's roll
turns the first crop by the angle of the eye line BlazeFace found (a rolled face seen upright, as
in training), at no price in network runs. A face takes :func:`model_runs` = (1 + passes) x (2
with the flip, else 1) network runs. The measurement set is the detector set
(:mod:`lib.submission.detection_threshold`: scenes drawn like the test's, disjoint from it): for
each flip and roll setting the pipeline runs each image once up to the most passes allowed,
keeping the landmarks after every pass, and each candidate is scored as a submission is
(faces matched to the labels by position, NME by the scheme's default normaliser, every labelled
face counted). The chosen candidate is the one with the fewest runs whose mean, median and worst
decile are all within ``tolerance`` of the best (:func:`choose_setting`): extra work must pay,
and must not buy the typical face at the worst faces' cost. The candidates stop where a face's
network runs would outlast a reference's one (:func:`runs_within_latency`: the pipeline holds the package to
MediaPipe's landmark model). The test images are never used here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
Candidate = tuple[bool, bool, int]  # (flip, detector_roll, passes)


def predictions_per_pass(pipeline: Pipeline, images: list[str | Path], max_passes: int = MAX_PASSES, progress: bool = True) -> list[dict[str, np.ndarray]]:
    """For 0, 1, ... ``max_passes`` refinement passes, ``{image path: (F, N, 2)}`` of
    ``pipeline`` on each image (its detector runs once per image)."""
    predictions = [{} for _ in range(max_passes + 1)]
    for image in track(images, desc="refinement passes", disable=not progress):
        for step, (faces, _, _) in enumerate(pipeline.predict_passes(load_image(image), max_passes)):
            predictions[step][str(image)] = faces
    return predictions


def model_runs(flip: bool, passes: int) -> int:
    """Network runs per face: the first crop and each pass, each twice with the flip."""
    return (1 + passes) * (2 if flip else 1)


def candidates(flips: Sequence[bool], rolls: Sequence[bool], passes: Sequence[int], max_runs: int | None = None) -> list[Candidate]:
    """``(flip, detector_roll, passes)`` of the given values whose :func:`model_runs` is at most
    ``max_runs`` (None: all), in the order given, flip outermost, then the roll; when none fits,
    the cheapest alone (a face always gets a prediction)."""
    every = [(flip, roll, count) for flip in flips for roll in rolls for count in passes]
    runs = {candidate: model_runs(candidate[0], candidate[2]) for candidate in every}
    return [candidate for candidate in every if max_runs is None or runs[candidate] <= max_runs] or [min(every, key=runs.get)]


def refinement_table(
    pipelines: Mapping[tuple[bool, bool], Pipeline], folder: str | Path, scheme: Scheme, settings: Sequence[Candidate], progress: bool = True
) -> pd.DataFrame:
    """One row per ``(flip, detector_roll, passes)`` of ``settings`` on the labelled images of
    ``folder`` (``images/`` + ``gt/``, face-free ones skipped), each run by
    ``pipelines[flip, detector_roll]`` (the same pipeline whose model does or does not add the
    mirrored crop, whose first crop is or is not turned): ``flip``, ``detector_roll``,
    ``passes``, ``runs`` (:func:`model_runs`), ``faces``, ``matched``, ``nme``, ``median``,
    ``p90``, ``fr`` (:func:`~lib.submission.score.score_submission`'s: every labelled face
    counts, a missed one failing)."""
    folder = Path(folder)
    truth = {stem: faces for stem, faces in read_ground_truth(folder / "gt", scheme.num_points).items() if len(faces)}
    images = [image for image in list_test_images(folder / "images") if image.stem in truth]
    if not images:
        raise ValueError(f"{folder}: no image with a labelled face to measure the refinement on")
    if not settings:
        raise ValueError("no (flip, detector_roll, passes) candidate to measure")
    rows = []
    for flip, roll in dict.fromkeys((flip, roll) for flip, roll, _ in settings):
        wanted = sorted(count for f, r, count in settings if (f, r) == (flip, roll))
        per_pass = predictions_per_pass(pipelines[flip, roll], images, wanted[-1], progress)
        for count in wanted:
            predicted = {Path(path).stem: faces for path, faces in per_pass[count].items()}
            score, _ = score_submission(predicted, {image.stem: truth[image.stem] for image in images}, scheme)
            rows.append(
                {
                    "flip": flip,
                    "detector_roll": roll,
                    "passes": count,
                    "runs": model_runs(flip, count),
                    **{key: score[key] for key in ("faces", "matched", "nme", "median", "p90", "fr")},
                }
            )
    return pd.DataFrame(rows)


def runs_within_latency(model_ms: float, reference_ms: float) -> int:
    """The most network runs of ``model_ms`` each that take at most ``reference_ms`` together
    (0 when even one run is slower)."""
    if not (model_ms > 0 and reference_ms > 0):
        raise ValueError(f"latencies must be positive, not {model_ms} and {reference_ms} ms")
    return int(np.floor(reference_ms / model_ms + 1e-9))


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


def latency_cap(shipped_report: str | Path, references: str | Path) -> dict | None:
    """The most network runs a face of the shipped file that fit in MediaPipe's landmark model's
    latency, from the timing step's ``best.json`` and ``references.csv`` (None when either file
    is missing: nothing was timed): ``{"model_ms", "mediapipe_ms", "column", "max_runs"}``."""
    if not (Path(shipped_report).is_file() and Path(references).is_file()):
        return None
    model_ms, reference_ms, column = shipped_and_reference_ms(shipped_report, references)
    return {"model_ms": model_ms, "mediapipe_ms": reference_ms, "column": column, "max_runs": runs_within_latency(model_ms, reference_ms)}


def choose_setting(table: pd.DataFrame, tolerance: float = TOLERANCE) -> Candidate:
    """The ``(flip, detector_roll, passes)`` row of :func:`refinement_table` to ship: each row's
    *excess* is the most by which its ``nme``, ``median`` or ``p90`` (the worst decile's edge)
    exceeds the lowest of that column, so a setting that helps the typical face but sends the
    worst ones astray does not pass; of the rows whose excess is within ``tolerance`` of the
    smallest, the fewest ``runs``, then the lowest NME, then no flip, then no roll, then fewer
    passes. Deterministic: the same table always gives the same row."""
    stats = table[["nme", "median", "p90"]].fillna(np.inf)  # NaN: a row that matched no face, the worst
    excess = (stats - stats.min()).fillna(0.0).max(axis=1)  # inf - inf: every row as bad, none in excess
    good = table.assign(excess=excess)[excess <= excess.min() + tolerance]
    best = good.sort_values(["runs", "nme", "flip", "detector_roll", "passes"]).iloc[0]
    return bool(best["flip"]), bool(best["detector_roll"]), int(best["passes"])
