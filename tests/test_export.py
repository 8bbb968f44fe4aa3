"""TFLite export in its own environment, the parity gate, and the final package in a fresh venv."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import venv
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lib.bench.embedded_benchmark import BenchSettings, benchmark
from lib.deploy import run_model
from lib.deploy.detector_files import CLOSE_UP_DETECTOR, DEFAULT_DETECTOR
from lib.deploy.run_model import PACKAGE_CLOSE_UP_DETECTOR
from lib.export import __main__ as export_cli
from lib.export.command import ExportSettings, export_command
from lib.export.crops import export_datasets
from lib.export.graph import DeployableLandmarks
from lib.export.old_runtime import compare_on_old_runtime
from lib.export.parity import ParityError, check_parity, crop_pixels, enforce
from lib.formats.images import load_image
from lib.inference.landmarker import landmark_model, load_landmarker
from lib.models.checkpoint import load_checkpoint, save_checkpoint
from lib.models.pruning import prune_channels
from lib.models.registry import build_model
from lib.paths import PROJECT_ROOT, resolve
from lib.submission.make import SubmissionSettings, make_submission
from lib.training.config import TrainConfig, train_config

EXPORT_PYTHON = PROJECT_ROOT / ".venv-export" / "bin" / "python"
SIZE = 64
SHIPPED_STUDENT = train_config("student", profile="default").model  # the architecture make pipeline exports


def pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.split("==") for line in lines if line)


def require_export_python() -> None:
    if not EXPORT_PYTHON.is_file():
        pytest.fail(f"{EXPORT_PYTHON} is missing: `make export-venv` builds it (make test does)")


def test_export_environment_shares_the_kernels_packages_and_leaves_the_kernel_intact():
    require_export_python()
    kernel_pins = pins(PROJECT_ROOT / "requirements.txt")
    probe = (
        "import importlib.metadata as m, json, sys, torch; print(json.dumps({'torch': torch.__file__, 'versions': {n: m.version(n) for n in sys.argv[1:]}}))"
    )
    result = subprocess.run([str(EXPORT_PYTHON), "-c", probe, *kernel_pins], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(seen["torch"]).is_relative_to(Path(torch.__file__).parents[1]), "the export venv must use the kernel's torch, not a second copy"
    assert seen["versions"] == kernel_pins
    kernel_check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert kernel_check.returncode == 0, kernel_check.stdout


def student_checkpoint(path: Path, data_root: Path, seed: int, prune_ratio: float | None = None) -> Path:
    """An untrained student of the shipped architecture (pruned by ``prune_ratio``) saved as training saves one."""
    torch.manual_seed(seed)
    cfg = TrainConfig(stage="student", data_root=str(data_root), input_size=SIZE, val_fraction=0.25, model={**SHIPPED_STUDENT, "prune_ratio": prune_ratio})
    model = build_model(cfg.model_config)
    if prune_ratio:
        prune_channels(model, prune_ratio)
    save_checkpoint(path, {"model_config": cfg.model_config, "ema": {"module": model.state_dict(), "updates": 0}, "config": cfg.to_dict()})
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory, synthetic_root) -> tuple[Path, Path]:
    require_export_python()
    folder = tmp_path_factory.mktemp("export")
    checkpoint = student_checkpoint(folder / "student.pt", synthetic_root, seed=0)
    command = export_command(EXPORT_PYTHON, checkpoint, folder / "tflite", ExportSettings(required=("fp32",), calibration_crops=8, parity_faces=6))
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return checkpoint, folder / "tflite"


@pytest.fixture(scope="module")
def exported_pruned(tmp_path_factory, synthetic_root) -> tuple[Path, Path]:
    """The shipped architecture with half its channels pruned, exported at fp32 as ``pruned50``."""
    require_export_python()
    folder = tmp_path_factory.mktemp("export_pruned")
    checkpoint = student_checkpoint(folder / "pruned.pt", synthetic_root, seed=1, prune_ratio=0.5)
    command = export_command(EXPORT_PYTHON, checkpoint, folder / "tflite", ExportSettings(("fp32",), parity_faces=4, name="pruned50"))
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return checkpoint, folder / "tflite"


@pytest.mark.slow
def test_the_built_export_command_is_read_back_by_the_export_cli(tmp_path):
    settings = ExportSettings(("fp32", "int8"), ("fp32",), 128, "pruned40", "data/x", 8, 6, 1e-3, 0.01)
    command = export_command("py", tmp_path / "best.pt", tmp_path / "out", settings)
    assert command[:3] == ["py", "-m", "lib.export"]
    args = export_cli.build_parser().parse_args(command[3:])
    assert (args.checkpoint, args.out) == (tmp_path / "best.pt", tmp_path / "out")
    assert ExportSettings.from_arguments(args) == settings
    defaults = export_cli.build_parser().parse_args(export_command("py", "c.pt", "o")[3:])
    assert ExportSettings.from_arguments(defaults) == ExportSettings()
    assert (ExportSettings().precisions, ExportSettings().required, ExportSettings().calibration_crops) == (("fp32", "fp16", "int8w", "int8"), None, 64)
    with pytest.raises(ValueError, match="unknown precisions \\['int4'\\]"):
        ExportSettings(("fp32", "int4"))
    with pytest.raises(ValueError, match="name 'a_b'"):
        ExportSettings(name="a_b")


def test_export_writes_every_precision_and_fp32_passes_the_gate(exported):
    _, folder = exported
    rows = {row["precision"]: row for row in json.loads((folder / f"export_report_student_{SIZE}.json").read_text())}
    assert {row["model"] for row in rows.values()} == {"student"}
    assert set(rows) == {"fp32", "fp16", "int8w", "int8"}
    assert rows["fp32"]["passed"]
    assert rows["fp32"]["max_abs_heatmap"] < 1e-4
    # Each quantised file is really quantised (it differs from fp32 and carries the (de)quantise
    # ops of its kind) and stays close to it: bounds at about twice what this untrained model
    # measured (landmarks in [-1, 1]: fp16 0.002, int8w 0.05, int8 0.29 with 8 calibration crops).
    for precision, bound, kind_ops in (("fp16", 0.01, {"DEQUANTIZE"}), ("int8w", 0.1, {"DEQUANTIZE"}), ("int8", 0.6, {"QUANTIZE", "DEQUANTIZE"})):
        assert (folder / f"student_{SIZE}_{precision}.tflite").is_file()
        assert 1e-5 < rows[precision]["max_abs_landmark"] < bound, precision
        assert kind_ops <= set(rows[precision]["ops"]), precision
    assert "QUANTIZE" not in rows["fp32"]["ops"]
    assert rows["fp16"]["size_mb"] < 0.6 * rows["fp32"]["size_mb"]
    assert rows["int8w"]["size_mb"] < 0.35 * rows["fp32"]["size_mb"]
    assert rows["int8"]["size_mb"] < 0.45 * rows["fp32"]["size_mb"]
    assert "CONV_2D" in rows["fp32"]["ops"]
    assert "DELEGATE" not in rows["fp32"]["ops"]


@pytest.mark.slow
def test_gate_fails_on_a_model_that_is_not_the_exported_one(exported, synthetic_root, tmp_path):
    checkpoint, folder = exported
    other = build_model({"kind": "student", "input_size": SIZE, **SHIPPED_STUDENT})  # different random weights
    config = load_checkpoint(checkpoint)["config"]
    _, validation = export_datasets(config, SIZE)
    reports = check_parity(DeployableLandmarks(other), {"fp32": folder / f"student_{SIZE}_fp32.tflite"}, validation, limit=4)
    assert not reports[0].passed
    with pytest.raises(ParityError, match=f"student_{SIZE}_fp32.tflite"):
        enforce(reports)


@pytest.mark.slow
def test_final_package_reproduces_the_projects_files_in_a_fresh_venv(exported, synthetic_root, tmp_path):
    _, folder = exported
    images = synthetic_root / "ivslab_facial_test"
    summary = make_submission(
        folder / f"student_{SIZE}_fp32.tflite",
        images,
        tmp_path / "submission",
        synthetic_root,
        ground_truth=synthetic_root / "ivslab_facial_test_gt",
        progress=False,
    )
    assert summary["problems"] == []
    assert summary["score"]["faces"] > 0
    package = tmp_path / "package"
    with zipfile.ZipFile(summary["package"]) as archive:
        assert sorted(archive.namelist()) == ["best.tflite", "face_detector.tflite", "requirements.txt", "run_model.py", "settings.json"]
        archive.extractall(package)
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(package / "requirements.txt")], check=True, timeout=600)
    (tmp_path / "list.txt").write_text("\n".join(str(p) for p in sorted(images.glob("*.png"))) + "\n")
    subprocess.run([str(python), "run_model.py", str(tmp_path / "list.txt"), str(tmp_path / "out")], cwd=package, check=True, timeout=300)
    produced = sorted((tmp_path / "out").glob("*.txt"))
    assert [p.name for p in produced] == sorted(p.name for p in (tmp_path / "submission" / "txt").glob("*.txt"))
    for path in produced:
        assert path.read_bytes() == (tmp_path / "submission" / "txt" / path.name).read_bytes()
    face_free = [p.stem for p in sorted((synthetic_root / "ivslab_facial_test_gt").glob("*.txt")) if not p.read_text()]
    assert face_free  # the generated test set holds face-free images: the package writes nothing for them
    assert summary["score"]["face_free_images"] == len(face_free)
    assert summary["score"]["faces_on_face_free"] == sum(len((tmp_path / "out" / f"{stem}.txt").read_text()) > 0 for stem in face_free) == 0


@pytest.mark.slow
def test_benchmark_writes_every_field_for_every_file_of_every_network(exported, exported_pruned, tmp_path):
    checkpoint, folder = exported
    pruned_checkpoint, pruned_folder = exported_pruned
    assert [row["model"] for row in json.loads((pruned_folder / f"export_report_pruned50_{SIZE}.json").read_text())] == ["pruned50"]
    files = {**dict.fromkeys(sorted(folder.glob("*.tflite")), checkpoint), pruned_folder / f"pruned50_{SIZE}_fp32.tflite": pruned_checkpoint}
    table, references = benchmark(files, tmp_path / "bench", BenchSettings(threads=(1, 2), warmup=1, runs=5, faces=4, rounds=2), progress=False)
    record = json.loads((tmp_path / "bench" / "bench.json").read_text())
    # MediaPipe's face-landmark model (192 x 192 RGB in) and the detector, timed in the same run
    assert list(references["name"]) == ["mediapipe", "blazeface"]
    assert references.set_index("name").loc["mediapipe", "input_shape"] == "1x192x192x3"
    # ... in the same alternating rounds (each file's ratio to each, with the rounds' standard deviation)
    assert record["rounds"] == 2
    for t in (1, 2):
        assert (references[f"litert_ms_t{t}"] > 0).all()
        for name in ("mediapipe", "blazeface"):
            assert (table[f"vs_{name}_t{t}"] > 0).all()
            assert (table[f"vs_{name}_t{t}_sd"] >= 0).all()
    assert [row["name"] for row in record["references"]] == ["mediapipe", "blazeface"]
    assert [row["file"] for row in record["rows"]] == [f.name for f in sorted(files)]
    # each file is measured against the network it came from
    by_model = table.groupby("model")["params_m"].agg(["min", "max"])
    assert list(by_model.index) == ["pruned50", "student"]
    assert (by_model["min"] == by_model["max"]).all()
    assert by_model.loc["pruned50", "min"] < 0.4 * by_model.loc["student", "min"]
    for row in record["rows"]:
        for field in ("size_mb", "params_m", "gflops", "nme", "score", "litert_ms_t1", "litert_p90_t2", "torch_ms_t2", "onnx_ms_t2"):
            assert row[field] > 0, (row["file"], field)
    reference = table[table["file"] == table["score_reference"].iloc[0]]
    assert (reference["precision"].item(), reference["model"].item()) == ("fp32", "student")
    assert reference["score"].item() == pytest.approx(100.0)
    assert (tmp_path / "bench" / f"student_{SIZE}.onnx").is_file()
    assert (tmp_path / "bench" / f"pruned50_{SIZE}.onnx").is_file()


@pytest.mark.slow
def test_float_files_give_the_same_outputs_on_tflite_runtime_2_14(exported):
    checkpoint, folder = exported
    _, validation = export_datasets(load_checkpoint(checkpoint)["config"], SIZE)
    files = {p: folder / f"student_{SIZE}_{p}.tflite" for p in ("fp32", "fp16", "int8")}
    rows = {row["precision"]: row for row in compare_on_old_runtime(files, crop_pixels(validation, 3))}
    for precision in ("fp32", "fp16"):
        assert rows[precision]["runs"], rows[precision]["error"]
        assert rows[precision]["max_abs_difference"] < 1e-4
    # A full-integer file may abort tflite-runtime 2.14 at some sizes. When it runs, the two
    # runtimes' integer kernels round differently (this untrained model's flat maps amplify it in
    # the soft-argmax: 0.13 here), but the outputs stay within an eighth of the [-1, 1] range;
    # when it does not, the report says how it failed.
    if rows["int8"]["runs"]:
        assert rows["int8"]["max_abs_difference"] < 0.25
    else:
        assert "exit code" in rows["int8"]["error"]


@pytest.mark.slow
def test_tflite_and_pytorch_give_the_same_faces_with_flip_tta(exported, synthetic_root):
    checkpoint, folder = exported
    image = load_image(sorted((synthetic_root / "ivslab_facial_test").glob("*.png"))[0])
    centre, scale = np.array([160.0, 150.0]), 0.7
    torch_faces, torch_confidence = landmark_model(checkpoint, flip=True).face_landmarks(image, centre, scale)
    tflite_faces, tflite_confidence = landmark_model(folder / f"student_{SIZE}_fp32.tflite", flip=True).face_landmarks(image, centre, scale)
    plain, _ = landmark_model(folder / f"student_{SIZE}_fp32.tflite").face_landmarks(image, centre, scale)
    np.testing.assert_allclose(tflite_faces, torch_faces, atol=1e-3)
    assert tflite_confidence == pytest.approx(torch_confidence, abs=1e-3)
    assert np.abs(tflite_faces - plain).max() > 1e-3  # the mirrored pass does change the answer


def huge_png(path: Path) -> Path:
    """A valid 8x8 PNG whose header claims 60000 x 60000 pixels (CRC fixed): OpenCV refuses it."""
    data = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    data[16:24] = struct.pack(">II", 60000, 60000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.slow
def test_final_package_names_and_counts_every_bad_image_and_never_overwrites_an_output(exported, synthetic_root, tmp_path, capsys):
    """One stem, two images: the first keeps the file, the second is named and not predicted; a
    path listed twice is predicted once; a huge-header PNG, a 250-character stem and an output
    name taken by a folder each cost only their own image; the summary counts files written."""
    _, folder = exported
    good = sorted((synthetic_root / "ivslab_facial_test").glob("*.png"))[:2]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "face.png", tmp_path / "b" / "face.png"
    first.write_bytes(good[0].read_bytes())
    second.write_bytes(good[1].read_bytes())
    long_stem = tmp_path / ("x" * 250 + ".png")
    long_stem.write_bytes(good[1].read_bytes())
    blocked = tmp_path / "blocked.png"
    blocked.write_bytes(good[1].read_bytes())
    out = tmp_path / "out"
    (out / "blocked.txt").mkdir(parents=True)
    (out / "stale.txt").write_text("an earlier run's")
    listed = [first, second, first, huge_png(tmp_path / "huge.png"), long_stem, blocked]
    image_list = tmp_path / "list.txt"
    image_list.write_text("".join(f"{path}\n" for path in listed), encoding="utf-8")
    settings = tmp_path / "settings.json"
    settings.write_text(run_model.PackageSettings((0.0, 0.0), 1.0, 0.4).to_json())
    common = ["--model", str(folder / f"student_{SIZE}_fp32.tflite"), "--detector", str(resolve(DEFAULT_DETECTOR)), "--settings", str(settings)]
    assert run_model.main([str(image_list), str(out), *common]) == 0
    errors = capsys.readouterr().err
    one = tmp_path / "one.txt"
    one.write_text(f"{first}\n")
    assert run_model.main([str(one), str(tmp_path / "alone"), *common]) == 0
    assert (out / "face.txt").read_bytes() == (tmp_path / "alone" / "face.txt").read_bytes()  # the first image's faces, not the second's
    assert f"{second}: not predicted: its output face.txt belongs to {first}" in errors
    assert f"{tmp_path / 'huge.png'}: cannot be decoded" in errors
    assert (out / "huge.txt").read_text() == ""
    assert "n_points: 51" in (out / f"{long_stem.stem}.txt").read_text()
    assert f"{out / 'blocked.txt'}: not written: a folder of that name is in the way" in errors
    assert not list(out.glob(".*.tmp"))
    assert f"{out} already holds 1 .txt files this list does not write (e.g. stale.txt); left as they are" in errors
    assert (out / "stale.txt").read_text() == "an earlier run's"
    assert f"wrote 3 files to {out} for 6 listed images; problems: 3;" in errors
    # A model that is not a landmark model, and a list that is not UTF-8: refused before anything is written.
    detector_as_model = ["--model", str(resolve(DEFAULT_DETECTOR)), *common[2:]]
    assert run_model.main([str(image_list), str(tmp_path / "none"), *detector_as_model]) == 2
    assert "not a landmark model (inputs [(1, 192, 192, 3)]" in capsys.readouterr().err
    # Settings that do not fit the model: refused naming the settings file, nothing written.
    for field, value in (("level_eyes", ((99,), (0,))), ("flip_permutation", (1, 0, 2))):
        settings.write_text(replace(run_model.PackageSettings((0.0, 0.0), 1.0, 0.4), **{field: value}).to_json())
        assert run_model.main([str(image_list), str(tmp_path / "none"), *common]) == 2
        assert f"{settings}: {field} does not fit the 51 landmarks of" in capsys.readouterr().err
    settings.write_text(run_model.PackageSettings((0.0, 0.0), 1.0, 0.4).to_json())
    latin = tmp_path / "latin.txt"
    latin.write_bytes(f"{first}\n".encode() + "caf\u00e9.png\n".encode("latin-1"))
    assert run_model.main([str(latin), str(tmp_path / "none"), *common]) == 2
    assert f"{latin}:2: the image list is not UTF-8 text" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_final_package_runtime_survives_a_bom_a_truncated_image_and_nan_landmarks(exported, synthetic_root, tmp_path, capsys, monkeypatch):
    _, folder = exported
    good = sorted((synthetic_root / "ivslab_facial_test").glob("*.png"))[:2]
    broken = tmp_path / "broken.png"
    broken.write_bytes(good[0].read_bytes()[:200])  # a truncated PNG
    image_list = tmp_path / "list.txt"
    image_list.write_text("\ufeff" + "\n".join([str(good[0]), str(broken), str(good[1])]) + "\n", encoding="utf-8")
    settings = tmp_path / "settings.json"
    settings.write_text(run_model.PackageSettings((0.0, 0.0), 1.0, 0.4).to_json())
    common = ["--model", str(folder / f"student_{SIZE}_fp32.tflite"), "--detector", str(resolve(DEFAULT_DETECTOR)), "--settings", str(settings)]
    out = tmp_path / "out"
    assert run_model.main([str(image_list), str(out), *common]) == 0
    errors = capsys.readouterr().err
    assert f"{broken}: corrupt or truncated image (no end marker)" in errors
    assert "; problems: 1;" in errors
    assert (out / "broken.txt").read_text() == ""
    for path in good:  # the BOM did not break the first line; the bad image did not stop the list
        assert "n_points: 51" in (out / f"{path.stem}.txt").read_text()
    assert run_model.main([str(image_list), str(tmp_path / "strict"), *common, "--strict"]) == 1
    monkeypatch.setattr(run_model.LandmarkModel, "crop_outputs", lambda self, crop: (np.full((51, 2), np.nan), np.zeros((51, 16, 16), np.float32)))
    single = tmp_path / "single.txt"
    single.write_text(f"{good[0]}\n")
    assert run_model.main([str(single), str(tmp_path / "nan"), *common]) == 0
    assert "non-finite landmarks and were left out" in capsys.readouterr().err
    assert "nan" not in (tmp_path / "nan" / f"{good[0].stem}.txt").read_text()


@pytest.mark.slow
def test_final_package_reproduces_a_flipped_submission_with_its_face_limit_and_detector_layout(exported, synthetic_root, tmp_path):
    """The package's settings carry the flip, the face limit and the detector layout (tiles and
    the close-up model, whose file it ships): run as shipped, it writes the submission's files
    byte for byte (a package without them would predict unflipped, 3 faces, whole image only)."""
    _, folder = exported
    images = synthetic_root / "ivslab_facial_test"
    summary = make_submission(
        folder / f"student_{SIZE}_fp32.tflite",
        images,
        tmp_path / "submission",
        synthetic_root,
        SubmissionSettings(flip=True, max_faces=1, detector_layout=(2, True)),
        progress=False,
    )
    assert (summary["detection"]["tiles"], summary["detection"]["close_up"]) == (2, True)
    package = tmp_path / "package"
    with zipfile.ZipFile(summary["package"]) as archive:
        archive.extractall(package)
    settings = run_model.PackageSettings.read(package / "settings.json")
    assert settings.max_faces == 1
    assert settings.flip_permutation is not None
    assert sorted(settings.flip_permutation) == list(range(51))
    assert (settings.detector_tiles, settings.close_up_detector) == (2, True)
    assert list(settings.close_up_box) == summary["close_up_box"]["box_map"]  # fitted on the training faces
    assert (package / PACKAGE_CLOSE_UP_DETECTOR).read_bytes() == resolve(CLOSE_UP_DETECTOR).read_bytes()
    (tmp_path / "list.txt").write_text("\n".join(str(p) for p in sorted(images.glob("*.png"))) + "\n")
    files = ["--model", str(package / "best.tflite"), "--detector", str(package / "face_detector.tflite"), "--settings", str(package / "settings.json")]
    files += ["--close-up-detector", str(package / PACKAGE_CLOSE_UP_DETECTOR)]
    assert run_model.main([str(tmp_path / "list.txt"), str(tmp_path / "out"), *files]) == 0
    produced = sorted((tmp_path / "out").glob("*.txt"))
    assert len(produced) == len(list(images.glob("*.png")))
    for path in produced:
        assert path.read_bytes() == (tmp_path / "submission" / "txt" / path.name).read_bytes()
    assert max(text.read_text().count("version: 1") for text in produced) == 1
    landmarker = load_landmarker(summary["package"])  # the three calls on the zip give the package's faces
    assert (landmarker.flip, landmarker.max_faces) == (True, 1)
    for path in sorted(images.glob("*.png"))[:5]:
        image = load_image(path)
        faces, _ = landmarker.landmarks(image, landmarker.detect(image)[0])
        assert run_model.pts_text(faces) == (tmp_path / "submission" / "txt" / f"{path.stem}.txt").read_text()


def test_package_settings_round_trip_exactly_and_bad_files_are_named(tmp_path):
    settings = run_model.PackageSettings(
        (0.1 + 0.2, -1 / 3), 1.4142135623730951, 0.45, 2, (1, 0, 2), 3, True, (0.01, -1 / 30, 1.09), 2, ((0, 1), (2,)), True, 0.075
    )
    path = tmp_path / "settings.json"
    path.write_text(settings.to_json())
    assert run_model.PackageSettings.read(path) == settings
    path.write_text('{"offset": [0, 0], "side_factor": 1.4, "min_score": 0.5}')  # a file of an older package
    older = run_model.PackageSettings.read(path)
    assert (older.max_faces, older.flip_permutation, older.detector_tiles, older.close_up_detector, older.close_up_box) == (3, None, 1, False, (0, 0, 1))
    assert (older.refine_passes, older.level_eyes, older.detector_roll, older.refine_beyond) == (0, None, False, None)
    for bad, field in (
        ('"detector_tiles": 0', "detector_tiles must be an integer >= 1"),
        ('"close_up_box": [0, 0, 0]', "close_up_box must be 3 finite numbers, the last > 0"),
        ('"close_up_box": [0, 1]', "close_up_box must be"),
        ('"refine_passes": -1', "refine_passes must be an integer >= 0"),
        ('"refine_beyond": -0.1', "refine_beyond must be null or a number >= 0, not -0.1"),
        ('"refine_beyond": "0.1"', "refine_beyond must be null or a number >= 0"),
        ('"level_eyes": [[0, 1]]', "level_eyes must be null or 2 non-empty lists"),
        ('"level_eyes": [[0], []]', "level_eyes must be"),
        ('"close_up_detector": "false"', 'close_up_detector must be true or false, not "false"'),  # a string would read as true
        ('"detector_roll": 1', "detector_roll must be true or false, not 1"),
        ('"min_score": 5', "min_score must be a number in \\[0, 1\\], not 5"),  # every file empty
        ('"max_faces": 2.7', "max_faces must be an integer >= 1, not 2.7"),  # would become 2
        ('"flip_permutation": [0, 0, 0]', "flip_permutation must be null or a permutation"),
        ('"flip_permutation": [1, 2, 0]', "flip_permutation must be"),  # a permutation, not its own inverse
        ('"flip_permutation": [true, false]', "flip_permutation must be"),
        ('"offset": [0, NaN]', "offset must be 2 finite numbers"),
        ('"side_factor": "1.4"', "side_factor must be a number > 0"),
        ('"tiles": 2', "unknown settings \\['tiles'\\]"),
    ):
        key, value = bad.split(": ", 1)
        fields = {"offset": "[0, 0]", "side_factor": "1.4", "min_score": "0.5"} | {key.strip('"'): value}
        path.write_text("{" + ", ".join(f'"{key}": {value}' for key, value in fields.items()) + "}")
        with pytest.raises(run_model.BadInput, match=f"settings.json: {field}"):
            run_model.PackageSettings.read(path)
    path.write_text('{"offset": [0, 0], "side_factor": 1.4}')
    with pytest.raises(run_model.BadInput, match="settings.json: the setting 'min_score' is missing"):
        run_model.PackageSettings.read(path)
    path.write_text("[1, 2]")
    with pytest.raises(run_model.BadInput, match="settings.json: not a settings file"):
        run_model.PackageSettings.read(path)
