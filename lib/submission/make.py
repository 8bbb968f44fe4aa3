"""One call from a model to a finished submission folder ``submissions/<run-id>/``:

    txt/<stem>.txt        one .pts block per face (the PAIR files)
    submission.zip        the zip of them
    leaderboard.csv       one row per face
    calibration.json      the detector-box -> crop rule and how it was fitted (summary.json also
                          holds the close-up model's box map, when the layout may use it)
    detection_threshold.csv  missed and invented faces per candidate detector threshold, when
                          the threshold was measured (a detector set given)
    refinement.csv        NME per candidate (flip, refinement passes), when they were measured
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
from pathlib import Path

from lib.deploy.detector_files import CLOSE_UP_DETECTOR, DEFAULT_DETECTOR
from lib.deploy.run_model import (
    LOW_CONFIDENCE,
    MAX_FACES,
    NO_BOX_MAP,
    BlazeFaceDetector,
    LandmarkModel,
    PackageSettings,
    Pipeline,
    build_detector,
    predict_file,
    pts_text,
)
from lib.formats.pair import list_test_images, read_pair_train
from lib.inference.calibrate import fit_calibration, fit_close_up_box
from lib.inference.torch_model import TorchLandmarkModel
from lib.io import atomic_save_csv, atomic_write_text
from lib.models.checkpoint import load_model
from lib.paths import resolve
from lib.progress import note, track
from lib.schemes import load_scheme
from lib.submission.detection_threshold import LAYOUTS, Layout, measure_detector
from lib.submission.files import write_leaderboard_csv, write_submission_zip
from lib.submission.package import build_package
from lib.submission.refinement import MAX_PASSES, candidates, choose_setting, refinement_table
from lib.submission.score import read_ground_truth, score_submission
from lib.submission.validate import read_submission, validate_submission

MIN_SCORE = 0.4  # detector score threshold when no detector set is given to measure one on
DEFAULT_LAYOUT: Layout = (1, False)  # the full-range model on the whole image, likewise


def landmark_model(path: str | Path, flip: bool = False, threads: int = 2, scheme: str = "ivslab51"):
    """A ``.tflite`` file or a PyTorch checkpoint behind the runtime's landmark interface, with
    flip test-time augmentation if ``flip``."""
    path = resolve(path)
    if path.suffix == ".tflite":
        return LandmarkModel(path, threads, load_scheme(scheme).flip_permutation if flip else None)
    return TorchLandmarkModel(load_model(path), flip)


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


def choose_detector(
    detector: Path,
    close_up_detector: Path,
    detector_set: str | Path | None,
    min_score: float | None,
    layout: Layout | None,
    out_dir: Path,
    num_points: int,
    threads: int,
    close_up_box: tuple[float, float, float] = NO_BOX_MAP,
) -> tuple[Layout, float, dict]:
    """The detector layout (tiles, close-up model) and threshold of a submission and how they were
    set: given, measured on the ``detector_set`` folder (the table goes to
    ``out_dir/detection_threshold.csv``; a given layout is measured alone, a given threshold
    is kept) or the defaults (:data:`DEFAULT_LAYOUT`, :data:`MIN_SCORE`)."""
    if detector_set is None or (min_score is not None and layout is not None):
        layout = DEFAULT_LAYOUT if layout is None else layout
        min_score = MIN_SCORE if min_score is None else min_score
        chosen_by = "given" if detector_set is not None else "given or default (no detector set to measure on)"
        return layout, min_score, {"min_score": min_score, "tiles": layout[0], "close_up": layout[1], "chosen_by": chosen_by}
    folder = resolve(detector_set)
    layouts = LAYOUTS if layout is None else (layout,)
    layout, measured, table, counts = measure_detector(detector, close_up_detector, folder, num_points, layouts, threads, close_up_box)
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


def make_submission(
    model: str | Path,
    images: str | Path,
    out_dir: str | Path,
    train_root: str | Path,
    detector: str | Path = DEFAULT_DETECTOR,
    close_up_detector: str | Path = CLOSE_UP_DETECTOR,
    min_score: float | None = None,
    detector_layout: Layout | None = None,
    detector_set: str | Path | None = None,
    flip: bool | None = None,
    max_faces: int = MAX_FACES,
    ground_truth: str | Path | None = None,
    calibration_faces: int = 200,
    threads: int = 2,
    progress: bool = True,
    scheme: str = "ivslab51",
    refine_passes: int | None = None,
    level_eyes: bool = True,
    max_refine_passes: int = MAX_PASSES,
    max_model_runs: int | None = None,
) -> dict:
    """Predict every test image, write and validate the files; returns a summary dict. The
    ``scheme`` (the model's and the labels') decides the number of points throughout.

    ``min_score`` and ``detector_layout`` ((tiles, close-up model) of
    :class:`~lib.deploy.run_model.FaceDetector`) None: measured on the ``detector_set`` folder
    (scenes and face-free images in the test's layout, disjoint from it:
    :mod:`lib.submission.detection_threshold`), or :data:`MIN_SCORE` and :data:`DEFAULT_LAYOUT`
    without one. An image where no detection passes gets an empty file. ``refine_passes``
    (:class:`~lib.deploy.run_model.Pipeline`) and ``flip`` (the mirrored crop too, averaged)
    None: measured together on the ``detector_set`` (:mod:`lib.submission.refinement`: 0 to
    ``max_refine_passes`` passes, with and without the flip, those of at most
    ``max_model_runs`` network runs a face, None: no cap), or no pass and no flip without one;
    ``level_eyes``: refinement crops level the scheme's eye centroids (where it defines them)."""
    if refine_passes is not None and refine_passes < 0:
        raise ValueError(f"refine_passes must be 0 or more, not {refine_passes}")
    out_dir = resolve(out_dir)
    landmarks = load_scheme(scheme)
    train_table = read_pair_train(resolve(train_root), scheme)
    detector, close_up_detector = resolve(detector), resolve(close_up_detector)
    close_up_box, box_summary = NO_BOX_MAP, None
    if detector_layout[1] if detector_layout else detector_set is not None:  # the close-up model may be used: map its boxes
        full_range, close_up = (BlazeFaceDetector(path, num_threads=threads) for path in (detector, close_up_detector))
        close_up_box, box_summary = fit_close_up_box(full_range, close_up, train_table, calibration_faces)
    layout, min_score, detection_summary = choose_detector(
        detector, close_up_detector, detector_set, min_score, detector_layout, out_dir, landmarks.num_points, threads, close_up_box
    )
    face_detector = build_detector(detector, close_up_detector, min_score, *layout, threads, close_up_box)
    calibration, calibration_summary = fit_calibration(face_detector, train_table, calibration_faces)
    atomic_write_text(out_dir / "calibration.json", json.dumps(calibration_summary, indent=2))
    levelled = level_eyes and "eye_centroids" in landmarks.normalisers
    eyes = tuple(tuple(int(k) for k in group) for group in landmarks.normaliser("eye_centroids").groups) if levelled else None
    flips, pass_counts = ((False, True) if flip is None else (flip,)), (range(max_refine_passes + 1) if refine_passes is None else (refine_passes,))
    pipelines = {f: Pipeline(landmark_model(model, f, threads, scheme), face_detector, calibration, max_faces, level_eyes=eyes) for f in flips}
    refinement_summary = {"flip": flip, "passes": refine_passes, "level_eyes": eyes, "max_model_runs": max_model_runs, "chosen_by": "given"}
    if flip is None or refine_passes is None:
        flip, refine_passes = (bool(flip), refine_passes or 0)
        refinement_summary["chosen_by"] = "none: no detector set to measure the flip and the passes on"
        if detector_set is not None:
            settings = candidates(flips, pass_counts, max_model_runs)
            table = refinement_table(pipelines, resolve(detector_set), landmarks, settings, progress)
            atomic_save_csv(table, out_dir / "refinement.csv", index=False)
            flip, refine_passes = choose_setting(table)
            refinement_summary |= {
                "chosen_by": f"NME on the labelled faces of {detector_set}, (flip, passes) candidates {settings}",
                "table": table.to_dict(orient="records"),
            }
        refinement_summary |= {"flip": flip, "passes": refine_passes}
    pipeline = pipelines[flip]
    pipeline.refine_passes = refine_passes
    paths = list_test_images(resolve(images))
    txt_dir = out_dir / "txt"
    source = f"model={content_digest([resolve(model)])} images={content_digest(paths)} flip={flip} max_faces={max_faces} refine={refine_passes},{eyes} min_score={min_score} layout={layout} close_up_box={close_up_box} calibration={calibration_summary}"
    start_or_resume(txt_dir, source)
    prediction_problems, unsure = [], 0
    for path in track(paths, desc="submission", disable=not progress):
        target = txt_dir / f"{path.stem}.txt"
        if not target.is_file():
            faces, confidences, problem = predict_file(pipeline, path)
            unsure += int((confidences < LOW_CONFIDENCE).sum())
            if problem:
                prediction_problems.append(problem)
                note(problem)
            atomic_write_text(target, pts_text(faces))
    problems = validate_submission(txt_dir, [p.stem for p in paths], landmarks.num_points)
    predictions = read_submission(txt_dir, landmarks.num_points)
    write_submission_zip(txt_dir, out_dir / "submission.zip")
    write_leaderboard_csv(predictions, out_dir / "leaderboard.csv")
    summary = {
        "model": str(model),
        "images": len(paths),
        "faces_predicted": int(sum(len(f) for f in predictions.values())),
        "faces_low_confidence": unsure,  # of the faces predicted in this call (a resumed run counts the rest)
        "low_confidence": LOW_CONFIDENCE,
        "prediction_problems": prediction_problems,
        "problems": [str(p) for p in problems],
        "calibration": calibration_summary,
        "detection": detection_summary,
        "close_up_box": box_summary,
        "refinement": refinement_summary,
    }
    if Path(model).suffix == ".tflite":
        flip_permutation = tuple(int(k) for k in landmarks.flip_permutation) if flip else None
        offset = tuple(float(v) for v in calibration.offset)
        settings = PackageSettings(
            offset,
            calibration.side_factor,
            min_score,
            max_faces,
            flip_permutation,
            layout[0],
            layout[1],
            close_up_box if layout[1] else NO_BOX_MAP,
            refine_passes,
            eyes,
        )
        summary["package"] = str(build_package(resolve(model), detector, settings, out_dir / "final_package.zip", close_up_detector))
    if ground_truth is not None:
        score, faces = score_submission(predictions, read_ground_truth(resolve(ground_truth), landmarks.num_points), landmarks)
        atomic_save_csv(faces, out_dir / "faces.csv", index=False)
        atomic_write_text(out_dir / "score.json", json.dumps(score, indent=2))
        summary["score"] = score
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary
