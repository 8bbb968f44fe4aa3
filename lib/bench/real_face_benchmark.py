"""The real-face benchmark: several landmark methods on the same labelled photographs.

Each method maps an RGB image to ``(F, N, 2)`` faces (its own detector included). On each
photograph the labelled faces are matched to predicted faces by position
(:func:`lib.submission.score.match_faces`: never by error, so a wild shape on a face counts with
its NME however large; a face no prediction lies on is missed). Per face: NME normalised by the
outer eye corners (300-W's convention, what published numbers use) and by the eye centroids (the
kit's); per method: faces, missed, extra predicted faces (counted apart: they may be real,
unlabelled people), and per normaliser :func:`lib.submission.score.error_summary` over every
labelled face (mean and median with a missed face at the stated cap, FR@0.10 and AUC@0.10 with
it failing, the mean over matched faces), and the median milliseconds per photograph where the
method ran in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from lib.analysis.shapes import bias_share, eye_line_yaw, face_frame_errors, shape_following
from lib.data.dataset import LandmarkDataset
from lib.formats.images import load_image
from lib.formats.table import points_array
from lib.headline import percent
from lib.metrics import nme, nme_by_condition
from lib.models.checkpoint import load_model
from lib.progress import track
from lib.schemes import Scheme
from lib.submission.score import error_summary, match_faces
from lib.training.evaluate import evaluate

Method = Callable[[np.ndarray], np.ndarray]
NORMALISERS = ("outer_eye_corners", "eye_centroids")
YAW_EDGES = (0.0, 0.06, 0.12, 0.19, 0.30, np.inf)  # label_yaw: ~10, 20 and 30 deg of yaw on the renderer's average head, then ~45


def predict_images(method: Method, images: list[str], desc: str = "faces") -> tuple[dict[str, np.ndarray], float]:
    """``{image: (F, N, 2)}`` of ``method`` on each image, and its median ms per image."""
    faces, seconds = {}, []
    for image in track(images, desc=desc):
        pixels = load_image(image)
        started = time.perf_counter()
        faces[image] = method(pixels)
        seconds.append(time.perf_counter() - started)
    return faces, 1000 * float(np.median(seconds))


def score_faces(predictions: Mapping[str, np.ndarray], table: pd.DataFrame, scheme: Scheme) -> pd.DataFrame:
    """One row per labelled face (``table``: ``image``, ``points``, ``subset``), in ``table``'s
    order: ``image``, ``subset``, ``matched``, ``pred_index`` (the matched predicted face, -1 when
    missed) and the NME under each of :data:`NORMALISERS` (``inf`` when missed); then one row per
    extra predicted face (``extra`` True, ``matched`` False, NME NaN). The labelled faces of one
    image are matched together (:func:`lib.submission.score.match_faces`)."""
    rows = {}
    extra = []
    for image, faces in table.groupby("image", sort=False):
        truth = np.stack(faces["points"].to_list()).astype(np.float64)
        predicted = np.asarray(predictions.get(image, np.zeros((0, *truth.shape[1:]))), dtype=np.float64)
        by_truth = {g: p for p, g in match_faces(predicted, truth)}
        for g, (row_index, subset) in enumerate(zip(faces.index, faces["subset"], strict=True)):
            p = by_truth.get(g)
            row = {"image": image, "subset": subset, "matched": p is not None, "pred_index": -1 if p is None else p, "extra": False}
            for normaliser in NORMALISERS:
                row[f"nme_{normaliser}"] = np.inf if p is None else float(nme(predicted[p][None], truth[g][None], scheme, normaliser)[0])
            rows[row_index] = row
        subset = faces["subset"].iloc[0]
        extra += [
            {"image": image, "subset": subset, "matched": False, "pred_index": p, "extra": True}
            for p in sorted(set(range(len(predicted))) - set(by_truth.values()))
        ]
    labelled = pd.DataFrame([rows[index] for index in table.index])
    extra = pd.DataFrame(extra, columns=["image", "subset", "matched", "pred_index", "extra"])
    return pd.concat([labelled, extra] if len(extra) else [labelled], ignore_index=True).astype({"matched": bool, "extra": bool, "pred_index": int})


def summarise_method(faces: pd.DataFrame, threshold: float = 0.10) -> dict:
    """``faces`` (labelled), ``missed``, ``extra`` and, per normaliser,
    :func:`~lib.submission.score.error_summary` over every labelled face (``nme_<normaliser>``,
    ``median_<normaliser>``, ``fr_<normaliser>``, ``auc_<normaliser>``,
    ``nme_matched_<normaliser>``) of one method's :func:`score_faces` table."""
    labelled = faces[~faces["extra"]]
    summary = {"faces": len(labelled), "missed": int((~labelled["matched"]).sum()), "extra": int(faces["extra"].sum())}
    for normaliser in NORMALISERS:
        stats = error_summary(labelled[f"nme_{normaliser}"].to_numpy(np.float64), threshold)
        summary |= {f"{key}_{normaliser}": stats[key] for key in ("nme", "median", "fr", "auc", "nme_matched")}
    return summary


def benchmark(methods: Mapping[str, Method | Mapping[str, np.ndarray]], table: pd.DataFrame, scheme: Scheme) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(summary: one row per method, per-face table with a ``method`` column, predictions per
    method). A method is a callable run here (timed) or predictions already made elsewhere
    (``{image: (F, N, 2)}``, e.g. the final package run as a separate process: not timed)."""
    images = list(dict.fromkeys(table["image"]))
    rows, per_face, predictions = [], [], {}
    for name, method in methods.items():
        if callable(method):
            predictions[name], milliseconds = predict_images(method, images, desc=name)
        else:
            predictions[name], milliseconds = dict(method), float("nan")
        faces = score_faces(predictions[name], table, scheme).assign(method=name)
        per_face.append(faces)
        rows.append({"method": name, **summarise_method(faces), "ms_per_image": milliseconds})
    return pd.DataFrame(rows), pd.concat(per_face, ignore_index=True), predictions


def summary_by_source_and_yaw(faces: pd.DataFrame, table: pd.DataFrame, scheme: Scheme) -> pd.DataFrame:
    """:func:`summarise_method` of each method's labelled faces (:func:`benchmark`'s per-face
    table of ``table``) per source folder (``by`` = ``subset``) and per bin of how far the labels
    show the head turned (``by`` = ``yaw``, :func:`yaw_bins`); ``value`` names the folder or bin.
    Extra predicted faces belong to no labelled face's group: ``extra`` is 0 here."""
    bins = np.asarray(yaw_bins(points_array(table), scheme).astype(str))
    rows = []
    for method, group in faces.groupby("method", sort=False):
        labelled = group[~group["extra"]].assign(yaw=bins)  # a method's labelled rows are in table order
        for column in ("subset", "yaw"):
            for value, part in labelled.groupby(column, sort=True):
                rows.append({"method": method, "by": column, "value": value, **summarise_method(part)})
    return pd.DataFrame(rows)


def matched_points(faces: pd.DataFrame, predictions: Mapping[str, np.ndarray], table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(M, N, 2) predicted and (M, N, 2) labelled points of the M matched faces of one method's
    :func:`score_faces` table (its labelled rows in ``table``'s order)."""
    labelled = faces[~faces["extra"]]
    matched = labelled["matched"].to_numpy(bool)
    predicted = [predictions[image][index] for image, index in zip(labelled["image"][matched], labelled["pred_index"][matched], strict=True)]
    truth = table["points"].to_numpy()[matched]
    empty = np.zeros((0, *table["points"].iloc[0].shape))
    return (np.stack(predicted) if predicted else empty), (np.stack(truth.tolist()) if len(truth) else empty)


def error_bias(predicted: np.ndarray, truth: np.ndarray, scheme: Scheme) -> pd.DataFrame:
    """Where a method errs systematically on (F, N, 2) faces: per part of ``scheme``, the mean
    face-frame error ``dx`` (along the outer-eye-corner line) and ``dy`` (across it, down), the
    ``rms`` error, all in outer-eye-corner distances, and ``bias_share``
    (:func:`lib.analysis.shapes.bias_share` of the part's points); a last row ``all`` for the face."""
    groups = scheme.normaliser(NORMALISERS[0]).groups
    errors = face_frame_errors(predicted, truth, (groups[0][0], groups[1][0]))
    parts = [(part.name, np.arange(part.start, part.stop)) for part in scheme.parts] + [("all", np.arange(scheme.num_points))]
    rows = []
    for name, points in parts:
        part_errors = errors[:, points]
        mean = part_errors.mean(axis=(0, 1))
        rms = float(np.sqrt((part_errors**2).sum(-1).mean()))
        rows.append({"part": name, "dx": mean[0], "dy": mean[1], "rms": rms, "bias_share": bias_share(part_errors)})
    return pd.DataFrame(rows)


def label_yaw(points: np.ndarray, scheme: Scheme) -> np.ndarray:
    """(F,) how far (F, N, 2) labelled faces are turned: the absolute
    :func:`~lib.analysis.shapes.eye_line_yaw` of the middle lower-nose point (the nose tip)
    against the outer eye corners, in corner distances (0: frontal)."""
    groups = scheme.normaliser(NORMALISERS[0]).groups
    return np.abs(eye_line_yaw(points, scheme.part("lower_nose").start + 2, (groups[0][0], groups[1][0])))


def yaw_bins(points: np.ndarray, scheme: Scheme, edges: tuple[float, ...] = YAW_EDGES) -> pd.Categorical:
    """(F,) the bin of each labelled face's :func:`label_yaw` between ``edges`` (the first
    closed), named like ``0.06-0.12``, the categories in order."""
    labels = [f"{low:g}-{high:g}" for low, high in zip(edges[:-1], edges[1:], strict=True)]
    return pd.cut(label_yaw(points, scheme), list(edges), labels=labels, include_lowest=True)


def nme_by_yaw(
    predicted: np.ndarray, truth: np.ndarray, scheme: Scheme, normaliser: str = NORMALISERS[1], edges: tuple[float, ...] = YAW_EDGES
) -> pd.DataFrame:
    """NME and FR@0.10 of (F, N, 2) predicted faces against their labels per :func:`yaw_bins`
    bin of the labels: columns ``yaw`` (the bin), ``faces``, ``nme``, ``fr``, bins in order,
    empty ones left out."""
    table = nme_by_condition(nme(predicted, truth, scheme, normaliser), pd.DataFrame({"yaw": yaw_bins(truth, scheme, edges)}), ["yaw"])
    return table.drop(columns="condition").rename(columns={"value": "yaw"}).astype({"yaw": str})


def turn_and_shape_report(
    matched: Mapping[str, tuple[np.ndarray, np.ndarray]], training: np.ndarray, scheme: Scheme, reference: str = "synthetic test"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per set of matched faces ``{set: ((F, N, 2) predicted, (F, N, 2) labelled)}`` (sets
    without faces left out): :func:`nme_by_yaw` rows with ``set``, the set's ``share`` of its
    faces in each bin, ``train_share`` (the (T, N, 2) ``training`` labels' share) and
    ``x_synthetic`` (the NME over the ``reference`` set's in the same bin); and one row per set
    of :func:`~lib.analysis.shapes.shape_following` (``set``, ``faces``, ``shape_following``)."""
    sets = {name: faces for name, faces in matched.items() if len(faces[0])}
    by_yaw = pd.concat(
        [nme_by_yaw(predicted, truth, scheme).assign(set=name) for name, (predicted, truth) in sets.items()]
        or [pd.DataFrame(columns=["yaw", "faces", "nme", "fr", "set"])],
        ignore_index=True,
    )
    by_yaw["share"] = by_yaw["faces"] / by_yaw.groupby("set")["faces"].transform("sum")
    by_yaw["train_share"] = by_yaw["yaw"].map(pd.Series(yaw_bins(training, scheme)).value_counts(normalize=True).rename(str))
    by_yaw["x_synthetic"] = by_yaw["nme"] / by_yaw["yaw"].map(by_yaw[by_yaw["set"] == reference].set_index("yaw")["nme"])
    following = pd.DataFrame(
        [{"set": name, "faces": len(truth), "shape_following": shape_following(predicted, truth)} for name, (predicted, truth) in sets.items()],
        columns=["set", "faces", "shape_following"],
    )
    return by_yaw[["set", "yaw", "faces", "share", "train_share", "nme", "fr", "x_synthetic"]], following


def score_checkpoints(trainings: Iterable[tuple[str, int, str | Path]], table: pd.DataFrame, scheme: Scheme, batch_size: int = 32) -> pd.DataFrame:
    """The landmark networks alone on real faces: one row per (label, seed, training folder),
    its ``best.pt`` (EMA weights) run on crops of each labelled face by the training crop rule
    (the landmark box: no detector, no calibration, so trainings compare on the same crops), with
    ``nme``, ``fr@0.10`` and ``auc@0.10`` under the outer eye corners (300-W's convention),
    ``nme_eye_centroids``, and ``shape_following`` (:func:`lib.analysis.shapes.shape_following`:
    how much of each face's own shape the network keeps, 1 = all of it). Over seeds,
    :func:`lib.training.ablation.seed_summary` of this table says whether KD helps on real faces too."""
    rows = []
    truth = points_array(table)
    for label, seed, folder in track(list(trainings), desc="networks on real faces"):
        model = load_model(Path(folder) / "best.pt")
        corners, predicted, _ = evaluate(model, LandmarkDataset(table, scheme, model.input_size), scheme, normaliser=NORMALISERS[0], batch_size=batch_size)
        rows.append(
            {
                "model": label,
                "seed": seed,
                "nme": corners["nme"],
                "fr@0.10": corners["fr"],
                "auc@0.10": corners["auc"],
                "nme_eye_centroids": float(nme(predicted, truth, scheme, NORMALISERS[1]).mean()),
                "shape_following": shape_following(predicted, truth),
                "faces": len(table),
            }
        )
    return pd.DataFrame(rows)


HEADLINE_COLUMNS = (
    "set",
    "method",
    "faces",
    "missed",
    "extra",
    "nme_outer_eye_corners",
    "median_outer_eye_corners",
    "nme_matched_outer_eye_corners",
    "fr_outer_eye_corners",
)


def real_faces_headline(summary: pd.DataFrame, seeds: pd.DataFrame | None = None, ours: str = "ours (final package)") -> tuple[str, dict]:
    """The real-face step's headline (:mod:`lib.headline`): each method's aggregate row on each
    set (``real_faces``) and the networks' :func:`~lib.training.ablation.seed_summary` on the
    crops from the labels (``real_faces_seeds``); aggregates only, never a face."""
    numbers = {"real_faces": summary[[c for c in HEADLINE_COLUMNS if c in summary]].to_dict(orient="records")}
    if seeds is not None:
        numbers["real_faces_seeds"] = seeds.to_dict(orient="records")
    mine = summary[summary["method"] == ours]
    line = "; ".join(f"{row['set']}: {percent(row['nme_outer_eye_corners'])} (FR@0.10 {percent(row['fr_outer_eye_corners'], 1)})" for _, row in mine.iterrows())
    return f"the package on real faces, outer corners: {line or 'no set'}", numbers
