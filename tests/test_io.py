"""Atomic writes: all or nothing, no temporary left behind, normal permissions."""

import os
import stat
import zipfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lib.io import atomic_copy, atomic_path, atomic_save_csv, atomic_save_figure, atomic_save_npy, atomic_write_text, atomic_write_zip  # noqa: E402


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_files_get_the_permissions_of_a_plain_write(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    previous = os.umask(0o022)
    try:
        for umask in (0o022, 0o002):
            os.umask(umask)
            plain.unlink()
            plain.write_text("x")
            atomic_write_text(tmp_path / "atomic.txt", "x")
            assert mode(tmp_path / "atomic.txt") == mode(plain) == 0o666 & ~umask
    finally:
        os.umask(previous)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.xyz"
    target.write_bytes(b"old")
    figure = plt.figure()
    with pytest.raises(ValueError, match="xyz"):
        atomic_save_figure(figure, target)  # matplotlib has no such format

    def crash_mid_write():
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        crash_mid_write()
    plt.close(figure)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.xyz"]


def test_each_writer_round_trips_at_exactly_the_path_given(tmp_path):
    frame = pd.DataFrame({"nme": [0.05, 0.07], "model": ["a", "b"]})
    atomic_save_csv(frame, tmp_path / "table.csv", index=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "table.csv"), frame)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic_save_npy(tmp_path / "predictions.npy", array)
    np.testing.assert_array_equal(np.load(tmp_path / "predictions.npy"), array)
    figure = plt.figure(figsize=(1, 1))
    atomic_save_figure(figure, tmp_path / "curve.png", dpi=20)
    plt.close(figure)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    atomic_copy(tmp_path / "curve.png", tmp_path / "copy.png")
    assert (tmp_path / "copy.png").read_bytes() == (tmp_path / "curve.png").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.png", "curve.png", "predictions.npy", "table.csv"]


def test_zip_members_carry_unix_read_permissions_and_identical_bytes(tmp_path):
    """``unzip`` makes a member without mode bits 0600; the kit's zips say 0644, byte-stable."""
    first = atomic_write_zip(tmp_path / "a.zip", {"run_model.py": b"print(1)\n", "best.tflite": b"\x00\x01"})
    second = atomic_write_zip(tmp_path / "b.zip", {"run_model.py": b"print(1)\n", "best.tflite": b"\x00\x01"})
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        modes = {info.filename: (info.create_system, stat.S_IMODE(info.external_attr >> 16)) for info in archive.infolist()}
        assert archive.read("best.tflite") == b"\x00\x01"
    assert modes == {"run_model.py": (3, 0o644), "best.tflite": (3, 0o644)}
