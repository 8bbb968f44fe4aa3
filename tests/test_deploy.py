"""The standalone runtime (detector, crop, text) against the project's own functions, the box
calibration, and PyTorch inference with flip test-time augmentation."""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lib.data.synthetic.generate import DETECTOR_KINDS, PARTIAL_MARKER, extra_counts
from lib.deploy import run_model
from lib.deploy.detector_files import CLOSE_UP_DETECTOR, DEFAULT_DETECTOR, FILES, sha256
from lib.deploy.run_model import BLAZEFACE_SPECS, BlazeFaceDetector, LandmarkCalibration, blazeface_anchors, box_iou, weighted_nms
from lib.formats.errors import FormatError
from lib.formats.images import load_image
from lib.formats.pair import PairTree, read_faces_folder, read_pair_train
from lib.formats.pts import read_pts, read_pts_blocks, write_pts
from lib.inference.calibrate import fit_calibration, fit_close_up_box, landmark_boxes
from lib.inference.torch_model import TorchLandmarkModel
from lib.models.checkpoint import save_checkpoint
from lib.models.registry import build_model
from lib.paths import resolve
from lib.schemes import load_scheme
from lib.submission.detection_threshold import choose_layout, choose_threshold, measure_detector, threshold_table
from lib.submission.make import SubmissionSettings, choose_detector, make_submission
from lib.submission.package import package_requirements
from lib.submission.threshold_seeds import measure_seeds, set_name
from lib.submission.validate import validate_submission
from tests.conftest import SMALL_TEST, with_jaw, write_300w_tree


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    path = resolve(DEFAULT_DETECTOR)
    if not path.is_file():
        pytest.fail(f"{path} is missing: `make detector` extracts it (make test does)")
    return BlazeFaceDetector(path, min_score=0.4)


def test_anchor_layouts_match_the_model_outputs():
    assert len(blazeface_anchors(BLAZEFACE_SPECS[128])) == 896
    assert len(blazeface_anchors(BLAZEFACE_SPECS[192])) == 2304
    short = blazeface_anchors(BLAZEFACE_SPECS[128])
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[1], short[0])  # two anchors per stride-8 cell
    np.testing.assert_allclose(short[512], [0.5 / 8, 0.5 / 8])  # then the stride-16 grid


def test_iou_and_weighted_nms_by_hand():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=float)
    assert box_iou(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(90 / 110)
    kept, scores = weighted_nms(boxes, np.array([0.9, 0.6, 0.8]), 0.3)
    np.testing.assert_allclose(kept[0], [0.6 / 1.5, 0, 10 + 0.6 / 1.5, 10])  # score-weighted mean
    np.testing.assert_allclose(kept[1], boxes[2])
    np.testing.assert_allclose(scores, [0.9, 0.8])


def test_detector_finds_the_synthetic_test_faces(detector, synthetic_root):
    table = read_faces_folder(synthetic_root / "ivslab_facial_test", synthetic_root / "ivslab_facial_test_gt")
    found = 0
    for image, group in table.groupby("image"):
        boxes, scores = detector(load_image(image))
        assert np.all(np.diff(scores) <= 0)  # likeliest first
        truth = landmark_boxes(np.stack(group["points"].to_list()))
        found += int((box_iou(truth, boxes).max(axis=1) > 0.2).sum()) if len(boxes) else 0
    assert found >= 0.6 * len(table)


def test_detector_boxes_follow_the_image_when_it_is_padded(detector, synthetic_root):
    image = load_image(sorted((synthetic_root / "ivslab_facial_test").glob("*.png"))[0])
    boxes, _ = detector(image)
    padded = np.zeros((image.shape[0] + 40, image.shape[1] + 100, 3), np.uint8)
    padded[40:, 100:] = image
    moved, _ = detector(padded)
    assert len(boxes) >= 1
    shifted = boxes + np.tile([100, 40], 4)  # the box's corners and the eyes
    overlap = box_iou(shifted, moved)
    assert overlap.max(axis=1).min() > 0.7
    for found, match in zip(shifted, moved[overlap.argmax(axis=1)], strict=True):
        assert np.abs(match[4:] - found[4:]).max() < 0.1 * (found[2] - found[0])  # the eyes moved with the face


def test_calibration_maps_detector_boxes_onto_landmark_crops(detector, synthetic_root):
    table = read_pair_train(synthetic_root / "ivslab_facial_train")
    calibration, summary = fit_calibration(detector, table, faces=len(table))
    assert summary["recall"] > 0.7
    # Applied to the same faces, the rule's crop centre is within a tenth of the crop side of the
    # landmark-box centre for most of them.
    errors = []
    for image, points in zip(table["image"], table["points"], strict=True):
        boxes, _ = detector(load_image(image))
        if len(boxes):
            centre, scale = calibration.crop(boxes[0])
            truth = landmark_boxes(points[None])[0]
            errors.append(np.linalg.norm(centre - (truth[:2] + truth[2:]) / 2) / (200 * scale))
    assert np.median(errors) < 0.1


def test_flip_tta_is_the_mean_of_the_crop_and_its_mirror(synthetic_root):
    torch.manual_seed(0)
    model = build_model({"kind": "student", "input_size": 64}).eval()
    image = load_image(sorted((synthetic_root / "ivslab_facial_test").glob("*.png"))[0])
    centre, scale = np.array([150.0, 140.0]), 0.6
    plain, plain_confidence = TorchLandmarkModel(model).face_landmarks(image, centre, scale)
    both, both_confidence = TorchLandmarkModel(model, flip=True).face_landmarks(image, centre, scale)
    # Independently: run the mirrored image at the mirrored centre, mirror the points back and
    # undo the landmark permutation.
    width = image.shape[1]
    mirrored, mirrored_confidence = TorchLandmarkModel(model).face_landmarks(
        np.ascontiguousarray(image[:, ::-1]), np.array([width - 1 - centre[0], centre[1]]), scale
    )
    mirrored[:, 0] = width - 1 - mirrored[:, 0]
    permutation = load_scheme(model.scheme_name).flip_permutation
    np.testing.assert_allclose(both, (plain + mirrored[permutation]) / 2, atol=1e-3)
    assert both_confidence == pytest.approx((plain_confidence + mirrored_confidence) / 2, abs=1e-4)  # the confidence is averaged too


def test_a_face_free_image_gets_no_face_and_an_empty_file(detector, synthetic_root):
    grey = np.full((480, 640, 3), 128, np.uint8)
    assert len(detector(grey)[0]) == 0  # no detection passes: nothing is invented
    face_free = [p for p in sorted((synthetic_root / "ivslab_facial_test_gt").glob("*.txt")) if not p.read_text()]
    pipeline = run_model.Pipeline(TorchLandmarkModel(build_model({"kind": "student", "input_size": 64})), detector, LandmarkCalibration())
    for truth in face_free:
        faces, confidences, problem = run_model.predict_file(pipeline, synthetic_root / "ivslab_facial_test" / f"{truth.stem}.png")
        assert (faces.shape[0], confidences.shape, problem) == (0, (0,), None)
        assert run_model.pts_text(faces) == ""


def outcomes(best_scores: np.ndarray, invented_scores: list[np.ndarray], candidates: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`detection_outcomes`' arrays for faces found at a best score each and invented
    faces of given scores per image."""
    found = np.array([[score >= t for score in best_scores] for t in candidates]).reshape(len(candidates), len(best_scores))
    invented = np.array([[int((scores >= t).sum()) for scores in invented_scores] for t in candidates]).reshape(len(candidates), len(invented_scores))
    return found, invented


def test_detector_threshold_by_hand():
    candidates = [0.1, 0.25, 0.4, 0.6, 0.8]
    found = np.array([0.9, 0.5, 0.05, 0.35])  # the best score on each labelled face (0.05: barely)
    invented = [np.array([0.3]), np.array([0.7, 0.2]), np.array([])]  # scores matching no face, three images
    table = threshold_table(*outcomes(found, invented, candidates), candidates).set_index("min_score")
    np.testing.assert_allclose(table["missed_share"], [1 / 4, 1 / 4, 2 / 4, 3 / 4, 3 / 4])
    np.testing.assert_allclose(table["invented_per_image"], [3 / 3, 2 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(table["cost"], [1.25, 11 / 12, 5 / 6, 13 / 12, 0.75])
    assert choose_threshold(table.reset_index()) == 0.8
    tied_candidates = [0.1, 0.2, 0.3, 0.4, 0.95]
    tied = threshold_table(*outcomes(np.array([0.9]), [np.array([0.15])], tied_candidates), tied_candidates)
    assert choose_threshold(tied) == 0.3  # 0.2, 0.3 and 0.4 cost 0: the middle one
    with pytest.raises(ValueError, match="images to count invented faces on"):
        threshold_table(np.zeros((5, 0), bool), np.zeros((5, 0)), candidates)


def test_detector_layout_by_hand():
    """The lowest cost over layouts and thresholds; a tie goes to the layout of fewer model runs."""
    candidates = [0.3, 0.5, 0.7]

    def layout(best_scores, tiles, close_up, runs):
        return threshold_table(*outcomes(np.array(best_scores), [np.array([0.6])], candidates), candidates).assign(
            tiles=tiles, close_up=close_up, model_runs=runs
        )

    whole, tiled, with_close_up = layout([0.9, 0.4], 1, False, 1), layout([0.9, 0.8], 2, False, 5), layout([0.9, 0.8], 1, True, 2)
    # whole: costs 1, 1.5, 0.5; tiled and close-up: 1, 1, 0 (at 0.7, both)
    assert choose_layout(pd.concat([whole, tiled], ignore_index=True)) == ((2, False), 0.7)
    assert choose_layout(pd.concat([whole, tiled, with_close_up], ignore_index=True)) == ((1, True), 0.7)


def test_tile_grid_by_hand():
    side, corners = run_model.tile_grid(640, 480, 2)
    assert side == 384  # 1.2 x 640 / 2
    assert corners == [(0, 0), (256, 0), (0, 96), (256, 96)]
    side, corners = run_model.tile_grid(640, 480, 3)
    assert (side, sorted({x for x, _ in corners}), sorted({y for _, y in corners})) == (256, [0, 192, 384], [0, 112, 224])
    side, corners = run_model.tile_grid(1000, 200, 2)  # a strip: one row of tiles covers its height
    assert (side, corners) == (600, [(0, 0), (400, 0)])


def test_box_map_and_tile_edges_by_hand():
    boxes = np.array([[10.0, 20.0, 50.0, 80.0]])  # centre (30, 50), 40 x 60, longer side 60
    np.testing.assert_allclose(run_model.map_boxes(boxes, (0.0, 0.0, 1.0)), boxes)
    # centre + (0.1, -0.05) x 60 = (36, 47); extent x 1.5 = 60 x 90
    np.testing.assert_allclose(run_model.map_boxes(boxes, (0.1, -0.05, 1.5)), [[6.0, 2.0, 66.0, 92.0]])
    # A tile at (100, 0) of side 200 in a 400 x 150 image: its left edge is inside the image, its
    # top and bottom are the image's, its right edge (300) is inside.
    in_tile = np.array([[1.0, 50, 40, 90], [50, 0, 90, 40], [60, 60, 199, 100], [60, 60, 120, 199]])
    np.testing.assert_array_equal(run_model.cut_by_tile_edge(in_tile, 100, 0, 200, 400, 150), [True, False, True, False])
    np.testing.assert_array_equal(run_model.cut_by_tile_edge(in_tile, 0, 0, 200, 200, 200), [False] * 4)  # the tile is the image


class FixedBoxes:
    """A detector that returns, for any image, the boxes it is given (and score 0.9 each)."""

    def __init__(self, boxes):
        self.boxes = np.asarray(boxes, dtype=np.float64)

    def __call__(self, image):
        return self.boxes, np.full(len(self.boxes), 0.9)


def test_close_up_box_map_is_fitted_from_faces_both_models_find(synthetic_root):
    """A full-range model whose box is the close-up model's moved by (0.02, -0.05) sides and 1.1x
    as large: the fit returns that map; a face the full-range model misses is left out."""
    table = read_pair_train(synthetic_root / "ivslab_facial_train")
    truth = landmark_boxes(np.stack(table["points"].to_list()))
    union = np.array([truth[:, 0].min(), truth[:, 1].min(), truth[:, 2].max(), truth[:, 3].max()])  # overlaps every face's box
    close = union[None]
    full = run_model.map_boxes(close, (0.02, -0.05, 1.1))
    box_map, summary = fit_close_up_box(FixedBoxes(full), FixedBoxes(close), table, faces=10, min_iou=0.0)
    np.testing.assert_allclose(box_map, (0.02, -0.05, 1.1), atol=1e-9)
    assert summary["both_found"] == 10
    with pytest.raises(RuntimeError, match="found by both"):
        fit_close_up_box(FixedBoxes(np.zeros((0, 4))), FixedBoxes(close), table, faces=5)


def portrait() -> np.ndarray:
    """matplotlib's portrait (grace_hopper.jpg, 512 x 600): one face."""
    import matplotlib

    return load_image(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")


def test_tiles_find_a_small_face_and_the_close_up_model_a_face_filling_the_frame():
    """A 50-px portrait in a 1600 x 1200 frame is too small for the full-range model on the whole
    image; on a 2x2 grid of tiles it is found, its box mapped back onto it. The face cropped and
    enlarged to fill a 1024 x 1024 frame is missed by the full-range model and found with the
    short-range model beside it."""
    import cv2

    full, close_up = resolve(DEFAULT_DETECTOR), resolve(CLOSE_UP_DETECTOR)
    image = portrait()
    small = cv2.resize(image, (50, 59), interpolation=cv2.INTER_AREA)
    crowd = np.full((1200, 1600, 3), 128, np.uint8)
    crowd[500:559, 900:950] = small
    assert len(run_model.build_detector(full, close_up, 0.5, tiles=1)(crowd)[0]) == 0
    tiled = run_model.build_detector(full, close_up, 0.5, tiles=2)
    assert tiled.model_runs == 5
    boxes, _ = tiled(crowd)
    assert len(boxes) == 1
    assert box_iou(boxes, np.array([[900.0, 500.0, 950.0, 559.0]]))[0, 0] > 0.2
    filling = cv2.resize(image[180:420, 150:380], (1024, 1024))
    assert len(run_model.build_detector(full, close_up, 0.5)(filling)[0]) == 0
    boxes, _ = run_model.build_detector(full, close_up, 0.5, use_close_up=True)(filling)
    assert len(boxes) == 1
    assert boxes[0, 2] - boxes[0, 0] > 600  # a box the size of the face, centred across the frame
    assert abs((boxes[0, 0] + boxes[0, 2]) / 2 - 512) < 100
    with pytest.raises(run_model.BadInput, match="close-up .* file is missing"):
        run_model.build_detector(full, None, 0.5, use_close_up=True)


def test_a_threshold_sweep_merges_exactly_as_the_detector_at_that_threshold(synthetic_root):
    """Anchors taken once at 0.1 and merged at t give the faces of the detector built at t, for
    every layout; the close-up model only adds faces where the full-range model has none, and a
    tile keeps only faces small for it."""
    import cv2

    full, close_up = resolve(DEFAULT_DETECTOR), resolve(CLOSE_UP_DETECTOR)
    images = [load_image(p) for p in sorted((PairTree(synthetic_root).detector / "images").glob("*.png"))[:4]]
    crowd = np.full((1200, 1600, 3), 128, np.uint8)
    crowd[500:559, 900:950] = cv2.resize(portrait(), (50, 59), interpolation=cv2.INTER_AREA)
    for tiles, use_close_up in ((1, True), (2, True), (3, False)):
        low = run_model.build_detector(full, close_up, 0.1, tiles, use_close_up)
        for image in [*images, crowd, portrait()]:
            anchors = low.anchor_sets(image)
            for threshold in (0.3, 0.5, 0.7):
                direct = run_model.build_detector(full, close_up, threshold, tiles, use_close_up)(image)
                merged = low.merge(anchors, threshold)
                np.testing.assert_allclose(merged[0], direct[0])
                np.testing.assert_allclose(merged[1], direct[1])
    # The portrait: both models find it; the face is the full-range model's box, untouched.
    boxes, _ = run_model.build_detector(full, close_up, 0.5, 1, True)(portrait())
    np.testing.assert_array_equal(boxes, run_model.build_detector(full, close_up, 0.5)(portrait())[0])
    # The tiles add only anchors small for a tile: here the 50-px face.
    whole = run_model.build_detector(full, close_up, 0.5).anchor_sets(crowd)[0][0]
    tiled = run_model.build_detector(full, close_up, 0.5, 2).anchor_sets(crowd)[0][0]
    np.testing.assert_array_equal(tiled[: len(whole)], whole)
    added = tiled[len(whole) :]
    side, _ = run_model.tile_grid(1600, 1200, 2)
    assert len(added) > 0
    assert np.all(np.maximum(added[:, 2] - added[:, 0], added[:, 3] - added[:, 1]) <= run_model.TILE_FACE_SHARE * side)
    assert box_iou(added, np.array([[900.0, 500.0, 950.0, 559.0]])).min() > 0.2


def test_detector_layout_and_threshold_are_measured_on_the_detector_set(synthetic_root, tmp_path):
    layouts = ((1, False), (2, True))
    layout, chosen, table, counts = measure_detector(resolve(DEFAULT_DETECTOR), resolve(CLOSE_UP_DETECTOR), PairTree(synthetic_root).detector, 51, layouts)
    extra = extra_counts(SMALL_TEST)
    assert counts["face_free_images"] == extra["detector_empty"]
    assert counts["faces"] >= extra["detector_scene"]
    assert layout in layouts
    assert sorted(set(zip(table["tiles"], table["close_up"], table["model_runs"], strict=True))) == [(1, False, 1), (2, True, 6)]
    chosen_rows = table[(table["tiles"] == layout[0]) & (table["close_up"] == layout[1])]
    assert chosen in chosen_rows["min_score"].to_list()
    assert chosen_rows.set_index("min_score").loc[chosen, "cost"] == pytest.approx(table["cost"].min())
    for _, rows in table.groupby(["tiles", "close_up"]):
        assert rows["missed_share"].iloc[0] < 0.3  # at the lowest threshold the faces are found
        assert rows["invented_per_image"].iloc[0] > rows["invented_per_image"].iloc[-1]  # a low threshold invents faces
        assert np.all(np.diff(rows["missed_share"]) >= 0)
    # A set without face-free images cannot price invented faces.
    (tmp_path / "set" / "gt").mkdir(parents=True)
    shutil.copytree(synthetic_root / "ivslab_facial_test", tmp_path / "set" / "images")
    for truth in (synthetic_root / "ivslab_facial_test_gt").glob("*.txt"):
        if truth.read_text():
            shutil.copy(truth, tmp_path / "set" / "gt")
        else:
            (tmp_path / "set" / "images" / f"{truth.stem}.png").unlink()
    with pytest.raises(FormatError, match="needs labelled faces and face-free images"):
        choose_detector(SubmissionSettings(), tmp_path / "set", tmp_path, run_model.NO_BOX_MAP)


def test_calibration_crop_rule():
    rule = LandmarkCalibration((0.1, -0.05), 1.5)
    centre, scale = rule.crop(np.array([10.0, 20.0, 110.0, 100.0]))
    np.testing.assert_allclose(centre, [60 + 10, 60 - 5])
    assert scale == pytest.approx(150 / 200)


def test_detector_files_match_their_recorded_checksums():
    for name, (_, digest) in FILES.items():
        assert sha256((resolve(DEFAULT_DETECTOR).parent / name).read_bytes()) == digest, name


def test_detector_finds_a_real_photograph_and_three_faces_side_by_side(detector):
    """matplotlib ships a portrait (grace_hopper.jpg, 512 x 600): one face, with a box around
    the face's middle, and three of them side by side (the PAIR case of several faces)."""
    import cv2

    image = portrait()
    boxes, scores = detector(image)
    assert len(boxes) == 1
    assert scores[0] > 0.7
    centre, side = (boxes[0, :2] + boxes[0, 2:4]) / 2, boxes[0, 2] - boxes[0, 0]
    assert 220 < centre[0] < 310
    assert 180 < centre[1] < 280
    assert 150 < side < 260
    right_eye, left_eye = boxes[0, 4:6], boxes[0, 6:8]  # the face's right eye on the image's left
    assert boxes[0, 0] < right_eye[0] < centre[0] < left_eye[0] < boxes[0, 2]
    assert boxes[0, 1] < right_eye[1] < centre[1]  # in the box's upper half
    assert boxes[0, 1] < left_eye[1] < centre[1]
    assert abs(run_model.detection_roll(boxes[0])) < 8  # a portrait held upright
    # Turned 20 deg clockwise on screen about the face's centre, the eye line turns with it.
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D(tuple(centre), -20.0, 1.0), image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    rolled, _ = detector(turned)
    assert len(rolled) == 1
    assert run_model.detection_roll(rolled[0]) - run_model.detection_roll(boxes[0]) == pytest.approx(20.0, abs=5.0)
    row = np.concatenate([cv2.resize(image, (171, 200))] * 3, axis=1)
    boxes, _ = detector(row)
    assert len(boxes) == 3
    assert sorted(np.round((boxes[:, 0] + boxes[:, 2]) / 2 // 171).astype(int)) == [0, 1, 2]


def test_pipeline_returns_faces_right_to_left_with_their_scores(detector, synthetic_root):
    torch.manual_seed(0)
    model = TorchLandmarkModel(build_model({"kind": "student", "input_size": 64}))
    pipeline = run_model.Pipeline(model, detector, LandmarkCalibration())
    for path in sorted((synthetic_root / "ivslab_facial_test").glob("*.png"))[:3]:
        faces, scores, confidences = pipeline.predict(load_image(path))
        assert faces.shape == (len(scores), 51, 2)
        assert confidences.shape == scores.shape
        assert np.all(np.diff(run_model.face_centre_x(faces)) <= 0)
        assert np.all(scores > 0)
        np.testing.assert_array_equal(pipeline(load_image(path)), faces)


def test_relative_list_lines_try_the_working_directory_then_the_list_folder(tmp_path, monkeypatch):
    lists, work = tmp_path / "lists", tmp_path / "work"
    for folder in (lists, work):
        (folder / "images").mkdir(parents=True)
    (lists / "images" / "a.png").write_bytes(b"list folder")
    (lists / "images" / "b.png").write_bytes(b"list folder")
    (work / "images" / "b.png").write_bytes(b"working directory")
    monkeypatch.chdir(work)
    assert run_model.resolve_listed("images/a.png", lists) == (lists / "images" / "a.png", None)
    path, note = run_model.resolve_listed("images/b.png", lists)
    assert path == work / "images" / "b.png"
    assert note == f"images/b.png: read {work / 'images' / 'b.png'} (the working directory's), not {lists / 'images' / 'b.png'} (the list folder's)"
    assert run_model.resolve_listed(str(lists / "images" / "a.png"), work) == (lists / "images" / "a.png", None)
    assert run_model.resolve_listed("images/b.png", work) == (work / "images" / "b.png", None)  # the same file: no note


def test_the_package_pins_what_the_kernel_runs():
    """The package's requirements are the kernel's installed versions of its three packages."""
    pinned = dict(line.split("==") for line in package_requirements().splitlines())
    assert list(pinned) == ["ai-edge-litert", "numpy", "opencv-python-headless"]
    assert pinned == {name: importlib.metadata.version(name) for name in pinned}


def test_the_scheme_decides_the_point_count_through_the_submission_path(detector, synthetic_root, tmp_path):
    """A 68-point model and 68-point training labels give 68-point files that validate as such:
    nothing on the way (calibration, prediction, writing, validation) assumes 51."""
    tree, source = PairTree(tmp_path / "tree68"), PairTree(synthetic_root)  # a PAIR tree of 68-point labels
    for label in sorted(source.train.glob("*/labels/*.pts")):
        subset = label.parent.parent.relative_to(source.train)
        write_pts(tree.train / subset / "labels" / label.name, with_jaw(read_pts(label, 51)))
        image = next(label.parent.parent.glob(f"images/{label.stem}.*"))
        (tree.train / subset / "images").mkdir(parents=True, exist_ok=True)
        (tree.train / subset / "images" / image.name).write_bytes(image.read_bytes())
    torch.manual_seed(0)
    config = {"kind": "student", "backbone": "mobilenetv4_conv_small", "head": "pyramid", "head_channels": 16, "input_size": 64, "scheme": "ibug68"}
    save_checkpoint(tmp_path / "student68.pt", {"model_config": config, "ema": {"module": build_model(config).state_dict(), "updates": 0}})
    summary = make_submission(
        tmp_path / "student68.pt",
        synthetic_root / "ivslab_facial_test",
        tmp_path / "out",
        tree.root,
        SubmissionSettings(calibration_faces=12, scheme="ibug68"),
        progress=False,
    )
    assert summary["problems"] == []
    assert summary["faces_predicted"] > 0
    texts = [path.read_text() for path in sorted((tmp_path / "out" / "txt").glob("*.txt"))]
    assert all(block.startswith("n_points: 68") for text in texts for block in text.split("version: 1\n")[1:])
    assert validate_submission(tmp_path / "out" / "txt", [p.stem for p in (synthetic_root / "ivslab_facial_test").glob("*.png")], 51) != []


def test_threshold_seeds_measure_each_set_once_and_choose_as_the_submission_does(tmp_path):
    names = [set_name(2, seed) for seed in (0, 1)]
    (tmp_path / "sets" / f"{names[1]}.partial").mkdir(parents=True)
    (tmp_path / "sets" / f"{names[1]}.partial" / "left_by_a_crash.txt").write_text("")
    (tmp_path / "sets" / f"{names[1]}.partial" / PARTIAL_MARKER).touch()  # the generator's own half-built set
    choices = measure_seeds(tmp_path, [2], [0, 1])
    extra = extra_counts(2)
    assert choices[["size", "seed"]].to_numpy().tolist() == [[2, 0], [2, 1]]
    assert (choices["face_free_images"] == extra["detector_empty"]).all()
    assert (choices["images"] == sum(extra[kind] for kind in DETECTOR_KINDS)).all()
    sets = [tmp_path / "sets" / name for name in names]
    assert (sets[0] / "images" / "image_0001.png").read_bytes() != (sets[1] / "images" / "image_0001.png").read_bytes()
    assert sorted(path.name for path in (tmp_path / "sets").iterdir()) == names
    for row, folder in zip(choices.itertuples(), sets, strict=True):
        assert row.faces == sum(len(read_pts_blocks(truth, 51)) for truth in (folder / "gt").glob("*.txt"))
        sweep = pd.read_csv(tmp_path / "sweeps" / f"{folder.name}.csv")
        assert row.cost == pytest.approx(sweep["cost"].min())
    # a rerun reuses the measured sweep: a doctored one decides the choice
    sweep_path = tmp_path / "sweeps" / f"{names[0]}.csv"
    sweep = pd.read_csv(sweep_path)
    sweep.loc[(sweep["tiles"] == 3) & sweep["close_up"] & np.isclose(sweep["min_score"], 0.9), "cost"] = -1.0
    sweep.to_csv(sweep_path, index=False)
    again = measure_seeds(tmp_path, [2], [0]).iloc[0]
    assert (again["tiles"], again["close_up"], again["min_score"], again["cost"]) == (3, True, 0.9, -1.0)


def test_a_300w_folder_is_the_labelled_tree_a_submission_fits_its_crop_rule_on(synthetic_root, tmp_path):
    """The submission reads its training faces through the dataset kinds: a 300-W folder (68-point
    labels) fits the box-to-crop rule as the PAIR tree of the same faces does."""
    w300 = write_300w_tree(synthetic_root, tmp_path / "300w")
    torch.manual_seed(0)
    save_checkpoint(
        tmp_path / "student.pt",
        {
            "model_config": {"kind": "student", "input_size": 64},
            "ema": {"module": build_model({"kind": "student", "input_size": 64}).state_dict(), "updates": 0},
        },
    )
    images = tmp_path / "images"
    images.mkdir()
    for image in sorted(PairTree(synthetic_root).test.glob("*.png"))[:3]:
        shutil.copy(image, images / image.name)
    settings = SubmissionSettings(calibration_faces=500)
    from_300w = make_submission(tmp_path / "student.pt", images, tmp_path / "a", w300, settings, progress=False)
    from_pair = make_submission(tmp_path / "student.pt", images, tmp_path / "b", synthetic_root, settings, progress=False)
    assert from_300w["problems"] == []
    assert from_300w["calibration"]["faces"] == len(read_pair_train(PairTree(synthetic_root).train)) + 2  # every face, the two extra ones too
    assert from_300w["calibration"]["side_factor"] == pytest.approx(from_pair["calibration"]["side_factor"], rel=0.05)
    np.testing.assert_allclose(from_300w["calibration"]["offset"], from_pair["calibration"]["offset"], atol=0.02)
