"""Refinement passes: the package predicts a face again from the training crop around its own
landmarks (``lib.deploy.run_model.Pipeline``), and the submission measures how many pay."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from lib.data.synthetic.face_model import template_2d
from lib.deploy.run_model import LandmarkCalibration, Pipeline, crop_matrix, eye_line_roll, landmark_crop, pts_text
from lib.schemes import load_scheme
from lib.submission.refinement import choose_passes, passes_within_latency, refinement_table, shipped_and_reference_ms

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
    drifts with a crop placed off the face). It records each crop's rotation."""

    def __init__(self, truth: dict[int, np.ndarray], pull: float = 0.5):
        self.truth, self.pull, self.rotations = truth, pull, []

    def face_landmarks(self, image, centre, scale, rotation=0.0):
        self.rotations.append(rotation)
        points = self.truth[image.shape[0]]
        return points + self.pull * (np.asarray(centre) - box_middle(points))


class BoxDetector:
    """The truth's landmark box moved by ``shift`` pixels, found on the image of that height."""

    def __init__(self, truth: dict[int, np.ndarray], shift=(40.0, -20.0)):
        self.truth, self.shift = truth, np.asarray(shift)

    def __call__(self, image):
        points = self.truth.get(image.shape[0])
        if points is None:
            return np.zeros((0, 4)), np.zeros(0)
        return np.concatenate([points.min(axis=0), points.max(axis=0)])[None] + np.tile(self.shift, 2), np.array([0.9])


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
    shifts = [np.abs(faces[0] - truth).max(axis=0) for faces, _ in passes]
    for step, shift in enumerate(shifts):
        np.testing.assert_allclose(shift, 0.5 ** (step + 1) * np.array([40.0, 20.0]))
    faces, scores = pipeline.predict(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_array_equal(faces, passes[2][0])
    assert scores.tolist() == [0.9]


def test_passes_level_the_eyes_of_a_rolled_face_and_stop_on_non_finite_landmarks():
    truth = face(roll=25.0)
    model = PulledModel({64: truth})
    Pipeline(model, BoxDetector({64: truth}), LandmarkCalibration(), level_eyes=EYES).predict_passes(np.zeros((64, 64, 3), np.uint8), 2)
    assert model.rotations == pytest.approx([0.0, 25.0, 25.0])  # the first crop comes from the box, upright
    model.truth = {64: np.full_like(truth, np.nan)}
    model.rotations = []
    passes = Pipeline(model, BoxDetector({64: truth}), LandmarkCalibration(), level_eyes=EYES).predict_passes(np.zeros((64, 64, 3), np.uint8), 2)
    assert len(model.rotations) == 1
    assert len(passes) == 3
    assert all(np.isnan(faces).all() for faces, _ in passes)
    empty = Pipeline(model, BoxDetector({}), LandmarkCalibration()).predict_passes(np.zeros((32, 32, 3), np.uint8), 2)
    assert [faces.shape for faces, _ in empty] == [(0, 0, 2)] * 3


def test_the_refinement_table_scores_each_pass_count_on_a_labelled_folder(tmp_path):
    truth = {height: face(centre=(150.0 + height, 160.0)) for height in (300, 320, 340)}
    (tmp_path / "images").mkdir()
    (tmp_path / "gt").mkdir()
    for height, points in truth.items():
        cv2.imwrite(str(tmp_path / "images" / f"face_{height}.png"), np.zeros((height, 400, 3), np.uint8))
        (tmp_path / "gt" / f"face_{height}.txt").write_text(pts_text(points[None]))
    cv2.imwrite(str(tmp_path / "images" / "empty.png"), np.zeros((200, 400, 3), np.uint8))
    (tmp_path / "gt" / "empty.txt").write_text("")
    pipeline = Pipeline(PulledModel(truth), BoxDetector(truth, (8.0, 0.0)), LandmarkCalibration((0.0, 0.0), 1.4))
    table = refinement_table(pipeline, tmp_path, SCHEME, max_passes=2, progress=False)
    assert table["passes"].tolist() == [0, 1, 2]
    assert table["faces"].tolist() == [3, 3, 3]  # the face-free image is left out
    distance = np.linalg.norm(np.subtract(*[truth[300][list(group)].mean(axis=0) for group in EYES]))
    np.testing.assert_allclose(table["nme"], [4.0 / distance, 2.0 / distance, 1.0 / distance])
    assert choose_passes(table) == 2  # 4 px over a 50-px eye distance: each pass gains 2-4 points
    assert choose_passes(table, tolerance=0.03) == 1


def test_the_fewest_passes_within_the_tolerance_of_the_best_are_chosen():
    table = pd.DataFrame({"passes": [0, 1, 2], "nme": [0.070, 0.0605, 0.0600]})
    assert choose_passes(table) == 1
    assert choose_passes(table, tolerance=0.0) == 2
    assert choose_passes(table, tolerance=0.011) == 0
    assert choose_passes(pd.DataFrame({"passes": [0, 1], "nme": [0.05, 0.06]})) == 0
    assert choose_passes(pd.DataFrame({"passes": [0, 1, 2], "nme": [np.nan, 0.08, 0.07]})) == 2  # no face matched with no pass
    assert choose_passes(pd.DataFrame({"passes": [0, 1], "nme": [np.nan, np.nan]})) == 0


def test_passes_stop_where_a_face_would_outlast_the_reference_model():
    assert passes_within_latency(0.39, 1.05) == 1  # 2 runs 0.78 ms, 3 runs 1.17 ms
    assert passes_within_latency(0.35, 1.05) == 2  # 3 runs of 0.35 ms take exactly 1.05 ms
    assert passes_within_latency(0.2, 1.05) == 2  # never more than the candidates
    assert passes_within_latency(0.2, 1.05, max_passes=5) == 4
    assert passes_within_latency(1.2, 1.05) == 0
    with pytest.raises(ValueError, match="latencies must be positive"):
        passes_within_latency(0.0, 1.0)


def test_the_latencies_come_from_the_column_the_timing_step_chose_by(tmp_path):
    (tmp_path / "best.json").write_text('{"file": "a.tflite", "nme": 0.06, "litert_ms_t1": 0.4}')
    pd.DataFrame({"name": ["mediapipe", "blazeface"], "litert_ms_t1": [1.1, 2.8], "litert_ms_t2": [0.8, 1.8]}).to_csv(tmp_path / "references.csv", index=False)
    assert shipped_and_reference_ms(tmp_path / "best.json", tmp_path / "references.csv") == (0.4, 1.1, "litert_ms_t1")
    with pytest.raises(ValueError, match="references.csv: no litert_ms_t1 of 'dlib'"):
        shipped_and_reference_ms(tmp_path / "best.json", tmp_path / "references.csv", "dlib")
    (tmp_path / "best.json").write_text('{"file": "a.tflite"}')
    with pytest.raises(ValueError, match="best.json: expected one litert_ms_t"):
        shipped_and_reference_ms(tmp_path / "best.json", tmp_path / "references.csv")
