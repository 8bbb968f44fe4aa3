"""Readers and writers: exact round trips, and bad input named by file and line."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lib.data.splits import split_table
from lib.deploy.run_model import read_rgb
from lib.formats import FormatError
from lib.formats.audit import audit_faces, drop_bad_faces
from lib.formats.images import image_size, load_image
from lib.formats.pair import UnlabelledImagesWarning, list_test_images, read_faces_folder, read_pair_train
from lib.formats.pts import parse_pts_blocks, read_pts, read_pts_blocks, write_pts
from lib.formats.table import WFLW_FLAGS, make_table, points_array
from lib.formats.w300 import read_300w
from lib.formats.wflw import read_wflw, write_wflw
from lib.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from lib.submission import __main__ as submission_cli
from lib.submission.score import read_ground_truth

PTS_TEXT = "version: 1\nn_points: 3\n{\n10.5 20.25\n1.0 2.0\n300.125 0.75\n}\n"


def test_pts_text_round_trip_is_exact_and_origin_is_one_based(tmp_path):
    path = tmp_path / "a.pts"
    path.write_text(PTS_TEXT)
    points = read_pts(path)
    np.testing.assert_array_equal(points, [[9.5, 19.25], [0, 1], [299.125, -0.25]])
    write_pts(tmp_path / "b.pts", points)
    assert (tmp_path / "b.pts").read_text() == PTS_TEXT
    # Integers without a decimal point read the same.
    path.write_text(PTS_TEXT.replace("1.0 2.0", "1 2"))
    np.testing.assert_array_equal(read_pts(path), points)


def test_pts_text_round_trip_of_many_values(tmp_path):
    rng = np.random.default_rng(5)
    body = "\n".join(f"{float(x)!r} {float(y)!r}" for x, y in rng.uniform(0.5, 4000, (51, 2)))
    text = f"version: 1\nn_points: 51\n{{\n{body}\n}}\n"
    (tmp_path / "a.pts").write_text(text)
    write_pts(tmp_path / "b.pts", read_pts(tmp_path / "a.pts"))
    assert (tmp_path / "b.pts").read_text() == text


def test_pts_array_round_trip_and_multi_face(tmp_path):
    rng = np.random.default_rng(0)
    faces = [rng.uniform(0, 640, (51, 2)) for _ in range(3)]
    write_pts(tmp_path / "image_0001.txt", faces)
    back = read_pts_blocks(tmp_path / "image_0001.txt", expected_points=51)
    assert len(back) == 3
    for original, read in zip(faces, back, strict=True):
        np.testing.assert_allclose(read, original, rtol=0, atol=1e-12)
    write_pts(tmp_path / "fixed.txt", faces[0], decimals=3)
    np.testing.assert_allclose(read_pts(tmp_path / "fixed.txt"), faces[0], atol=5e-4 + 1e-12)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 1\nn_points: 3\n{\n1 2\n3 4\n5 6\n}\n", 2, "n_points is 3, expected 2"),
        ("version: 1\nn_points: 2\n{\n1 2\nabc 4\n}\n", 5, "non-numeric"),
        ("version: 1\nn_points: 2\n{\n1 2\nnan 4\n}\n", 5, "non-finite"),
        ("version: 1\nn_points: 2\n{\n1 2\n}\n", 5, "block ends after 1 of 2"),
        ("version: 1\nn_points: 2\n{\n1 2\n3 4\n", 5, "expected '}'"),
        ("n_points: 2\n{\n1 2\n3 4\n}\n", 1, "expected 'version: 1'"),
        ("version: 1\nn_points: 2\n1 2\n3 4\n}\n", 3, "expected '{'"),
        ("version: 1\nn_points: 2\n{\n1 2 3\n3 4\n}\n", 4, "expected 'x y'"),
    ],
)
def test_pts_errors_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "bad.pts"
    path.write_text(text)
    with pytest.raises(FormatError, match=message) as caught:
        read_pts_blocks(path, expected_points=2)
    assert caught.value.path == path
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}:")


def test_write_refuses_nan(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_pts(tmp_path / "x.pts", np.array([[1.0, np.nan]]))
    assert not (tmp_path / "x.pts").exists()


def test_parse_empty_text_has_no_blocks():
    assert parse_pts_blocks("\n\n", "mem") == []


def make_pair_tree(root, faces=2):
    rng = np.random.default_rng(1)
    expected = {}
    for subset in ("afw", "helen"):
        for i in range(faces):
            (root / subset / "images").mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / subset / "images" / f"f{i}.png")
            points = rng.uniform(1, 39, (51, 2))
            write_pts(root / subset / "labels" / f"f{i}.pts", points)
            expected[(subset, f"f{i}")] = points
    return expected


def test_pair_tree_reader_builds_the_canonical_table(tmp_path):
    expected = make_pair_tree(tmp_path / "train")
    table = read_pair_train(tmp_path / "train", check_images=True)
    assert list(table.columns[:5]) == ["image", "face_index", "points", "box", "subset"]
    assert len(table) == 4
    assert set(table["subset"]) == {"afw", "helen"}
    for row in table.itertuples():
        stem = row.image.rsplit("/", 1)[1].split(".")[0]
        np.testing.assert_allclose(row.points, expected[(row.subset, stem)], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(row.box, [*row.points.min(axis=0), *row.points.max(axis=0)])


def test_pair_tree_errors(tmp_path):
    root = tmp_path / "train"
    make_pair_tree(root)
    (root / "afw" / "images" / "f0.png").unlink()
    with pytest.raises(FormatError, match="label has no image") as caught:
        read_pair_train(root)
    assert caught.value.path.name == "f0.pts"
    with pytest.raises(FormatError, match="not found"):
        read_pair_train(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no labelled faces"):
        read_pair_train(tmp_path / "empty")


def test_nothing_in_a_tree_is_skipped_without_notice(tmp_path):
    """Upper-case suffixes are read, images without labels are reported, and two files with one
    stem are refused naming both."""
    root = tmp_path / "train"
    expected = make_pair_tree(root)
    labels, images = root / "afw" / "labels", root / "afw" / "images"
    (labels / "f1.pts").rename(labels / "f1.PTS")
    (images / "f0.png").rename(images / "f0.PNG")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "extra.jpg")
    with pytest.warns(UnlabelledImagesWarning, match="1 images have no label.*extra.jpg"):
        table = read_pair_train(root)
    assert len(table) == len(expected) == 4
    afw = table[table["subset"] == "afw"].sort_values("image")
    assert [Path(i).name for i in afw["image"]] == ["f0.PNG", "f1.png"]
    np.testing.assert_allclose(afw["points"].iloc[1], expected[("afw", "f1")], atol=1e-12)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "f1.jpg")
    with pytest.raises(FormatError, match=r"1 image stems name more than one file \(f1.jpg, f1.png\)"):
        read_pair_train(root)


def test_the_up_front_check_names_every_bad_face_at_once(tmp_path):
    root = tmp_path / "train"
    make_pair_tree(root)  # 40x50 images, landmarks inside
    (root / "afw" / "images" / "f0.png").write_bytes(b"not a png at all")
    write_pts(root / "afw" / "labels" / "f1.pts", np.full((51, 2), 7.0))  # every point on one pixel
    far = np.random.default_rng(0).uniform(1, 39, (51, 2))
    far[10] = [400.0, 20.0]
    write_pts(root / "helen" / "labels" / "f1.pts", far)
    table = read_pair_train(root)
    problems = audit_faces(table)
    assert [(Path(p.image).parent.parent.name, Path(p.image).name) for p in problems] == [("afw", "f0.png"), ("afw", "f1.png"), ("helen", "f1.png")]
    assert "not a readable image" in problems[0].problem
    assert "degenerate face box 0.0 x 0.0 px" in problems[1].problem
    assert "1 landmarks lie far outside the 50x40 image (first: point 11 at [400.0, 20.0])" in problems[2].problem
    with pytest.raises(ValueError, match="3 faces cannot be trained on") as caught:
        drop_bad_faces(table, skip=False, source="train")
    assert all(str(p) in str(caught.value) for p in problems)
    assert "skip_bad_faces=true" in str(caught.value)
    kept, _ = drop_bad_faces(table, skip=True, source="train")
    assert sorted(Path(i).name for i in kept["image"]) == ["f0.png"]  # helen/f0 is the one good face left
    assert audit_faces(kept) == []


def test_wrong_point_count_in_tree_names_the_label(tmp_path):
    root = tmp_path / "train"
    make_pair_tree(root)
    write_pts(root / "helen" / "labels" / "f1.pts", np.zeros((50, 2)) + 3)
    with pytest.raises(FormatError, match="n_points is 50, expected 51") as caught:
        read_pair_train(root)
    assert caught.value.path.name == "f1.pts"
    assert caught.value.line == 2


def test_truncated_and_unreadable_images_are_named(tmp_path):
    root = tmp_path / "train"
    make_pair_tree(root)
    image = root / "helen" / "images" / "f1.png"
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated") as caught:
        read_pair_train(root, check_images=True)
    assert caught.value.path == image.resolve()
    image.write_bytes(b"not an image")
    with pytest.raises(FormatError, match="not a readable image"):
        load_image(image)
    with pytest.raises(FormatError, match="not found"):
        load_image(tmp_path / "none.png")


def test_300w_reader(tmp_path):
    rng = np.random.default_rng(2)
    for folder in ("afw", "helen/trainset", "lfpw/trainset", "ibug"):
        (tmp_path / folder).mkdir(parents=True)
        Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / folder / "a.jpg")
        write_pts(tmp_path / folder / "a.pts", rng.uniform(0, 29, (68, 2)))
    train = read_300w(tmp_path, "train", check_images=True)
    assert sorted(train["subset"]) == ["afw", "helen/trainset", "lfpw/trainset"]
    assert points_array(train).shape == (3, 68, 2)
    assert len(read_300w(tmp_path, "challenge")) == 1
    with pytest.raises(FormatError, match="not found"):
        read_300w(tmp_path, "common")
    with pytest.raises(ValueError, match="unknown 300W split"):
        read_300w(tmp_path, "nope")


def test_300w_faces_of_one_photograph_share_their_photo_and_one_side_of_a_split(tmp_path):
    """300-W gives each face of a photograph its own file, ``<photo>_<k>``: the split groups them."""
    rng = np.random.default_rng(3)
    (tmp_path / "afw").mkdir()
    stems = [f"{photo}_{k}" for photo in range(100, 112) for k in (1, 2, 3)]
    for stem in stems:
        Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "afw" / f"{stem}.jpg")
        write_pts(tmp_path / "afw" / f"{stem}.pts", rng.uniform(0, 29, (68, 2)))
    table = read_300w(tmp_path, "train", missing_ok=True)
    assert table.set_index(table["image"].map(lambda p: Path(p).stem))["photo"]["105_2"] == "afw/105"
    for seed in range(4):
        train, val = split_table(table, 0.25, seed)
        assert not set(train["photo"]) & set(val["photo"])
        assert len(val) == 3 * 3  # 3 of the 12 photographs, all their faces


def wflw_line(rng, image="0--Parade/a.jpg", flags=(1, 0, 0, 1, 0, 1)):
    numbers = np.r_[rng.uniform(0, 100, 196).round(3), [5.0, 6.0, 90.0, 95.0]]
    return " ".join([*(repr(float(v)) for v in numbers), *map(str, flags), image]), numbers


def test_wflw_read_write_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    lines, numbers = zip(*(wflw_line(rng) for _ in range(2)), strict=True)
    source = tmp_path / "list_98pt_rect_attr_test.txt"
    source.write_text("\n".join(lines) + "\n")
    table = read_wflw(source, tmp_path / "WFLW_images")
    assert list(table["face_index"]) == [0, 1]
    assert set(table["subset"]) == {"list_98pt_rect_attr_test"}
    np.testing.assert_array_equal(table.loc[0, "points"].ravel(), numbers[0][:196])
    np.testing.assert_array_equal(table.loc[1, "box"], [5, 6, 90, 95])
    assert [table.loc[0, f] for f in WFLW_FLAGS] == [1, 0, 0, 1, 0, 1]
    write_wflw(tmp_path / "copy.txt", table, tmp_path / "WFLW_images")
    assert (tmp_path / "copy.txt").read_text() == source.read_text()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f[:-2] + f[-1:], "expected 207 fields, found 206"),
        (lambda f: ["x", *f[1:]], "non-numeric"),
        (lambda f: ["nan", *f[1:]], "NaN"),
        (lambda f: [*f[:200], "2", *f[201:]], "flags must be 0 or 1"),
    ],
)
def test_wflw_errors(tmp_path, mutate, message):
    rng = np.random.default_rng(4)
    good, _ = wflw_line(rng)
    bad = " ".join(mutate(good.split()))
    source = tmp_path / "list.txt"
    source.write_text(good + "\n" + bad + "\n")
    with pytest.raises(FormatError, match=message) as caught:
        read_wflw(source, tmp_path)
    assert caught.value.line == 2


def test_test_folder_and_multi_face_ground_truth(tmp_path):
    images, labels = tmp_path / "test", tmp_path / "gt"
    images.mkdir()
    with pytest.raises(FormatError, match="no images"):
        list_test_images(images)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(images / "image_0001.png")
    with pytest.raises(FormatError, match="no ground truth"):
        read_faces_folder(images, labels)
    write_pts(labels / "image_0001.txt", [np.full((51, 2), 3.0), np.full((51, 2), 9.0)])
    table = read_faces_folder(images, labels)
    assert list(table["face_index"]) == [0, 1]
    np.testing.assert_array_equal(points_array(table)[:, 0, 0], [3.0, 9.0])
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(images / "image_0001.jpg")
    with pytest.raises(FormatError, match=r"image_0001.jpg, image_0001.png"):
        list_test_images(images)


def test_make_table_keeps_given_boxes():
    table = make_table([{"image": "a", "points": np.ones((2, 2)), "subset": "s", "box": np.array([0.0, 0, 5, 5])}])
    np.testing.assert_array_equal(table.loc[0, "box"], [0, 0, 5, 5])


def test_copy_of_tree_with_conditions_merges(tmp_path, synthetic_root):
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root / "ivslab_facial_train", root)
    table = read_pair_train(root)
    assert table["yaw"].notna().all()
    assert set(WFLW_FLAGS) <= set(table.columns)


def test_training_and_prediction_decode_images_alike(tmp_path):
    """One reader everywhere: an EXIF-rotated JPEG comes out upright and a 16-bit PNG scaled to
    8 bits (high byte), the same for training (load_image), the header size and the package."""
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:10, :20] = 255  # a white block at the stored image's top left
    stored = Image.fromarray(pixels)
    exif = stored.getexif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    stored.save(tmp_path / "turned.jpg", exif=exif.tobytes(), quality=100)
    upright = load_image(tmp_path / "turned.jpg")
    assert upright.shape == (60, 40, 3)
    assert image_size(tmp_path / "turned.jpg") == (40, 60)
    assert upright[:20, -10:].mean() > 200  # the block is now at the top right
    assert upright[-20:, :10].mean() < 50
    np.testing.assert_array_equal(upright, read_rgb(tmp_path / "turned.jpg"))
    trailed = tmp_path / "trailed.jpg"  # data after the end marker (phones append a video), not a truncation
    trailed.write_bytes((tmp_path / "turned.jpg").read_bytes() + bytes(5000))
    np.testing.assert_array_equal(load_image(trailed), upright)
    deep = np.random.default_rng(0).integers(0, 65536, (8, 9), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # 16-bit grey
    decoded = load_image(tmp_path / "deep.png")
    np.testing.assert_array_equal(decoded, np.repeat((deep >> 8).astype(np.uint8)[..., None], 3, axis=2))
    np.testing.assert_array_equal(decoded, read_rgb(tmp_path / "deep.png"))


def test_files_that_cannot_be_read_are_named_with_what_is_wrong(tmp_path):
    """A Latin-1 WFLW list, an empty, a garbage and a key-less checkpoint, a missing ground-truth
    folder: each error names the file and says what is wrong, no raw decoder or pickle error."""
    wflw = tmp_path / "list_98pt_rect_attr_test.txt"
    wflw.write_bytes(b"1.0 2.0\n" + "caf\u00e9.jpg\n".encode("latin-1"))
    with pytest.raises(FormatError, match=f"{wflw}:2: not UTF-8 text"):
        read_wflw(wflw, tmp_path)
    empty, garbage, keyless = tmp_path / "empty.pt", tmp_path / "garbage.pt", tmp_path / "keyless.pt"
    empty.write_bytes(b"")
    garbage.write_bytes(b"not a checkpoint " * 20)
    save_checkpoint(keyless, {"model": {"w": torch.zeros(1)}})
    with pytest.raises(ValueError, match=f"{empty}: not a checkpoint \\(unreadable: EOFError"):
        load_checkpoint(empty)
    with pytest.raises(ValueError, match=f"{garbage}: not a checkpoint \\(unreadable"):
        load_checkpoint(garbage)
    with pytest.raises(ValueError, match=f"{keyless}: not a model checkpoint of this kit \\(it lacks \\['model_config', 'ema'\\]\\)"):
        load_model(keyless)
    with pytest.raises(FormatError, match=f"{tmp_path / 'gt'}: ground-truth folder not found"):
        read_ground_truth(tmp_path / "gt", 51)
    assert submission_cli.main(["score", str(tmp_path), "--gt", str(tmp_path / "gt")]) == 2
