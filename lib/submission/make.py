"""One call from a model to a finished submission folder ``submissions/<run-id>/``:

    txt/<stem>.txt        one .pts block per face (the PAIR files)
    submission.zip        the zip of them
    leaderboard.csv       one row per face
    calibration.json      the detector-box -> crop rule and how it was fitted (summary.json also
                          holds the close-up model's box map, when the layout may use it)
    detection_threshold.csv  missed and invented faces per candidate detector threshold, when
                          the threshold was measured (a detector set given)
    refinement.csv        NME and network runs per candidate (flip, detector roll, refinement passes and their bound), when measured
    final_package.zip     for a ``.tflite`` model: the final-round package
    score.json, faces.csv when ground truth is given

Images already written to ``txt/`` by the same model, settings and test images (by content)
are skipped, so an interrupted run resumes (files are written atomically: one that exists is
complete); files of another model, other settings or another test set are removed first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from lib.data.kinds import detect_kind
from lib.deploy.detector_files import CLOSE_UP_DETECTOR, DEFAULT_DETECTOR
from lib.deploy.run_model import (
    LOW_CONFIDENCE,
    MAX_FACES,
    MIN_SCORE,
    NO_BOX_MAP,
    BlazeFaceDetector,
    FaceDetector,
    PackageSettings,
    Pipeline,
    build_detector,
    predict_file,
    pts_text,
)
from lib.formats.pair import list_test_images
from lib.headline import percent
from lib.inference.calibrate import fit_calibration, fit_close_up_box
from lib.inference.landmarker import landmark_model
from lib.io import atomic_save_csv, atomic_write_text
from lib.paths import resolve
from lib.progress import note, track
from lib.schemes import load_scheme
from lib.submission.detection_threshold import LAYOUTS, Layout, measure_detector
from lib.submission.files import write_leaderboard_csv, write_submission_zip
from lib.submission.package import build_package
from lib.submission.refinement import MAX_PASSES, REFINE_BOUNDS, candidates, choose_setting, refinement_table
from lib.submission.score import read_ground_truth, score_submission
from lib.submission.validate import read_submission, validate_submission

DEFAULT_LAYOUT: Layout = (1, False)  # the full-range model on the whole image, likewise


def content_digest(paths: Iterable[Path]) -> str:
    """SHA-256 over the names and bytes of ``paths`` in the order given (hex)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).name.encode() + b"\0")
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


def start_or_resume(txt_dir: Path, source: str) -> None:
    """Keep the files of an interrupted run of the same ``source`` (model, settings); files
    written from anything else are removed, so a folder never mixes two models' predictions."""
    marker = txt_dir / ".source"
    if txt_dir.is_dir() and (not marker.is_file() or marker.read_text() != source):
        for stale in txt_dir.glob("*.txt"):
            stale.unlink()
    atomic_write_text(marker, source)


@dataclass(frozen=True)
class SubmissionSettings:
    """How a submission is made. Each of ``min_score``, ``detector_layout`` ((tiles, close-up
    model) of :class:`~lib.deploy.run_model.FaceDetector`), ``flip`` (the mirrored crop too,
    averaged), ``detector_roll`` (the first crop turned to level the detector's eyes) and
    ``refine_passes`` (:class:`~lib.deploy.run_model.Pipeline`) left None is measured on the
    detector set (:mod:`lib.submission.detection_threshold`, :mod:`lib.submission.refinement`:
    0 to ``max_refine_passes`` passes for every face or for those beyond each of
    ``refine_bounds``, with and without the flip and the roll, those of at most
    ``max_model_runs`` network runs a face on average, None: no cap), or takes its default
    without one (:data:`~lib.deploy.run_model.MIN_SCORE`, :data:`DEFAULT_LAYOUT`, no flip, no
    roll, no pass). Given ``refine_passes`` run for the faces beyond ``refine_beyond`` (None:
    every face). ``detector``/``close_up_detector``: the full- and short-range BlazeFace
    files; ``max_faces``: the likeliest detections kept per image; ``level_eyes``: refinement
    crops level the scheme's eye centroids (where it defines them); ``calibration_faces``:
    training faces the box-to-crop rule is fitted on; ``scheme``: the model's and the labels'
    landmarks (it decides the number of points throughout)."""

    detector: str | Path = DEFAULT_DETECTOR
    close_up_detector: str | Path = CLOSE_UP_DETECTOR
    min_score: float | None = None
    detector_layout: Layout | None = None
    flip: bool | None = None
    detector_roll: bool | None = None
    refine_passes: int | None = None
    refine_beyond: float | None = None
    max_faces: int = MAX_FACES
    level_eyes: bool = True
    max_refine_passes: int = MAX_PASSES
    refine_bounds: tuple[float, ...] = REFINE_BOUNDS
    max_model_runs: float | None = None
    calibration_faces: int = 200
    threads: int = 2
    scheme: str = "ivslab51"

    def __post_init__(self):
        if self.refine_passes is not None and self.refine_passes < 0:
            raise ValueError(f"refine_passes must be 0 or more, not {self.refine_passes}")
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be 1 or more, not {self.max_faces}")
        for bound in (*self.refine_bounds, self.refine_beyond):
            if bound is not None and bound < 0:
                raise ValueError(f"refine bounds must be 0 or more, not {bound}")


def choose_detector(
    settings: SubmissionSettings, detector_set: str | Path | None, out_dir: Path, close_up_box: tuple[float, float, float]
) -> tuple[Layout, float, dict]:
    """The detector layout (tiles, close-up model) and threshold of a submission and how they were
    set: given, measured on the ``detector_set`` folder (the table goes to
    ``out_dir/detection_threshold.csv``; a given layout is measured alone, a given threshold
    is kept) or the defaults (:data:`DEFAULT_LAYOUT`, :data:`~lib.deploy.run_model.MIN_SCORE`)."""
    layout, min_score = settings.detector_layout, settings.min_score
    if detector_set is None or (min_score is not None and layout is not None):
        layout = DEFAULT_LAYOUT if layout is None else layout
        min_score = MIN_SCORE if min_score is None else min_score
        chosen_by = "given" if detector_set is not None else "given or default (no detector set to measure on)"
        return layout, min_score, {"min_score": min_score, "tiles": layout[0], "close_up": layout[1], "chosen_by": chosen_by}
    folder = resolve(detector_set)
    layouts = LAYOUTS if layout is None else (layout,)
    files = (resolve(settings.detector), resolve(settings.close_up_detector))
    layout, measured, table, counts = measure_detector(*files, folder, load_scheme(settings.scheme).num_points, layouts, settings.threads, close_up_box)
    atomic_save_csv(table, out_dir / "detection_threshold.csv", index=False)
    min_score = measured if min_score is None else min_score
    at = table[(table["tiles"] == layout[0]) & (table["close_up"] == layout[1])].set_index("min_score").loc[min_score]
    return (
        layout,
        min_score,
        {
            "min_score": min_score,
            "tiles": layout[0],
            "close_up": layout[1],
            "chosen_by": f"measured on {counts['faces']} faces and {counts['face_free_images']} face-free images of {folder}",
            "missed_share": float(at["missed_share"]),
            "invented_per_image": float(at["invented_per_image"]),
            "detector_ms_per_image": float(at["ms_per_image"]),
        },
    )


def submission_detector(
    settings: SubmissionSettings, train_table, detector_set: str | Path | None, out_dir: Path
) -> tuple[FaceDetector, PackageSettings, dict]:
    """The submission's face detector and box-to-crop rule: the close-up model's box map fitted on
    the training faces when the layout may use it, the layout and threshold
    (:func:`choose_detector`), the calibration fitted on ``train_table``
    (``out_dir/calibration.json``). Returns the detector, the package settings of all that (no
    flip, no refinement yet) and the summary of how each was set."""
    files = (resolve(settings.detector), resolve(settings.close_up_detector))
    close_up_box, box_summary = NO_BOX_MAP, None
    if settings.detector_layout[1] if settings.detector_layout else detector_set is not None:  # the close-up model may be used: map its boxes
        full_range, close_up = (BlazeFaceDetector(path, num_threads=settings.threads) for path in files)
        close_up_box, box_summary = fit_close_up_box(full_range, close_up, train_table, settings.calibration_faces)
    layout, min_score, detection_summary = choose_detector(settings, detector_set, out_dir, close_up_box)
    face_detector = build_detector(*files, min_score, *layout, settings.threads, close_up_box)
    calibration, calibration_summary = fit_calibration(face_detector, train_table, settings.calibration_faces)
    atomic_write_text(out_dir / "calibration.json", json.dumps(calibration_summary, indent=2))
    chosen = PackageSettings(
        tuple(float(v) for v in calibration.offset),
        calibration.side_factor,
        min_score,
        settings.max_faces,
        detector_tiles=layout[0],
        close_up_detector=layout[1],
        close_up_box=close_up_box if layout[1] else NO_BOX_MAP,
    )
    return face_detector, chosen, {"calibration": calibration_summary, "detection": detection_summary, "close_up_box": box_summary}


def choose_refinement(
    model: Path,
    face_detector: FaceDetector,
    chosen: PackageSettings,
    settings: SubmissionSettings,
    detector_set: str | Path | None,
    out_dir: Path,
    progress: bool,
) -> tuple[Pipeline, PackageSettings, dict]:
    """The flip, the detector's roll and the refinement passes (how many, for which faces): given,
    measured on the ``detector_set``'s labelled faces (``out_dir/refinement.csv``), or none.
    Returns the submission's pipeline, ``chosen`` with them, and how they were set."""
    scheme = load_scheme(settings.scheme)
    levelled = settings.level_eyes and "eye_centroids" in scheme.normalisers
    eyes = tuple(tuple(int(k) for k in group) for group in scheme.normaliser("eye_centroids").groups) if levelled else None
    flip, roll, passes = settings.flip, settings.detector_roll, settings.refine_passes
    flips, rolls = ((False, True) if flip is None else (flip,)), ((False, True) if roll is None else (roll,))
    pass_counts = range(settings.max_refine_passes + 1) if passes is None else (passes,)
    bounds = (None, *settings.refine_bounds) if passes is None else (settings.refine_beyond,)
    beyond = settings.refine_beyond
    pipelines = {
        (f, r): Pipeline(
            landmark_model(model, f, settings.threads, settings.scheme), face_detector, chosen.calibration, settings.max_faces, level_eyes=eyes, detector_roll=r
        )
        for f in flips
        for r in rolls
    }
    summary = {
        "flip": flip,
        "detector_roll": roll,
        "passes": passes,
        "refine_beyond": beyond,
        "level_eyes": eyes,
        "max_model_runs": settings.max_model_runs,
        "chosen_by": "given",
    }
    if None in (flip, roll, passes):
        flip, roll, passes = bool(flip), bool(roll), passes or 0
        summary["chosen_by"] = "none: no detector set to measure the flip, the roll and the passes on"
        if detector_set is not None:
            candidate_settings = candidates(flips, rolls, pass_counts, bounds, settings.max_model_runs)
            table = refinement_table(pipelines, resolve(detector_set), scheme, candidate_settings, progress)
            atomic_save_csv(table, out_dir / "refinement.csv", index=False)
            flip, roll, passes, beyond = choose_setting(table, max_runs=settings.max_model_runs)
            row = table[(table["flip"] == flip) & (table["detector_roll"] == roll) & (table["passes"] == passes)]
            row = row[row["refine_beyond"].isna() if beyond is None else row["refine_beyond"] == beyond].iloc[0]
            summary |= {
                "chosen_by": f"NME on the labelled faces of {detector_set}, (flip, detector_roll, passes, refine_beyond) candidates {candidate_settings}",
                "runs_per_face": float(row["runs"]),
                "most_runs": int(row["most_runs"]),
                "table": table.to_dict(orient="records"),
            }
        summary |= {"flip": flip, "detector_roll": roll, "passes": passes, "refine_beyond": beyond}
    pipeline = pipelines[flip, roll]
    pipeline.refine_passes, pipeline.refine_beyond = passes, beyond
    flip_permutation = tuple(int(k) for k in scheme.flip_permutation) if flip else None
    chosen = replace(chosen, flip_permutation=flip_permutation, refine_passes=passes, refine_beyond=beyond, level_eyes=eyes, detector_roll=roll)
    return pipeline, chosen, summary


def write_txt(pipeline: Pipeline, paths: list[Path], txt_dir: Path, source: str, progress: bool) -> tuple[list[str], int]:
    """One ``.pts`` file per image into ``txt_dir``, resuming the files of the same ``source``
    (:func:`start_or_resume`); returns the prediction problems and the count of faces of low
    confidence among those written now."""
    start_or_resume(txt_dir, source)
    problems, unsure = [], 0
    for path in track(paths, desc="submission", disable=not progress):
        target = txt_dir / f"{path.stem}.txt"
        if not target.is_file():
            faces, confidences, problem = predict_file(pipeline, path)
            unsure += int((confidences < LOW_CONFIDENCE).sum())
            if problem:
                problems.append(problem)
                note(problem)
            atomic_write_text(target, pts_text(faces))
    return problems, unsure


def make_submission(
    model: str | Path,
    images: str | Path,
    out_dir: str | Path,
    data_root: str | Path,
    settings: SubmissionSettings = SubmissionSettings(),
    detector_set: str | Path | None = None,
    ground_truth: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Predict every test image in ``images`` with ``model`` (a ``.tflite`` file or a ``.pt``
    checkpoint), write and validate the files, the zip and the leaderboard CSV, and for a
    ``.tflite`` model the final package; returns a summary dict. ``data_root``: the labelled
    tree the model was trained on, of any kind (:mod:`lib.data.kinds`: a PAIR tree, a 300-W
    folder; the box-to-crop rule is fitted on its training faces); ``detector_set``: scenes and
    face-free images in the test's layout, disjoint from it, on which what ``settings`` leaves
    open is measured; ``ground_truth``: the test's labels, to score the submission. An image
    where no detection passes gets an empty file."""
    model, out_dir = resolve(model), resolve(out_dir)
    scheme = load_scheme(settings.scheme)
    data_root = resolve(data_root)
    train_faces = detect_kind(data_root).train_faces(data_root, settings.scheme)
    face_detector, chosen, summary = submission_detector(settings, train_faces, detector_set, out_dir)
    pipeline, chosen, summary["refinement"] = choose_refinement(model, face_detector, chosen, settings, detector_set, out_dir, progress)
    paths = list_test_images(resolve(images))
    source = f"model={content_digest([model])} images={content_digest(paths)} settings={chosen.to_json()} calibration={summary['calibration']}"
    prediction_problems, unsure = write_txt(pipeline, paths, out_dir / "txt", source, progress)
    problems = validate_submission(out_dir / "txt", [p.stem for p in paths], scheme.num_points)
    predictions = read_submission(out_dir / "txt", scheme.num_points)
    write_submission_zip(out_dir / "txt", out_dir / "submission.zip")
    write_leaderboard_csv(predictions, out_dir / "leaderboard.csv")
    summary = {
        "model": str(model),
        "images": len(paths),
        "faces_predicted": int(sum(len(f) for f in predictions.values())),
        "faces_low_confidence": unsure,  # of the faces predicted in this call (a resumed run counts the rest)
        "low_confidence": LOW_CONFIDENCE,
        "prediction_problems": prediction_problems,
        "problems": [str(p) for p in problems],
        **summary,
    }
    if model.suffix == ".tflite":
        package = out_dir / "final_package.zip"
        summary["package"] = str(build_package(model, resolve(settings.detector), chosen, package, resolve(settings.close_up_detector)))
    if ground_truth is not None:
        score, faces = score_submission(predictions, read_ground_truth(resolve(ground_truth), scheme.num_points), scheme)
        atomic_save_csv(faces, out_dir / "faces.csv", index=False)
        atomic_write_text(out_dir / "score.json", json.dumps(score, indent=2))
        summary["score"] = score
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def submission_headline(summary: dict) -> tuple[str, dict]:
    """The submission step's headline (:mod:`lib.headline`) from :func:`make_submission`'s
    summary: the score on the test's faces where it was scored (``submission``) and the chosen
    flip, detector roll, passes, their bound and the network runs a face took on the detector set
    (``refinement``)."""
    score = summary.get("score", {})
    numbers = {
        "submission": {key: score[key] for key in ("faces", "missed", "extra", "nme", "median", "fr", "auc") if key in score},
        "refinement": {key: summary["refinement"].get(key) for key in ("flip", "detector_roll", "passes", "refine_beyond", "runs_per_face", "most_runs")},
        "faces_low_confidence": summary["faces_low_confidence"],
    }
    line = f"{summary['images']} images, {summary['faces_predicted']} faces written, {len(summary['problems'])} problems"
    if "nme" in score:
        line += f"; NME {percent(score['nme'])} over {score['faces']} faces (median {percent(score['median'])}, FR@0.10 {percent(score['fr'], 1)}, {score['missed']} missed)"
    return line, numbers
