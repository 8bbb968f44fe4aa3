"""The synthetic dataset: PAIR layout, exact labels, determinism, recorded conditions."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lib.analysis.shapes import MeanShapeBaseline, eye_line_yaw
from lib.data.synthetic.face_model import Expression, deform, head_quadrics, landmarks_3d, rotation, sample_identity, template_2d
from lib.data.synthetic.generate import PARTIAL_MARKER, extra_counts, generate
from lib.data.synthetic.render import Appearance, FaceSpec, Light, render_face
from lib.formats.images import image_size, load_image
from lib.formats.pair import PairTree, read_faces_folder, read_pair_train
from lib.formats.pts import read_pts_blocks
from lib.formats.table import WFLW_FLAGS, boxes_array, points_array
from lib.metrics import nme
from lib.schemes import load_scheme
from tests.conftest import SMALL_TEST, SMALL_TRAIN

SUBFOLDERS = {"300W", "afw", "helen", "ibug", "IFPW"}


def test_layout_is_the_pair_layout(synthetic_root):
    train = synthetic_root / "ivslab_facial_train"
    assert {p.name for p in train.iterdir() if p.is_dir()} == SUBFOLDERS
    for sub in SUBFOLDERS:
        stems_images = {p.stem for p in (train / sub / "images").iterdir()}
        stems_labels = {p.stem for p in (train / sub / "labels").glob("*.pts")}
        assert stems_images == stems_labels
    assert sum(1 for _ in train.glob("*/labels/*.pts")) == SMALL_TRAIN
    tests = sorted((synthetic_root / "ivslab_facial_test").iterdir())
    extra = extra_counts(SMALL_TEST)
    assert [p.name for p in tests] == [f"image_{i:04d}.png" for i in range(1, SMALL_TEST + extra["test_empty"] + extra["test_closeup"] + 1)]
    detector_images = sorted((PairTree(synthetic_root).detector / "images").iterdir())
    scenes, face_free, close_ups = extra["detector_scene"], extra["detector_empty"], extra["detector_closeup"]
    assert [p.name for p in detector_images] == [f"image_{i:04d}.png" for i in range(1, scenes + face_free + close_ups + 1)]
    counts = [len(read_pts_blocks(PairTree(synthetic_root).detector / "gt" / f"{p.stem}.txt", 51)) for p in detector_images]
    assert set(counts[:scenes]) <= {1, 2, 3}
    assert counts[scenes:] == [0] * face_free + [1] * close_ups
    assert all(image_size(image) == (1024, 1024) for image in detector_images[scenes + face_free :])
    # its own random stream: no detector image repeats a test image
    assert not {p.read_bytes() for p in detector_images} & {p.read_bytes() for p in tests}
    truths = sorted((synthetic_root / "ivslab_facial_test_gt").glob("*.txt"))
    assert [p.stem for p in truths] == [p.stem for p in tests]
    manifest = json.loads((synthetic_root / "manifest.json").read_text())
    assert manifest["params"]["train"] == SMALL_TRAIN
    assert manifest["images_per_second"] > 0


def test_labels_are_51_points_inside_their_images(synthetic_root):
    table = read_pair_train(synthetic_root / "ivslab_facial_train", check_images=True)
    for row in table.itertuples():
        width, height = image_size(row.image)
        assert row.points.shape == (51, 2)
        assert (row.points > -0.1 * width).all()
        assert (row.points[:, 0] < 1.1 * width).all()
        assert (row.points[:, 1] < 1.1 * height).all()


def test_test_images_hold_scenes_then_face_free_images_then_close_ups(synthetic_root):
    """Scenes of 1-3 faces, right to left; then face-free images (empty ground truth); then one
    face filling most of a 1024 x 1024 frame (PAIR's final round has both)."""
    counts = []
    truths = sorted((synthetic_root / "ivslab_facial_test_gt").glob("*.txt"))
    for truth in truths:
        faces = read_pts_blocks(truth, expected_points=51)
        counts.append(len(faces))
        centres = [face.min(axis=0)[0] / 2 + face.max(axis=0)[0] / 2 for face in faces]
        assert centres == sorted(centres, reverse=True)
    extra = extra_counts(SMALL_TEST)
    assert set(counts[:SMALL_TEST]) <= {1, 2, 3}
    assert max(counts[:SMALL_TEST]) > 1
    assert counts[SMALL_TEST:] == [0] * extra["test_empty"] + [1] * extra["test_closeup"]
    for truth in truths[SMALL_TEST + extra["test_empty"] :]:
        image = synthetic_root / "ivslab_facial_test" / f"{truth.stem}.png"
        assert image_size(image) == (1024, 1024)
        (face,) = read_pts_blocks(truth, expected_points=51)
        assert (face.max(axis=0) - face.min(axis=0)).max() > 0.3 * 1024
    table = read_faces_folder(synthetic_root / "ivslab_facial_test", synthetic_root / "ivslab_facial_test_gt")
    assert len(table) == sum(counts)
    assert table["yaw"].notna().all()


def test_conditions_are_recorded_in_range(synthetic_root):
    conditions = pd.read_csv(synthetic_root / "ivslab_facial_train" / "conditions.csv")
    assert len(conditions) == SMALL_TRAIN
    assert conditions["yaw"].abs().max() <= 60
    assert conditions["pitch"].abs().max() <= 30
    assert conditions["roll"].abs().max() <= 45
    for column in ["mouth_open", "smile", "eye_closure", "occluded_fraction", "blur_sigma", "skin_tone", "face_size", "brightness", "occluder"]:
        assert column in conditions
    for flag in WFLW_FLAGS:
        assert set(conditions[flag]) <= {0, 1}
    plain = conditions["occluder"] == "none"
    assert (conditions.loc[plain, "occluded_fraction"] == 0).all()
    assert conditions["occluded_fraction"].between(0, 1).all()
    assert (conditions.loc[~plain, "occluded_fraction"] > 0).any()  # occluders do cover landmarks


def test_generation_is_deterministic_and_independent_of_workers(tmp_path, synthetic_root):
    again = generate(tmp_path / "again", SMALL_TRAIN, SMALL_TEST, seed=7, workers=2)
    for path in sorted(synthetic_root.rglob("*")):
        if path.is_file() and path.name != "manifest.json":
            assert (again / path.relative_to(synthetic_root)).read_bytes() == path.read_bytes(), path
    other = generate(tmp_path / "other", 4, 1, seed=8)
    assert (other / "ivslab_facial_test" / "image_0001.png").read_bytes() != (synthetic_root / "ivslab_facial_test" / "image_0001.png").read_bytes()


def test_generation_never_replaces_a_folder_it_did_not_write(tmp_path):
    real = tmp_path / "ivslab"
    (real / "ivslab_facial_train" / "300W" / "labels").mkdir(parents=True)
    label = real / "ivslab_facial_train" / "300W" / "labels" / "image_001.pts"
    label.write_text("version: 1\n")
    (real / "manifest.json").write_text('{"params": {"source": "someone else"}}')
    with pytest.raises(FileExistsError, match=re.escape(f"{real} exists and is not a generated dataset")):
        generate(real, 2, 1, seed=3)
    assert label.read_text() == "version: 1\n"
    assert not (tmp_path / "ivslab.partial").exists()  # refused before rendering anything
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (generate(empty, 2, 1, seed=3) / "manifest.json").is_file()
    regenerated = generate(empty, 3, 1, seed=3)  # our own dataset with other parameters: replaced
    assert len(list((regenerated / "ivslab_facial_train").rglob("*.jpg"))) == 3


def test_generation_deletes_only_what_its_manifest_or_mark_proves_it_made(tmp_path):
    """A user's own ``X.partial`` is never cleared; a file a user added inside a generated set
    stops a regeneration with other parameters, naming it; ``--out`` a symbolic link to a
    generated set regenerates the target and keeps the link."""
    out = tmp_path / "set"
    mine = tmp_path / "set.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=re.escape(f"{mine} exists and is not a half-built set of this generator")):
        generate(out, 2, 1, seed=3)
    assert (mine / "notes.txt").read_text() == "mine"
    shutil.rmtree(mine)
    generate(out, 2, 1, seed=3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "ivslab_facial_train/conditions.csv" in manifest["files"]
    assert not (out / PARTIAL_MARKER).exists()
    added = out / "ivslab_facial_train" / "my_photo.jpg"
    added.write_bytes(b"a photograph")
    with pytest.raises(FileExistsError, match=re.escape(f"{out} holds 1 files its manifest does not list (e.g. {added})")):
        generate(out, 3, 1, seed=3)
    assert added.read_bytes() == b"a photograph"
    assert not (tmp_path / "set.partial").exists()  # refused before rendering anything
    added.unlink()
    link = tmp_path / "link"
    link.symlink_to(out)
    assert generate(link, 3, 1, seed=3) == link
    assert link.is_symlink()
    assert len(list((out / "ivslab_facial_train").rglob("*.jpg"))) == 3
    assert not (tmp_path / "link.partial").exists()


def test_mean_shape_baseline_is_far_from_the_truth(synthetic_root):
    scheme = load_scheme("ivslab51")
    train = read_pair_train(synthetic_root / "ivslab_facial_train")
    test = read_faces_folder(synthetic_root / "ivslab_facial_test", synthetic_root / "ivslab_facial_test_gt")
    baseline = MeanShapeBaseline().fit(points_array(train), boxes_array(train))
    errors = nme(baseline.predict(boxes_array(test)), points_array(test), scheme)
    assert errors.mean() > 0.10  # eye-centroid NME; a trained model reaches a few percent


def flat_face(yaw: float, pitch: float, roll: float) -> tuple[np.ndarray, np.ndarray, Appearance]:
    rng = np.random.default_rng(0)
    identity = sample_identity(rng)
    look = Appearance(skin=np.array([0.8, 0.7, 0.6]), hair=np.array([0.1, 0.1, 0.1]), iris=np.array([0.3, 0.2, 0.1]), lips=np.array([0.1, 0.1, 0.9]), bald=True)
    spec = FaceSpec(identity, Expression(), yaw, pitch, roll, 60.0, np.array([160.0, 140.0]), look)
    image = np.zeros((320, 320, 3), np.float32)
    light = Light(np.array([0.0, 0.0, 1.0]), 1.0, np.ones(3), 0.0)
    landmarks = render_face(image, spec, light, rng)
    return image, landmarks, look


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (35, 0, 0), (-20, 15, 30)])
def test_labels_sit_on_the_rendered_features(yaw, pitch, roll):
    """The blue lips painted on the texture appear where the projected lip landmarks say."""
    image, landmarks, _ = flat_face(yaw, pitch, roll)
    lips = (image[..., 2] > 0.6) & (image[..., 0] < 0.3)
    ys, xs = np.nonzero(lips)
    assert len(xs) > 200
    painted = np.array([xs.mean(), ys.mean()])
    labelled = landmarks[48:60].mean(axis=0)
    assert np.linalg.norm(painted - labelled) < 2.0  # pixels, on a face 60 px between the eyes


def test_brow_points_trace_the_upper_edge_of_the_brow():
    """300-W's brow points lie on the brow's upper edge: in each brow point's column the dark brow
    hair starts at the point and hangs below it, as deep as the appearance says at the head."""
    rng = np.random.default_rng(0)
    look = Appearance(skin=np.array([0.9, 0.8, 0.7]), hair=np.array([0.0, 0.0, 0.0]), iris=np.array([0.3, 0.2, 0.1]), lips=np.array([0.8, 0.5, 0.5]), bald=True)
    look.brow_density, look.brow_thickness = 1.0, 0.15
    scale = 100.0
    spec = FaceSpec(sample_identity(rng), Expression(), 0.0, 0.0, 0.0, scale, np.array([200.0, 160.0]), look)
    image = np.zeros((360, 400, 3), np.float32)
    landmarks = render_face(image, spec, Light(np.array([0.0, 0.0, 1.0]), 1.0, np.ones(3), 0.0), rng)
    for head, inwards in ((21, -1), (22, 1)):  # the inner end of each brow, where it is deepest
        x, y = np.round(landmarks[head]).astype(int)
        columns = image[:, x + 3 * inwards : x + 9 * inwards : inwards].mean(axis=(1, 2))  # just inside the brow
        rows = np.nonzero(columns < 0.5)[0]
        rows = rows[(rows > y - 20) & (rows < y + 30)]
        assert abs(rows.min() - y) <= 3  # the hair starts at the point (blurred by a pixel or two) ...
        assert rows.max() - y == pytest.approx(0.15 * scale, abs=4)  # ... and hangs a brow's depth below it


def test_the_average_head_is_as_deep_as_a_face():
    """The landmarks lifted onto the head keep a real face's depth order and rough size (eye-centre
    distances): the nose tip well ahead of the inner eye corners (0.3-0.6; a flat face moves its
    nose and mouth too little when the head turns), the nasion and the nose base between, the upper
    lip ahead of the eyes too (0.2-0.45), the inner eye corners ahead of the outer ones (0.2-0.35);
    turned by 20 deg, the nose tip leaves the eyes' middle by about an eighth of the corner distance."""
    identity = {key: 1.0 for key in ("face_width", "face_height", "eye_spacing", "eye_size", "nose_length", "nose_width", "nose_depth", "mouth_width")}
    identity.update(mouth_height=0.0, brow_height=0.0, jitter=np.zeros((68, 2)))
    depth = landmarks_3d(template_2d(), head_quadrics(identity, Expression()))
    tip, subnasale, nasion, inner, outer = depth[30, 2], depth[33, 2], depth[27, 2], depth[39, 2], depth[36, 2]
    assert 0.3 < tip - inner < 0.6
    assert inner < nasion < tip
    assert inner < subnasale < tip
    assert 0.2 < depth[51, 2] - inner < 0.45
    assert 0.2 < inner - outer < 0.35
    scheme = load_scheme("ivslab51")
    turned = (depth @ rotation(20, 0, 0).T)[:, :2][scheme.from_ibug68]
    corners = scheme.normaliser("outer_eye_corners").groups
    assert eye_line_yaw(turned[None], scheme.part("lower_nose").start + 2, (corners[0][0], corners[1][0]))[0] == pytest.approx(0.12, abs=0.03)


def test_frontal_projection_is_orthographic():
    """Facing the camera, a landmark's pixel is the centre plus scale times its head-frame (x, y)."""
    _, landmarks, _ = flat_face(0, 0, 0)
    xy = deform(sample_identity(np.random.default_rng(0)), Expression())
    np.testing.assert_allclose(landmarks, [160.0, 140.0] + 60.0 * xy, atol=1e-9)


def test_cli_is_idempotent_and_interrupted_runs_leave_no_dataset(tmp_path):
    out = tmp_path / "cli"
    command = [sys.executable, "-m", "lib.data.synthetic", "--out", str(out), "--train", "3", "--test", "1", "--seed", "1"]
    subprocess.run(command, check=True, capture_output=True)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    subprocess.run(command, check=True, capture_output=True)
    assert (out / "manifest.json").stat().st_mtime_ns == stamp  # complete: skipped
    shutil.rmtree(out)  # as if interrupted before completion: only the partial folder exists, with the generator's mark
    (tmp_path / "cli.partial" / "ivslab_facial_train").mkdir(parents=True)
    (tmp_path / "cli.partial" / PARTIAL_MARKER).touch()
    subprocess.run(command, check=True, capture_output=True)
    assert (out / "manifest.json").is_file()
    assert not (tmp_path / "cli.partial").exists()
    assert load_image(out / "ivslab_facial_test" / "image_0001.png").ndim == 3
