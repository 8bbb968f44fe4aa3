"""The package's test-time work per face, chosen by measurement on the detector set: how many
refinement passes and for which faces, whether the flip test-time augmentation runs, and whether
the first crop is turned to level the eyes the detector found.

A pass predicts a face again from the training crop around its last landmarks
(:class:`~lib.deploy.run_model.Pipeline`), optionally turned to level the eyes: it undoes what a
detector box gets wrong (a crop shifted, too large, a rolled face) at the price of one more model
run per face. A pass may be kept for the faces that need it: with a bound (``refine_beyond``,
:data:`REFINE_BOUNDS`), it runs only where the crop a face's landmarks ask for strays beyond the
bound from the crop they came from (:func:`~lib.deploy.run_model.crop_stray`), so a face the
detector placed well costs one run and a face placed off gets its second look. The flip also
predicts each crop's mirror and averages the two (landmark k of the mirror being the scheme's
``flip_permutation[k]``): what the network gets wrong differently on a face and on its mirror
partly cancels, at the price of doubling every run. The detector's roll
turns the first crop by the angle of the eye line BlazeFace found (a rolled face seen upright, as
in training), at no price in network runs. A face takes at most :func:`model_runs` = (1 + passes)
x (2 with the flip, else 1) network runs; the table gives the runs a face took on average,
counted as the pipeline ran. The measurement set is the detector set
(:mod:`lib.submission.detection_threshold`: scenes drawn like the test's, disjoint from it): each
image is read and its faces detected once, each flip, roll and bound setting predicts them up to
the most passes allowed, keeping the landmarks after every pass, and each candidate is scored as
a submission is
(faces matched to the labels by position, NME by the scheme's default normaliser, every labelled
face counted). The chosen candidate is the one with the fewest runs whose mean, median and worst
decile are all within ``tolerance`` of the best (:func:`choose_setting`): extra work must pay,
and must not buy the typical face at the worst faces' cost. The candidates stop where a face's
network runs, on average over the detector set, would outlast a reference's one
(:func:`runs_within_latency`: the pipeline holds the package to MediaPipe's landmark model). The
test images are never used here.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lib.data.augment import AugmentConfig
from lib.deploy.run_model import Pipeline
from lib.formats.images import load_image
from lib.formats.pair import list_test_images
from lib.progress import track
from lib.schemes import Scheme
from lib.submission.score import read_ground_truth, score_submission

MAX_PASSES = 2
TOLERANCE = 0.001  # NME (0.1 points): a smaller gain does not pay for one more model run per face
# crop sides: a pass only for faces whose landmarks ask for a crop beyond one, one and a half or
# two standard deviations of the training crops' shift from the crop they came from
REFINE_BOUNDS = tuple(k * AugmentConfig().shift_sigma for k in (1.0, 1.5, 2.0))
Candidate = tuple[bool, bool, int, float | None]  # (flip, detector_roll, passes, refine_beyond: None for every face)


def predictions_per_pass(
    pipelines: Mapping[Hashable, Pipeline], images: list[str | Path], max_passes: int | Mapping[Hashable, int] = MAX_PASSES, progress: bool = True
) -> dict[Hashable, list[dict[str, np.ndarray]]]:
    """For each of ``pipelines``, for 0, 1, ... ``max_passes`` refinement passes (one count for
    all, or one per pipeline), ``{image path: (F, N, 2)}`` on each image. Each image is read once
    and each detector runs once on it: pipelines sharing a detector (and the most faces kept) share
    its faces."""
    most = {key: max_passes if isinstance(max_passes, int) else max_passes[key] for key in pipelines}
    predictions = {key: [{} for _ in range(most[key] + 1)] for key in pipelines}
    for image in track(images, desc="refinement passes", disable=not progress):
        rgb, found = load_image(image), {}
        for key, pipeline in pipelines.items():
            detector = (id(pipeline.detector), pipeline.max_faces)
            if detector not in found:
                found[detector] = pipeline.detect(rgb)
            for step, (faces, _, _) in enumerate(pipeline.predict_passes(rgb, most[key], found[detector])):
                predictions[key][step][str(image)] = faces
    return predictions


def network_runs(crops: float, flip: bool) -> float:
    """Network runs of a face predicted from ``crops`` crops: each twice with the flip."""
    return crops * (2 if flip else 1)


def model_runs(flip: bool, passes: int) -> int:
    """The most network runs a face takes: the first crop and each pass, each twice with the flip."""
    return int(network_runs(1 + passes, flip))


def least_runs(candidate: Candidate) -> int:
    """The fewest network runs a face takes under ``candidate``: every pass when it refines every
    face, else the first crop alone (a face placed well)."""
    flip, _, passes, bound = candidate
    return model_runs(flip, passes if bound is None else 0)


def candidates(
    flips: Sequence[bool], rolls: Sequence[bool], passes: Sequence[int], bounds: Sequence[float | None] = (None,), max_runs: float | None = None
) -> list[Candidate]:
    """``(flip, detector_roll, passes, refine_beyond)`` of the given values (a bound only with
    passes; none of them with no pass) whose :func:`least_runs` is at most ``max_runs`` (None:
    all), in the order given, flip outermost, then the roll, the passes and the bound; when none
    fits, the cheapest alone (a face always gets a prediction)."""
    every = [(flip, roll, count, bound) for flip in flips for roll in rolls for count in passes for bound in (bounds if count else (None,))]
    every = list(dict.fromkeys(every))
    fitting = [candidate for candidate in every if max_runs is None or least_runs(candidate) <= max_runs]
    return fitting or [min(every, key=least_runs)]


def refinement_table(
    pipelines: Mapping[tuple[bool, bool], Pipeline], folder: str | Path, scheme: Scheme, settings: Sequence[Candidate], progress: bool = True
) -> pd.DataFrame:
    """One row per ``(flip, detector_roll, passes, refine_beyond)`` of ``settings`` on the labelled
    images of ``folder`` (``images/`` + ``gt/``, face-free ones skipped), each run by
    ``pipelines[flip, detector_roll]`` (the same pipeline whose model does or does not add the
    mirrored crop, whose first crop is or is not turned) with that ``refine_beyond`` (NaN in the
    table: every face refined): ``flip``, ``detector_roll``, ``passes``, ``refine_beyond``,
    ``runs`` (network runs per predicted face, counted as it ran), ``most_runs``
    (:func:`model_runs`), ``faces``, ``matched``, ``nme``, ``median``, ``p90``, ``fr``
    (:func:`~lib.submission.score.score_submission`'s: every labelled face counts, a missed one
    failing)."""
    folder = Path(folder)
    truth = {stem: faces for stem, faces in read_ground_truth(folder / "gt", scheme.num_points).items() if len(faces)}
    images = [image for image in list_test_images(folder / "images") if image.stem in truth]
    if not images:
        raise ValueError(f"{folder}: no image with a labelled face to measure the refinement on")
    if not settings:
        raise ValueError("no (flip, detector_roll, passes, refine_beyond) candidate to measure")
    wanted: dict[tuple[bool, bool, float | None], list[int]] = {}  # (flip, roll, bound) -> pass counts
    for flip, roll, count, bound in settings:
        wanted.setdefault((flip, roll, bound), []).append(count)
    measured = {}
    for flip, roll, bound in wanted:
        measured[flip, roll, bound] = copy.copy(pipelines[flip, roll])
        measured[flip, roll, bound].refine_beyond, measured[flip, roll, bound].crops_tally = bound, Counter()
    per_group = predictions_per_pass(measured, images, {group: max(counts) for group, counts in wanted.items()}, progress)
    rows = []
    for (flip, roll, bound), counts in wanted.items():
        pipeline, per_pass = measured[flip, roll, bound], per_group[flip, roll, bound]
        for count in sorted(counts):
            predicted = {Path(path).stem: faces for path, faces in per_pass[count].items()}
            score, _ = score_submission(predicted, {image.stem: truth[image.stem] for image in images}, scheme)
            rows.append(
                {
                    "flip": flip,
                    "detector_roll": roll,
                    "passes": count,
                    "refine_beyond": math.nan if bound is None else bound,
                    "runs": network_runs(pipeline.crops_per_face(count) or 1.0, flip),  # no face found: a face's first crop
                    "most_runs": model_runs(flip, count),
                    **{key: score[key] for key in ("faces", "matched", "nme", "median", "p90", "fr")},
                }
            )
    return pd.DataFrame(rows)


def runs_within_latency(model_ms: float, reference_ms: float) -> float:
    """The network runs of ``model_ms`` each that take ``reference_ms`` together: the most runs a
    face may take on average (below 1 when even one run is slower)."""
    if not (model_ms > 0 and reference_ms > 0):
        raise ValueError(f"latencies must be positive, not {model_ms} and {reference_ms} ms")
    return reference_ms / model_ms


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
    """The most network runs a face of the shipped file may take on average to fit in MediaPipe's
    landmark model's latency, from the timing step's ``best.json`` and ``references.csv`` (None
    when either file is missing: nothing was timed): ``{"model_ms", "mediapipe_ms", "column",
    "max_runs"}``."""
    if not (Path(shipped_report).is_file() and Path(references).is_file()):
        return None
    model_ms, reference_ms, column = shipped_and_reference_ms(shipped_report, references)
    return {"model_ms": model_ms, "mediapipe_ms": reference_ms, "column": column, "max_runs": runs_within_latency(model_ms, reference_ms)}


def choose_setting(table: pd.DataFrame, tolerance: float = TOLERANCE, max_runs: float | None = None) -> Candidate:
    """The ``(flip, detector_roll, passes, refine_beyond)`` row of :func:`refinement_table` to
    ship. Only rows whose ``runs`` (per face, as measured) are at most ``max_runs`` compete (None:
    all; when none is, the fewest runs alone). Each row's *excess* is the most by which its
    ``nme``, ``median`` or ``p90`` (the worst decile's edge) exceeds the lowest of that column, so
    a setting that helps the typical face but sends the worst ones astray does not pass; of the
    rows whose excess is within ``tolerance`` of the smallest, the fewest ``runs``, then the
    lowest NME, then no flip, then no roll, then fewer passes, then the wider bound.
    Deterministic: the same table always gives the same row."""
    fitting = table[table["runs"] <= max_runs + 1e-9] if max_runs is not None else table
    table = fitting if len(fitting) else table[table["runs"] == table["runs"].min()]
    stats = table[["nme", "median", "p90"]].fillna(np.inf)  # NaN: a row that matched no face, the worst
    excess = (stats - stats.min()).fillna(0.0).max(axis=1)  # inf - inf: every row as bad, none in excess
    good = table.assign(excess=excess, every_face=table["refine_beyond"].isna())[excess <= excess.min() + tolerance]
    best = good.sort_values(["runs", "nme", "flip", "detector_roll", "passes", "every_face", "refine_beyond"], ascending=[True] * 6 + [False]).iloc[0]
    bound = None if math.isnan(best["refine_beyond"]) else float(best["refine_beyond"])
    return bool(best["flip"]), bool(best["detector_roll"]), int(best["passes"]), bound
