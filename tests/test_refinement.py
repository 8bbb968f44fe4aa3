"""Refinement passes: the package predicts a face again from the training crop around its own
landmarks (``lib.deploy.run_model.Pipeline``), and the submission measures how many pay, and
whether the flip pays more, within a cap on network runs."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from lib.data.synthetic.face_model import template_2d
from lib.deploy.run_model import (
    MAX_CROP_SHIFT,
    MAX_CROP_ZOOM,
    LandmarkCalibration,
    Pipeline,
    crop_matrix,
    crop_moved_too_far,
    crop_stray,
    detection_roll,
    eye_line_roll,
    landmark_crop,
    pts_text,
)
from lib.schemes import load_scheme
from lib.submission.make import SubmissionSettings
from lib.submission.refinement import (
    candidates,
    choose_setting,
    latency_cap,
    model_runs,
    refinement_table,
    runs_within_latency,
    shipped_and_reference_ms,
)

SCHEME = load_scheme("ivslab51")
EYES = SCHEME.normaliser("eye_centroids").groups


def face(centre=(200.0, 150.0), roll: float = 0.0, unit: float = 50.0) -> np.ndarray:
    """(51, 2) the synthetic template, ``unit`` px between the eye centres, turned by ``roll``
    degrees (clockwise on screen, y pointing down) about ``centre``."""
    base = template_2d()[SCHEME.from_ibug68] * unit
    angle = np.deg2rad(roll)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return base @ turn.T + np.asarray(centre)


def box_middle(points: np.ndarray) -> np.ndarray:
    return (points.min(axis=0) + points.max(axis=0)) / 2.0


class PulledModel:
    """A stand-in landmark model pulled towards its crop: it returns the truth shifted by
    ``pull`` times the offset of the crop centre from the truth's box middle (a heatmap model
    drifts with a crop placed off the face), with a confidence that falls as the crop centre
    moves off the face (1 / (1 + offset / 100 px)), or a ``constant`` one. It records each crop's
    rotation."""

    def __init__(self, truth: dict[int, np.ndarray], pull: float = 0.5, constant: float | None = None):
        self.truth, self.pull, self.constant, self.rotations = truth, pull, constant, []

    def face_landmarks(self, image, centre, scale, rotation=0.0):
        self.rotations.append(rotation)
        points = self.truth[image.shape[0]]
        offset = np.asarray(centre) - box_middle(points)
        confidence = 1.0 / (1.0 + np.linalg.norm(offset) / 100.0) if self.constant is None else self.constant
        return points + self.pull * offset, confidence


class BoxDetector:
    """The truth's landmark box moved by ``shift`` pixels, found on the image of that height; with
    ``eyes``, a detection: the box, then the truth's eye centroids (the image's left eye first)."""

    def __init__(self, truth: dict[int, np.ndarray], shift=(40.0, -20.0), eyes: bool = False):
        self.truth, self.shift, self.eyes, self.calls = truth, np.asarray(shift), eyes, 0

    def __call__(self, image):
        self.calls += 1
        points = self.truth.get(image.shape[0])
        if points is None:
            return np.zeros((0, 8 if self.eyes else 4)), np.zeros(0)
        box = np.concatenate([points.min(axis=0), points.max(axis=0)]) + np.tile(self.shift, 2)
        eyes = np.concatenate([points[list(group)].mean(axis=0) for group in EYES]) if self.eyes else np.zeros(0)
        return np.concatenate([box, eyes])[None], np.array([0.9])


def test_landmark_crop_takes_the_box_along_the_turned_axes():
    square = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]]) - 50.0
    angle = np.deg2rad(30.0)
    turned = square @ np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]).T + [300.0, 200.0]
    centre, scale = landmark_crop(turned, 30.0)
    assert centre == pytest.approx([300.0, 200.0])
    assert scale * 200 == pytest.approx(1.4 * 100)  # the square's own side, not its upright box
    _, upright = landmark_crop(turned)
    assert upright * 200 == pytest.approx(1.4 * 100 * (np.cos(angle) + np.sin(angle)))


@pytest.mark.parametrize("roll", [-25.0, 0.0, 12.0, 40.0])
def test_eye_line_roll_is_the_crop_rotation_that_levels_the_eyes(roll):
    points = face(roll=roll)
    rotation = eye_line_roll(points, EYES)
    assert rotation == pytest.approx(roll)
    matrix = crop_matrix(box_middle(points), 1.0, 96, rotation)
    eyes = np.array([points[list(group)].mean(axis=0) for group in EYES]) @ matrix[:, :2].T + matrix[:, 2]
    assert eyes[0, 1] == pytest.approx(eyes[1, 1])
    assert eyes[0, 0] < eyes[1, 0]  # left stays left: the face is not turned upside down


def test_each_pass_halves_the_pull_of_a_box_placed_off_the_face():
    truth = face()
    model = PulledModel({64: truth})
    pipeline = Pipeline(model, BoxDetector({64: truth}), LandmarkCalibration((0.0, 0.0), 1.4), refine_passes=2)
    passes = pipeline.predict_passes(np.zeros((64, 64, 3), np.uint8), 3)
    shifts = [np.abs(faces[0] - truth).max(axis=0) for faces, _, _ in passes]
    for step, shift in enumerate(shifts):
        np.testing.assert_allclose(shift, 0.5 ** (step + 1) * np.array([40.0, 20.0]))
    confidences = [confidence[0] for _, _, confidence in passes]
    assert confidences == sorted(confidences)  # each pass's crop sits closer to the face
    faces, scores, confidence = pipeline.predict(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_array_equal(faces, passes[2][0])
    assert scores.tolist() == [0.9]
    assert confidence.tolist() == [confidences[2]]


def test_passes_level_the_eyes_of_a_rolled_face_and_stop_on_non_finite_landmarks():
    truth = face(roll=25.0)
    model = PulledModel({64: truth}, constant=1.0)
    Pipeline(model, BoxDetector({64: truth}), LandmarkCalibration(), level_eyes=EYES).predict_passes(np.zeros((64, 64, 3), np.uint8), 2)
    assert model.rotations == pytest.approx([0.0, 25.0, 25.0])  # the first crop comes from the box, upright
    model.truth = {64: np.full_like(truth, np.nan)}
    model.rotations = []
    passes = Pipeline(model, BoxDetector({64: truth}), LandmarkCalibration(), level_eyes=EYES).predict_passes(np.zeros((64, 64, 3), np.uint8), 2)
    assert len(model.rotations) == 1
    assert len(passes) == 3
    assert all(np.isnan(faces).all() for faces, _, _ in passes)
    empty = Pipeline(model, BoxDetector({}), LandmarkCalibration()).predict_passes(np.zeros((32, 32, 3), np.uint8), 2)
    assert [faces.shape for faces, _, _ in empty] == [(0, 0, 2)] * 3


@pytest.mark.parametrize("roll", [-30.0, 0.0, 25.0])
def test_the_detector_roll_turns_the_first_crop_by_the_eyes_the_detector_found(roll):
    """With ``detector_roll``, the first crop turns by the angle of the detection's eye line
    (:func:`detection_roll`: a known answer, the face's own roll); without it, or for a box
    without eyes, it stays upright. The passes then level the landmarks' eyes as before."""
    truth = face(roll=roll)
    assert detection_roll(np.array([0, 0, 1, 1, 10.0, 20.0, 20.0, 30.0])) == pytest.approx(45.0)
    image = np.zeros((64, 64, 3), np.uint8)
    for detector_roll, eyes, expected in ((True, True, roll), (False, True, 0.0), (True, False, 0.0)):
        model = PulledModel({64: truth}, constant=1.0)
        pipeline = Pipeline(model, BoxDetector({64: truth}, eyes=eyes), LandmarkCalibration(), 1, 1, EYES, detector_roll=detector_roll)
        boxes, _ = pipeline.detect(image)
        assert boxes.shape == (1, 8 if eyes else 4)
        assert pipeline.detect(np.zeros((32, 32, 3), np.uint8))[0].shape == (0, 8 if eyes else 4)  # no face: the columns stay
        pipeline.landmarks(image, boxes)
        assert model.rotations == pytest.approx([expected, roll])


class PushedModel(PulledModel):
    """A model a pass sends astray: from the second crop on, it returns the face shifted by
    ``push`` px to the right, with the confidence ``confidence`` (the first crop: the truth,
    confidence 0.8)."""

    def __init__(self, truth: dict[int, np.ndarray], push: float, confidence: float):
        super().__init__(truth, constant=confidence)
        self.push, self.confidence = push, confidence

    def face_landmarks(self, image, centre, scale, rotation=0.0):
        self.rotations.append(rotation)
        points = self.truth[image.shape[0]]
        if len(self.rotations) == 1:
            return points.copy(), 0.8
        return points + [self.push, 0.0], self.confidence


def test_a_variant_levels_the_eyes_and_flips_without_touching_the_pipeline_it_came_from():
    truth = face(roll=25.0)
    model = PulledModel({64: truth}, constant=1.0)
    model.flip_permutation = None
    upright = Pipeline(model, BoxDetector({64: truth}), LandmarkCalibration(), refine_passes=1)
    levelled = upright.variant(EYES, [1, 0])
    assert (levelled.detector, levelled.calibration, levelled.refine_passes) == (upright.detector, upright.calibration, 1)
    assert levelled.model.flip_permutation.tolist() == [1, 0]
    assert model.flip_permutation is None  # the original keeps its model's settings
    assert upright.level_eyes is None
    assert (levelled.detector_roll, upright.variant(EYES, None, True).detector_roll, upright.detector_roll) == (False, True, False)
    levelled.predict(np.zeros((64, 64, 3), np.uint8))
    upright.predict(np.zeros((64, 64, 3), np.uint8))
    assert model.rotations == pytest.approx([0.0, 25.0, 0.0, 0.0])  # the variant's pass levelled the eyes, the original's did not


@pytest.mark.parametrize(
    ("push", "confidence", "kept"),
    [
        (5.0, 0.9, False),  # a small move, more confident: the pass stands
        (5.0, 0.5, True),  # the pass lowers the confidence: undone
        (300.0, 0.95, True),  # more confident, but its crop would leave the face: undone
    ],
)
def test_a_pass_that_lowers_the_confidence_or_strays_is_undone_and_the_earlier_shape_kept(push, confidence, kept):
    """The package keeps a face's earlier shape when a pass diverges: a pass that lowers the
    confidence is undone, and so is one whose landmarks' own crop lies 300 px (more than
    MAX_CROP_SHIFT of its side) from the crop the pass ran on, however confident."""
    truth = face()
    model = PushedModel({64: truth}, push, confidence)
    pipeline = Pipeline(model, BoxDetector({64: truth}, shift=(0.0, 0.0)), LandmarkCalibration((0.0, 0.0), 1.4), refine_passes=2)
    faces, _, confidences = pipeline.predict(np.zeros((64, 64, 3), np.uint8))
    side = 1.4 * np.max(truth.max(axis=0) - truth.min(axis=0))
    assert 5.0 < MAX_CROP_SHIFT * side < 300.0
    if kept:
        np.testing.assert_array_equal(faces[0], truth)
        assert confidences.tolist() == [0.8]
        assert len(model.rotations) <= 2  # the passes stop at the first undone one
    else:
        np.testing.assert_allclose(faces[0], truth + [5.0, 0.0])
        assert len(model.rotations) == 3  # both passes ran and stood
        assert confidences.tolist() == [0.9]


def test_crop_bounds():
    last = (np.array([100.0, 100.0]), 1.0)  # a 200 px crop
    assert not crop_moved_too_far(last, (np.array([100.0 + 0.99 * MAX_CROP_SHIFT * 200, 100.0]), 1.0))
    assert crop_moved_too_far(last, (np.array([100.0 + 1.01 * MAX_CROP_SHIFT * 200, 100.0]), 1.0))
    assert not crop_moved_too_far(last, (last[0], 0.99 * MAX_CROP_ZOOM))
    assert crop_moved_too_far(last, (last[0], 1.01 * MAX_CROP_ZOOM))
    assert crop_moved_too_far(last, (last[0], 1 / (1.01 * MAX_CROP_ZOOM)))


def test_crop_stray_is_the_larger_shift_along_the_crop_axes_or_half_the_zoom():
    last = (np.array([100.0, 100.0]), 1.0)  # a 200 px crop
    assert crop_stray(last, (np.array([130.0, 90.0]), 1.0)) == pytest.approx(0.15)  # 30 px of 200 across
    assert crop_stray(last, (np.array([100.0, 100.0]), 1.3)) == pytest.approx(0.15)  # 30 % larger: half of it
    assert crop_stray(last, (np.array([110.0, 100.0]), 1.3)) == pytest.approx(0.15)
    # turned by 45 degrees, a shift of (20, 20) px lies along one crop axis: 28.3 px of 200
    assert crop_stray(last, (np.array([120.0, 120.0]), 1.0), 45.0) == pytest.approx(np.hypot(20.0, 20.0) / 200.0)
    assert crop_stray(last, (np.array([120.0, 120.0]), 1.0)) == pytest.approx(0.1)


@pytest.mark.parametrize(("bound_px", "crops"), [(25.0, 1), (15.0, 2), (5.0, 3), (None, 3)])
def test_a_bound_refines_only_a_face_whose_landmarks_ask_for_a_crop_beyond_it(bound_px, crops):
    """The box sits (40, -20) px off the face and the model is pulled half way to its crop: the
    first landmarks ask for a crop 20 px across from the first one, the next 10 px, the next 5
    px. A bound between two of them stops the passes there: the face costs that many crops
    (counted in ``crops_tally``) and keeps the landmarks of its last pass."""
    truth = face()
    model = PulledModel({64: truth})
    side = 1.4 * np.max(truth.max(axis=0) - truth.min(axis=0))  # the first crop's side (the box is the landmarks' own)
    bound = None if bound_px is None else bound_px / side
    pipeline = Pipeline(model, BoxDetector({64: truth}), LandmarkCalibration((0.0, 0.0), 1.4), refine_passes=2, refine_beyond=bound)
    faces, _, _ = pipeline.predict(np.zeros((64, 64, 3), np.uint8))
    assert len(model.rotations) == crops
    np.testing.assert_allclose(np.abs(faces[0] - truth).max(axis=0), 0.5**crops * np.array([40.0, 20.0]))
    assert [pipeline.crops_tally[step] for step in range(3)] == [1, min(crops, 2), crops]
    pipeline.predict(np.zeros((64, 64, 3), np.uint8))
    assert pipeline.crops_tally[2] == 2 * crops  # a running count over faces


def test_the_refinement_table_counts_the_runs_a_bound_saves(tmp_path):
    """Three faces, the boxes 4, 12 and 24 px off (the first landmarks ask for crops 2, 6 and
    12 px across): a bound of 5 px refines two of them, 1.67 runs a face with one pass, and the
    faces refined are those a pass improves; under a cap of 1.7 runs a face, the bound ships."""
    offsets = {300: 4.0, 320: 12.0, 340: 24.0}
    truth = {height: face(centre=(150.0 + height, 160.0)) for height in offsets}
    (tmp_path / "images").mkdir()
    (tmp_path / "gt").mkdir()
    for height, points in truth.items():
        cv2.imwrite(str(tmp_path / "images" / f"face_{height}.png"), np.zeros((height, 400, 3), np.uint8))
        (tmp_path / "gt" / f"face_{height}.txt").write_text(pts_text(points[None]))

    class ShiftedBoxes(BoxDetector):
        def __call__(self, image):
            self.shift = np.array([offsets[image.shape[0]], 0.0])
            return super().__call__(image)

    pipelines = {(False, False): Pipeline(PulledModel(truth, 0.5), ShiftedBoxes(truth), LandmarkCalibration((0.0, 0.0), 1.4))}
    side = 1.4 * np.max(truth[300].max(axis=0) - truth[300].min(axis=0))
    table = refinement_table(pipelines, tmp_path, SCHEME, candidates((False,), (False,), (0, 1), (None, 5.0 / side)), progress=False)
    assert list(zip(table["passes"], table["most_runs"], strict=True)) == [(0, 1), (1, 2), (1, 2)]
    assert table["runs"].tolist() == pytest.approx([1.0, 2.0, 5 / 3])
    distance = np.linalg.norm(np.subtract(*[truth[300][list(group)].mean(axis=0) for group in EYES]))
    errors = {"none": [2.0, 6.0, 12.0], "every": [1.0, 3.0, 6.0], "bounded": [2.0, 3.0, 6.0]}  # px, each face
    for row, name in zip(range(3), ("none", "every", "bounded"), strict=True):
        assert table["nme"].iloc[row] == pytest.approx(np.mean(errors[name]) / distance)
    assert choose_setting(table) == (False, False, 1, None)  # no cap: every face refined is best
    assert choose_setting(table, max_runs=1.7) == (False, False, 1, pytest.approx(5.0 / side))
    assert choose_setting(table, max_runs=1.0) == (False, False, 0, None)
    assert choose_setting(table, max_runs=0.5) == (False, False, 0, None)  # none fits: the fewest runs


def test_the_refinement_table_scores_each_candidate_on_a_labelled_folder(tmp_path):
    truth = {height: face(centre=(150.0 + height, 160.0)) for height in (300, 320, 340)}
    (tmp_path / "images").mkdir()
    (tmp_path / "gt").mkdir()
    for height, points in truth.items():
        cv2.imwrite(str(tmp_path / "images" / f"face_{height}.png"), np.zeros((height, 400, 3), np.uint8))
        (tmp_path / "gt" / f"face_{height}.txt").write_text(pts_text(points[None]))
    cv2.imwrite(str(tmp_path / "images" / "empty.png"), np.zeros((200, 400, 3), np.uint8))
    (tmp_path / "gt" / "empty.txt").write_text("")
    detector = BoxDetector(truth, (8.0, 0.0))
    # the stand-in for the flip: the same model, pulled less by its crop (0.2 instead of 0.5)
    pipelines = {
        (flip, False): Pipeline(PulledModel(truth, pull), detector, LandmarkCalibration((0.0, 0.0), 1.4)) for flip, pull in ((False, 0.5), (True, 0.2))
    }
    distance = np.linalg.norm(np.subtract(*[truth[300][list(group)].mean(axis=0) for group in EYES]))
    every = candidates((False, True), (False,), range(3))
    table = refinement_table(pipelines, tmp_path, SCHEME, every, progress=False)
    assert table["refine_beyond"].isna().all()
    assert table["most_runs"].tolist() == [1, 2, 3, 2, 4, 6]
    assert list(zip(table["flip"], table["detector_roll"], table["passes"], table["runs"], strict=True)) == [
        (False, False, 0, 1),
        (False, False, 1, 2),
        (False, False, 2, 3),
        (True, False, 0, 2),
        (True, False, 1, 4),
        (True, False, 2, 6),
    ]
    assert table["faces"].tolist() == [3] * 6  # the face-free image is left out
    assert detector.calls == 3  # once per image, shared by the two pipelines
    pulled = [8.0 * pull ** (step + 1) for pull in (0.5, 0.2) for step in range(3)]  # px: each pass multiplies the shift by the pull
    np.testing.assert_allclose(table["nme"], np.array(pulled) / distance)
    assert choose_setting(table) == (True, False, 2, None)  # 0.06 px: nothing else within 0.1 points
    assert choose_setting(table, tolerance=0.01) == (True, False, 1, None)  # 4 runs, 0.3 px
    assert choose_setting(table, tolerance=0.02) == (False, False, 2, None)  # 3 runs, 1 px
    assert choose_setting(table, tolerance=0.05) == (True, False, 0, None)  # 2 runs: the flip's 1.6 px beat one pass's 2 px
    assert choose_setting(table, tolerance=0.1) == (False, False, 0, None)
    within_two = candidates((False, True), (False,), range(3), max_runs=2)
    assert within_two == [(False, False, 0, None), (False, False, 1, None), (True, False, 0, None)]
    capped = refinement_table(pipelines, tmp_path, SCHEME, within_two, progress=False)
    pd.testing.assert_frame_equal(capped, table.iloc[[0, 1, 3]].reset_index(drop=True))
    assert choose_setting(capped) == (True, False, 0, None)
    with pytest.raises(ValueError, match="no \\(flip, detector_roll, passes, refine_beyond\\) candidate"):
        refinement_table(pipelines, tmp_path, SCHEME, [], progress=False)


def test_the_fewest_runs_within_the_tolerance_of_the_best_are_chosen():
    def table(nme, flips=(False,) * 3, passes=(0, 1, 2), median=None, p90=None, rolls=None):
        runs = [model_runs(f, p) for f, p in zip(flips, passes, strict=True)]
        rolls = rolls or (False,) * len(flips)
        return pd.DataFrame(
            {
                "flip": flips,
                "detector_roll": rolls,
                "passes": passes,
                "refine_beyond": np.nan,
                "runs": runs,
                "nme": nme,
                "median": median or nme,
                "p90": p90 or nme,
            }
        )

    assert choose_setting(table([0.070, 0.0605, 0.0600])) == (False, False, 1, None)
    assert choose_setting(table([0.070, 0.0605, 0.0600]), tolerance=0.0) == (False, False, 2, None)
    assert choose_setting(table([0.070, 0.0605, 0.0600]), tolerance=0.011) == (False, False, 0, None)
    assert choose_setting(table([0.05, 0.06], passes=(0, 1), flips=(False, False))) == (False, False, 0, None)
    assert choose_setting(table([np.nan, 0.08, 0.07])) == (False, False, 2, None)  # no face matched with no pass
    assert choose_setting(table([np.nan, np.nan], passes=(0, 1), flips=(False, False))) == (False, False, 0, None)
    # equal runs (2): the lower NME, then no flip
    assert choose_setting(table([0.070, 0.0605, 0.0600], flips=(False, False, True), passes=(0, 1, 0))) == (True, False, 0, None)
    assert choose_setting(table([0.070, 0.0600, 0.0600], flips=(False, False, True), passes=(0, 1, 0))) == (False, False, 1, None)
    # the flip on every pass costs double: one pass with it (4 runs) loses to two without (3 runs) within tolerance
    assert choose_setting(table([0.0604, 0.0600], flips=(False, True), passes=(2, 1))) == (False, False, 2, None)
    # the roll costs no run: it ships when it lowers the NME, however little, and not on a tie
    rolled = {"flips": (False, False), "passes": (0, 0), "rolls": (False, True)}
    assert choose_setting(table([0.0700, 0.0699], **rolled)) == (False, True, 0, None)
    assert choose_setting(table([0.0700, 0.0700], **rolled)) == (False, False, 0, None)
    assert choose_setting(table([0.0699, 0.0700], **rolled)) == (False, False, 0, None)


def test_a_pass_that_helps_the_typical_face_but_sends_the_worst_astray_is_not_chosen():
    """One pass lowers the mean and the median by a point but pushes the worst decile's edge up
    by three: its excess (0.03) is larger than no pass's (0.01), so no pass ships. A pass better
    on all three ships; with a tolerance that covers its gain, the fewer runs win again."""
    flips, passes = (False, False), (0, 1)
    table = pd.DataFrame(
        {
            "flip": flips,
            "detector_roll": flips,
            "passes": passes,
            "refine_beyond": np.nan,
            "runs": [1, 2],
            "nme": [0.07, 0.06],
            "median": [0.06, 0.05],
            "p90": [0.09, 0.12],
        }
    )
    assert choose_setting(table) == (False, False, 0, None)
    better_everywhere = table.assign(p90=[0.09, 0.085])
    assert choose_setting(better_everywhere) == (False, False, 1, None)
    assert choose_setting(better_everywhere, tolerance=0.02) == (False, False, 0, None)  # a point of mean within tolerance: the cheaper one


def test_network_runs_stop_where_a_face_would_outlast_the_reference_model():
    assert [model_runs(flip, passes) for flip in (False, True) for passes in (0, 1, 2)] == [1, 2, 3, 2, 4, 6]
    assert runs_within_latency(0.39, 1.05) == pytest.approx(2.6923, abs=1e-4)  # 2 runs 0.78 ms, 3 runs 1.17 ms
    assert runs_within_latency(0.35, 1.05) == pytest.approx(3.0)  # 3 runs of 0.35 ms take exactly 1.05 ms
    assert runs_within_latency(1.2, 1.05) < 1
    every = (False, False, 0, None), (False, False, 1, None), (False, False, 2, None), (True, False, 0, None)
    assert candidates((False, True), (False,), range(3), max_runs=3) == list(every)
    assert candidates((False, True), (False, True), range(2), max_runs=1) == [(False, False, 0, None), (False, True, 0, None)]  # the roll costs no run
    assert candidates((True,), (False,), range(3), max_runs=1) == [(True, False, 0, None)]  # none fits: the cheapest alone
    assert candidates((False, True), (False,), (2, 1), max_runs=0) == [(False, False, 1, None)]
    assert candidates((True,), (True,), (1,)) == [(True, True, 1, None)]
    # a bound leaves a well-placed face at one crop: its passes may fit where every face's do not
    bounded = candidates((False, True), (False,), range(3), (None, 0.05), max_runs=1.2)
    assert bounded == [(False, False, 0, None), (False, False, 1, 0.05), (False, False, 2, 0.05)]
    with pytest.raises(ValueError, match="latencies must be positive"):
        runs_within_latency(0.0, 1.0)


def test_the_latencies_come_from_the_column_the_timing_step_chose_by(tmp_path):
    (tmp_path / "best.json").write_text('{"file": "a.tflite", "nme": 0.06, "litert_ms_t1": 0.4}')
    pd.DataFrame({"name": ["mediapipe", "blazeface"], "litert_ms_t1": [1.1, 2.8], "litert_ms_t2": [0.8, 1.8]}).to_csv(tmp_path / "references.csv", index=False)
    assert shipped_and_reference_ms(tmp_path / "best.json", tmp_path / "references.csv") == (0.4, 1.1, "litert_ms_t1")
    cap = latency_cap(tmp_path / "best.json", tmp_path / "references.csv")
    assert cap == {"model_ms": 0.4, "mediapipe_ms": 1.1, "column": "litert_ms_t1", "max_runs": pytest.approx(2.75)}  # 2.75 x 0.4 ms = 1.1 ms
    assert latency_cap(tmp_path / "none.json", tmp_path / "references.csv") is None  # nothing timed: no cap
    with pytest.raises(ValueError, match="references.csv: no litert_ms_t1 of 'dlib'"):
        shipped_and_reference_ms(tmp_path / "best.json", tmp_path / "references.csv", "dlib")
    (tmp_path / "best.json").write_text('{"file": "a.tflite"}')
    with pytest.raises(ValueError, match="best.json: expected one litert_ms_t"):
        shipped_and_reference_ms(tmp_path / "best.json", tmp_path / "references.csv")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"refine_passes": -1}, "refine_passes must be 0 or more, not -1"),
        ({"refine_passes": 1, "refine_beyond": -0.05}, "refine bounds must be 0 or more, not -0.05"),
        ({"refine_bounds": (0.05, -0.1)}, "refine bounds must be 0 or more, not -0.1"),
        ({"max_faces": 0}, "max_faces must be 1 or more, not 0"),
    ],
)
def test_submission_settings_refuse_a_negative_pass_count_or_bound(settings, message):
    with pytest.raises(ValueError, match=message):
        SubmissionSettings(**settings)
    assert SubmissionSettings(refine_passes=1, refine_beyond=0.0).refine_beyond == 0.0  # a bound of 0: every face that moves at all
