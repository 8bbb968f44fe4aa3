"""The three-call inference API: load -> detect -> landmarks gives what the package writes, for
a checkpoint and a package alike; what cannot be loaded is named."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from lib.deploy import run_model
from lib.deploy.run_model import DETECTION_COLUMNS, MIN_SCORE, BadInput, PackageSettings
from lib.formats.images import load_image
from lib.inference.landmarker import load_landmarker
from lib.models.checkpoint import save_checkpoint
from lib.models.registry import build_model
from lib.schemes import load_scheme


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    config = {"kind": "student", "input_size": 64}
    path = tmp_path_factory.mktemp("landmarker") / "student.pt"
    save_checkpoint(path, {"model_config": config, "ema": {"module": build_model(config).state_dict(), "updates": 0}})
    return path


def test_the_three_calls_give_the_pipelines_faces_in_the_boxes_order(checkpoint, synthetic_root):
    landmarker = load_landmarker(checkpoint)
    assert (landmarker.refine_passes, landmarker.flip, landmarker.detector.full_range.min_score) == (0, False, MIN_SCORE)  # unmeasured settings
    found = 0
    for path in sorted((synthetic_root / "ivslab_facial_test").glob("*.png"))[:6]:
        image = load_image(path)
        boxes, scores = landmarker.detect(image)
        assert boxes.shape == (len(scores), DETECTION_COLUMNS)  # the box, then the eyes
        assert len(scores) <= landmarker.max_faces
        assert list(scores) == sorted(scores, reverse=True)  # likeliest first
        faces, confidences = landmarker.landmarks(image, boxes)
        written, _, written_confidences = landmarker.predict(image)  # what the package writes, right to left
        if not len(boxes):
            assert faces.shape[0] == written.shape[0] == 0
            continue
        found += len(boxes)
        assert faces.shape == (len(boxes), 51, 2)
        assert confidences.shape == (len(boxes),)
        for face, confidence in zip(faces, confidences, strict=True):
            k = int(np.argmin(np.abs(written[:, :, 0].mean(axis=1) - face[:, 0].mean())))
            np.testing.assert_array_equal(written[k], face)
            assert written_confidences[k] == confidence
    assert found  # the synthetic test images hold faces the detector finds


def test_follow_predicts_from_the_training_crop_around_earlier_landmarks(checkpoint, synthetic_root):
    landmarker = load_landmarker(checkpoint)
    image = load_image(sorted((synthetic_root / "ivslab_facial_test").glob("*.png"))[0])
    points = np.array([[100.0 + 2 * k, 120.0 + (k % 7) * 5] for k in range(51)])
    followed, confidence = landmarker.follow(image, points)
    expected, expected_confidence = landmarker.model.face_landmarks(image, *run_model.landmark_crop(points))
    np.testing.assert_array_equal(followed, expected)
    assert confidence == expected_confidence


def test_a_settings_file_sets_the_flip_and_passes_and_bad_sources_are_named(checkpoint, tmp_path):
    settings = tmp_path / "settings.json"
    flip = tuple(int(k) for k in load_scheme("ivslab51").flip_permutation)
    settings.write_text(PackageSettings((0.1, 0.0), 1.5, 0.5, 2, flip, refine_passes=2).to_json())
    landmarker = load_landmarker(checkpoint, settings)
    assert (landmarker.max_faces, landmarker.refine_passes, landmarker.calibration.side_factor, landmarker.flip) == (2, 2, 1.5, True)
    settings.write_text(PackageSettings((0.1, 0.0), 1.5, 0.5, 2, flip[:10]).to_json())
    with pytest.raises(BadInput, match="settings.json: flip_permutation does not fit the 51 landmarks of .*student.pt"):
        load_landmarker(checkpoint, settings)
    text = tmp_path / "faces.txt"
    text.write_text("not a model")
    with pytest.raises(BadInput, match="faces.txt: not a package"):
        load_landmarker(text)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("readme.txt", "no model here")
    with pytest.raises(BadInput, match="broken.zip: not a usable package"):
        load_landmarker(broken)
    with pytest.raises(BadInput, match="missing.zip: package not found"):
        load_landmarker(tmp_path / "missing.zip")
