"""Submission files: writers, the validator's every kind of problem, scoring and face matching."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from lib.deploy.run_model import pts_text, right_to_left
from lib.formats.errors import FormatError
from lib.formats.pair import read_faces_folder
from lib.formats.pts import read_pts, read_pts_blocks
from lib.formats.table import points_array
from lib.io import atomic_write_text
from lib.schemes import load_scheme
from lib.submission.files import leaderboard_frame, read_leaderboard_csv, write_leaderboard_csv, write_submission_zip
from lib.submission.make import content_digest, start_or_resume
from lib.submission.score import MATCH_IOU, MISSED_NME, match_faces, read_ground_truth, score_submission
from lib.submission.validate import read_submission, validate_submission

SCHEME = load_scheme("ivslab51")


def face_at(x: float, y: float = 100.0, size: float = 40.0, seed: int = 0) -> np.ndarray:
    """A (51, 2) face-like shape: random points in a box of ``size`` centred on (x, y), with the
    eye points placed so that the eye-centroid distance is ``size / 2``."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-size / 2, size / 2, (51, 2))
    points[19:25] = rng.normal(0, 1, (6, 2)) + [-size / 4, -size / 6]
    points[25:31] = rng.normal(0, 1, (6, 2)) + [size / 4, -size / 6]
    return points + [x, y]


def submission_text(faces: np.ndarray, decimals: int | None = 3) -> str:
    """An image's file as the kit writes it: faces right to left, one .pts block each."""
    return pts_text(faces[right_to_left(faces)], decimals)


def write_submission_folder(predictions: dict[str, np.ndarray], folder, decimals: int | None = 3) -> list:
    paths = [folder / f"{stem}.txt" for stem in sorted(predictions)]
    for path in paths:
        atomic_write_text(path, submission_text(predictions[path.stem], decimals))
    return paths


@pytest.fixture
def predictions() -> dict[str, np.ndarray]:
    return {"image_0001": np.stack([face_at(50, seed=1), face_at(200, seed=2)]), "image_0002": face_at(120, seed=3)[None]}


def test_files_order_faces_right_to_left_and_round_trip(tmp_path, predictions):
    paths = write_submission_folder(predictions, tmp_path / "txt")
    assert [p.name for p in paths] == ["image_0001.txt", "image_0002.txt"]
    blocks = read_pts_blocks(paths[0], 51)
    # The face at x=200 is written first; values survive to the written 3 decimals.
    np.testing.assert_allclose(blocks[0], predictions["image_0001"][1], atol=5e-4)
    np.testing.assert_allclose(blocks[1], predictions["image_0001"][0], atol=5e-4)
    read_back = read_submission(tmp_path / "txt", 51)
    np.testing.assert_allclose(read_back["image_0002"], predictions["image_0002"], atol=5e-4)


def test_zip_is_flat_and_deterministic(tmp_path, predictions):
    write_submission_folder(predictions, tmp_path / "txt")
    first = write_submission_zip(tmp_path / "txt", tmp_path / "a.zip").read_bytes()
    second = write_submission_zip(tmp_path / "txt", tmp_path / "b.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert archive.namelist() == ["image_0001.txt", "image_0002.txt"]
    assert validate_submission(tmp_path / "a.zip", ["image_0001", "image_0002"], 51) == []


def test_leaderboard_csv_matches_the_txt_order(tmp_path, predictions):
    frame = leaderboard_frame(predictions)
    assert list(frame.columns[:4]) == ["image_id", "face_index", "x0", "y0"]
    assert frame.shape == (3, 2 + 102)
    assert frame.loc[0, "x0"] == pytest.approx(predictions["image_0001"][1, 0, 0])  # right-most face first
    read_back = read_leaderboard_csv(write_leaderboard_csv(predictions, tmp_path / "lb.csv"))
    np.testing.assert_allclose(read_back["image_0001"][0], predictions["image_0001"][1], atol=5e-4)


def broken_texts(good: str) -> dict[str, tuple[str, int | None, str]]:
    """name -> (file text, expected line, expected message fragment) of each kind of problem."""
    lines = good.splitlines()
    fifty = "\n".join(lines[:3] + lines[3:53] + ["}"]) + "\n"  # header says 51, 50 points follow
    nan = "\n".join(lines[:10] + ["nan 3.0"] + lines[11:]) + "\n"
    header = "\n".join(["version 1"] + lines[1:]) + "\n"
    return {
        "fifty": (fifty, 54, "block ends after 50 of 51 points"),
        "nan": (nan, 11, "non-finite"),
        "header": (header, 1, "expected 'version: 1'"),
    }


def test_validator_reports_every_kind_of_problem_with_file_and_line(tmp_path):
    folder = tmp_path / "sub"
    good = submission_text(face_at(100)[None])
    for name, (text, _, _) in broken_texts(good).items():
        (folder / f"{name}.txt").parent.mkdir(exist_ok=True)
        (folder / f"{name}.txt").write_text(text)
    # Two faces, left one first: wrong order (the block of the second face starts at line 56: 55 lines a block).
    (folder / "order.txt").write_text(submission_text(face_at(50)[None]) + submission_text(face_at(300)[None]))
    (folder / "empty.txt").write_text("")
    (folder / "stray.txt").write_text(good)
    stems = ["fifty", "nan", "header", "order", "empty", "missing"]
    problems = {p.file: p for p in validate_submission(folder, stems, 51)}
    for name, (_, line, fragment) in broken_texts(good).items():
        assert problems[f"{name}.txt"].line == line
        assert fragment in problems[f"{name}.txt"].message
    assert problems["order.txt"].line == 56
    assert "right to left" in problems["order.txt"].message
    assert "empty.txt" not in problems  # no face found: valid (PAIR's final round has face-free images)
    (tmp_path / "only_empty" / "empty.txt").parent.mkdir()
    (tmp_path / "only_empty" / "empty.txt").write_text("")
    assert read_submission(tmp_path / "only_empty", 51)["empty"].shape == (0, 51, 2)
    assert "missing" in problems["missing.txt"].message
    assert "no test image" in problems["stray.txt"].message
    assert str(problems["nan.txt"]).startswith("nan.txt:11: ")
    assert len(problems) == 6


def test_the_validator_refuses_what_the_organisers_may_reject(tmp_path):
    """Another version, absurd coordinates, a byte-order mark, a name the zip holds twice (garbage
    and a valid copy), and in folder mode an upper-case ``.TXT`` and a subfolder: each a problem."""
    good = submission_text(face_at(100.0)[None])
    cases = {
        "v2": good.replace("version: 1", "version: 2"),
        "v1xyz": good.replace("version: 1", "version:1xyz"),
        "huge": good.replace(good.splitlines()[3], "1e300 5.0"),
        "bom": "\ufeff" + good,
        "fine": good,
    }
    folder = tmp_path / "folder"
    folder.mkdir()
    for stem, text in cases.items():
        (folder / f"{stem}.txt").write_text(text, encoding="utf-8")
    (folder / "upper.TXT").write_text(good)
    (folder / "nested").mkdir()
    (folder / ".source").write_text("the writer's marker")  # hidden: not part of the submission
    stems = [*cases, "upper"]
    problems = {problem.file: str(problem) for problem in validate_submission(folder, stems, 51)}
    assert problems["v2.txt"] == "v2.txt:1: expected 'version: 1', found 'version: 2'"
    assert problems["v1xyz.txt"].startswith("v1xyz.txt:1: expected 'version: 1'")
    assert problems["huge.txt"] == "huge.txt:4: coordinate beyond 1e+06 px in '1e300 5.0'"
    assert "byte-order mark" in problems["bom.txt"]
    assert "fine.txt" not in problems
    assert problems["upper.TXT"] == "upper.TXT: not a .txt file (the suffix must be lower-case .txt)"
    assert problems["upper.txt"] == "upper.txt: missing: no file for test image upper"
    assert problems["nested/"] == "nested/: a folder, or inside one; files must sit at the top level"
    assert ".source" not in problems
    archive = tmp_path / "twice.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("fine.txt", "garbage")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zipped.writestr("fine.txt", good)
    problems = [str(problem) for problem in validate_submission(archive, ["fine"], 51)]
    assert "fine.txt: the zip holds 2 entries of this name; the organisers may read any one of them" in problems
    assert "fine.txt:1: expected 'version: 1', found 'garbage'" in problems  # every copy is checked


def test_pts_labels_follow_one_rule(tmp_path):
    """``version: 1`` only, coordinates within MAX_COORDINATE, a byte-order mark allowed."""
    face = face_at(100.0)
    path = tmp_path / "face.pts"
    path.write_text("\ufeff" + pts_text(face[None], None), encoding="utf-8")
    np.testing.assert_allclose(read_pts(path, 51), face)
    path.write_text(pts_text(face[None], None).replace("version: 1", "version: 99"))
    with pytest.raises(FormatError, match="face.pts:1: expected 'version: 1', found 'version: 99'"):
        read_pts(path, 51)
    path.write_text(pts_text((face - 1e7)[None], None))
    with pytest.raises(FormatError, match="coordinate beyond"):
        read_pts(path, 51)


def test_score_of_ground_truth_is_zero_and_counts_missed_and_extra(synthetic_root, tmp_path):
    table = read_faces_folder(synthetic_root / "ivslab_facial_test", synthetic_root / "ivslab_facial_test_gt")
    truth = {}
    for image, group in table.groupby("image"):
        truth[image.rsplit("/", 1)[1].rsplit(".", 1)[0]] = points_array(group)
    write_submission_folder(truth, tmp_path / "gt_as_submission", decimals=None)
    submitted = read_submission(tmp_path / "gt_as_submission", 51)
    summary, faces = score_submission(submitted, truth, SCHEME)
    assert summary["nme"] == pytest.approx(0.0, abs=1e-12)
    assert (summary["faces"], summary["matched"], summary["missed"], summary["extra"]) == (len(table), len(table), 0, 0)
    assert summary["fr"] == 0.0
    assert summary["auc"] == pytest.approx(1.0)

    # Drop one image's faces, add a far-away face to another, shift a third by a known amount.
    stems = sorted(truth)
    altered = dict(submitted)
    del altered[stems[0]]
    altered[stems[1]] = np.concatenate([submitted[stems[1]], submitted[stems[1]][:1] + 5000.0])
    gt = truth[stems[2]]
    distance = np.linalg.norm(gt[:, 19:25].mean(1) - gt[:, 25:31].mean(1), axis=1)
    altered[stems[2]] = gt + np.stack([0.05 * distance, np.zeros_like(distance)], axis=1)[:, None, :]
    summary, faces = score_submission(altered, truth, SCHEME)
    assert summary["missed"] == len(truth[stems[0]])
    assert summary["extra"] == 1
    shifted = faces[faces["image_id"] == stems[2]]["nme"].to_numpy()
    np.testing.assert_allclose(shifted, 0.05)
    assert summary["fr"] == pytest.approx(len(truth[stems[0]]) / len(table))
    # False faces as failures: the extra face and two faces on an image without ground truth.
    altered["no_face_here"] = submitted[stems[1]][:1].repeat(2, axis=0)
    summary, _ = score_submission(altered, truth, SCHEME)
    assert summary["false_faces"] == 3
    failures = len(truth[stems[0]])  # the 0.05 shift stays under the 0.10 threshold
    assert summary["fr"] == pytest.approx(failures / len(table))
    assert summary["fr_with_false"] == pytest.approx((failures + 3) / (len(table) + 3))
    assert summary["auc_with_false"] == pytest.approx(summary["auc"] * len(table) / (len(table) + 3))


def test_faces_on_face_free_images_are_counted_as_invented(tmp_path):
    truth = {"scene": np.stack([face_at(300), face_at(100)]), "sea": np.zeros((0, 51, 2)), "sky": np.zeros((0, 51, 2))}
    predictions = {"scene": truth["scene"][:1], "sea": np.stack([face_at(50), face_at(200)]), "sky": np.zeros((0, 51, 2))}
    summary, faces = score_submission(predictions, truth, SCHEME)
    assert (summary["faces"], summary["matched"], summary["missed"], summary["missed_share"]) == (2, 1, 1, 0.5)
    assert (summary["face_free_images"], summary["faces_on_face_free"], summary["face_free_with_a_face"]) == (2, 2, 1)
    assert summary["extra"] == summary["false_faces"] == 2
    assert len(faces) == 4  # two ground-truth faces, two invented
    # An empty ground-truth file reads as a face-free image.
    atomic_write_text(tmp_path / "gt" / "sea.txt", "")
    atomic_write_text(tmp_path / "gt" / "scene.txt", pts_text(truth["scene"]))
    read = read_ground_truth(tmp_path / "gt", 51)
    assert read["sea"].shape == (0, 51, 2)
    np.testing.assert_allclose(read["scene"], truth["scene"], atol=1e-3)


def test_a_wild_shape_on_a_face_is_matched_by_position_and_counted_however_large():
    """Matching is by position, never by error: a scrambled shape lying on the face counts with
    its own NME (computed here by hand), a face nothing lies on is missed and enters the mean at
    the stated cap, a shape off every face is extra; mean, median and FR are over every labelled
    face."""
    truth = {"a": face_at(100.0, seed=1)[None], "b": face_at(300.0, seed=2)[None]}
    wild = truth["a"][0][::-1].copy()  # the same points, each landmark on another one's place: inside the face's box
    far = face_at(900.0, seed=3)
    predictions = {"a": wild[None], "b": far[None]}
    summary, faces = score_submission(predictions, truth, SCHEME)
    distance = np.linalg.norm(truth["a"][0][19:25].mean(0) - truth["a"][0][25:31].mean(0))
    wild_nme = np.linalg.norm(wild - truth["a"][0], axis=1).mean() / distance
    assert wild_nme > 0.5  # far above the old error-based matching's 0.5 cut-off
    assert faces.loc[faces["image_id"] == "a", "nme"].iloc[0] == pytest.approx(wild_nme)
    assert (summary["faces"], summary["matched"], summary["missed"], summary["extra"]) == (2, 1, 1, 1)
    assert summary["nme"] == pytest.approx((wild_nme + MISSED_NME) / 2)
    assert summary["median"] == pytest.approx((wild_nme + MISSED_NME) / 2)  # the median of two values
    assert summary["nme_matched"] == pytest.approx(wild_nme)
    assert summary["fr"] == 1.0
    assert summary["auc"] == 0.0


def test_faces_match_by_centre_inside_or_box_overlap():
    labelled = face_at(100.0, y=100.0, size=40.0)[None]  # its box: about 80-120 on both axes
    box = np.array([labelled[0].min(0), labelled[0].max(0)])
    side = box[1] - box[0]
    shifted_half = labelled + [0.55 * side[0], 0.0]  # centre outside the box, IoU (1 - 0.55) / (1 + 0.55) = 0.29
    shifted_less = labelled + [0.45 * side[0], 0.0]  # centre inside the box
    small_in_corner = box[0] + (labelled[0] - box[0]) * 0.2  # a fifth of the size in the box's corner: centre inside, IoU 0.04
    assert MATCH_IOU > (1 - 0.55) / (1 + 0.55)
    assert match_faces(shifted_half, labelled) == []
    assert match_faces(shifted_less, labelled) == [(0, 0)]
    assert match_faces(small_in_corner[None], labelled) == [(0, 0)]
    # Two predictions on one face: the one whose centre is closest takes it, the other is left over.
    assert match_faces(np.stack([shifted_less[0], labelled[0] + 1.0]), labelled) == [(1, 0)]
    # A non-finite face matches nothing.
    assert match_faces(np.full_like(labelled, np.nan), labelled) == []


def test_faces_are_matched_regardless_of_order():
    truth = {"a": np.stack([face_at(300, seed=1), face_at(100, seed=2)])}
    swapped = {"a": truth["a"][::-1].copy()}
    summary, faces = score_submission(swapped, truth, SCHEME)
    assert summary["nme"] == 0.0
    assert faces["pred_index"].tolist() == [1, 0]


def test_submission_folder_resumes_the_same_source_and_clears_another(tmp_path):
    txt = tmp_path / "txt"
    start_or_resume(txt, "model A")
    (txt / "image_0001.txt").write_text("done")
    start_or_resume(txt, "model A")
    assert (txt / "image_0001.txt").read_text() == "done"
    start_or_resume(txt, "model B")
    assert not (txt / "image_0001.txt").exists()


def test_a_new_test_set_under_the_same_names_is_not_resumed(tmp_path):
    """The resume key covers the test images' bytes: same names, new pixels, a new key."""
    images = tmp_path / "images"
    images.mkdir()
    for k in range(3):
        (images / f"image_{k:04d}.png").write_bytes(bytes([k]) * 10)
    paths = sorted(images.iterdir())
    first = content_digest(paths)
    assert content_digest(paths) == first
    (images / "image_0001.png").write_bytes(b"another face")
    assert content_digest(paths) != first
    assert content_digest(paths[::-1]) != content_digest(paths)
    txt = tmp_path / "txt"
    start_or_resume(txt, f"model=m images={first}")
    (txt / "image_0001.txt").write_text("old prediction")
    start_or_resume(txt, f"model=m images={content_digest(paths)}")
    assert not (txt / "image_0001.txt").exists()
