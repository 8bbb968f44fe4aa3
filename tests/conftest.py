"""Shared fixtures: a small synthetic dataset generated once per test session, and one run of the
smoke profile through every notebook."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lib.data.synthetic.generate import generate
from lib.formats.pair import PairTree, read_pair_train
from lib.formats.pts import write_pts
from lib.paths import PROJECT_ROOT

SMALL_TRAIN, SMALL_TEST = 24, 6


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic") / "dataset", SMALL_TRAIN, SMALL_TEST, seed=7)


def with_jaw(points: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG points: a jaw line (points 1-17) under (51, 2) PAIR points (iBUG 18-68)."""
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    angles = np.linspace(np.pi, 0, 17)
    jaw = np.column_stack([(x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(angles), y1 + (y1 - y0) * 0.3 * np.sin(angles)])
    return np.concatenate([jaw, points])


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One run of the smoke profile through ``python -m lib.pipeline`` (every notebook, papermill),
    shared by the per-notebook tests and the runs that pretrain on its networks: (run folder,
    submission folder, the finished process)."""
    root = tmp_path_factory.mktemp("smoke")
    run_dir, submitted = root / "run", root / "submission"
    command = [
        sys.executable,
        "-m",
        "lib.pipeline",
        "--profile",
        "smoke",
        "--run-dir",
        str(run_dir),
        "--set",
        f"submission_dir={submitted}",
        "ablation_seeds=[1]",
    ]
    finished = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    return run_dir, submitted, finished


def write_300w_tree(pair_root: Path, out: Path) -> Path:
    """A 300-W-layout copy of a PAIR tree's training faces (68 points: a jaw under the 51):
    afw and helen/trainset, ``<id>_1``; then a second labelled face of photograph ``1000`` (its
    own copy of the image, as 300-W ships them) and, in the other folder, a copy of ``1003_1``'s
    image under another name with its own label."""
    table = read_pair_train(PairTree(pair_root).train)
    for index, face in enumerate(table.itertuples()):
        folder = out / ("afw" if index % 3 == 0 else "helen/trainset")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(face.image, folder / f"{1000 + index}_1.jpg")
        write_pts(folder / f"{1000 + index}_1.pts", with_jaw(face.points))
    shutil.copy(out / "afw" / "1000_1.jpg", out / "afw" / "1000_2.jpg")
    write_pts(out / "afw" / "1000_2.pts", with_jaw(table["points"].iloc[1]))
    shutil.copy(out / "afw" / "1003_1.jpg", out / "helen" / "trainset" / "2003_1.jpg")
    write_pts(out / "helen" / "trainset" / "2003_1.pts", with_jaw(table["points"].iloc[2]))
    return out
