"""The final-round package: ``final_package.zip`` = ``best.tflite``, ``run_model.py``,
``requirements.txt``, the face detector (``face_detector.tflite``, full range, and
``face_detector_close_up.tflite``, short range, when the settings use it), and ``settings.json``
(:class:`PackageSettings`: the box-to-crop rule, the detector threshold and layout, the face count
and the flip the submission used).

``python run_model.py <image_list.txt> <output_dir>`` inside the unpacked folder writes the
same files as the project's own writer (it *is* the project's TFLite inference code,
:mod:`lib.deploy.run_model`, copied verbatim), in a fresh environment that installs only the
package's ``requirements.txt``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lib.deploy import run_model
from lib.deploy.run_model import PACKAGE_CLOSE_UP_DETECTOR, PACKAGE_DETECTOR, PACKAGE_MODEL, PACKAGE_SETTINGS, PackageSettings
from lib.formats.pts import read_pts_blocks
from lib.io import atomic_write_zip
from lib.paths import PROJECT_ROOT

# The runtime's whole dependency set, at the versions the project itself pins.
PACKAGE_RUNTIME = ("ai-edge-litert", "numpy", "opencv-python-headless")


def package_requirements(requirements: str | Path = PROJECT_ROOT / "requirements.txt") -> str:
    """The package's ``requirements.txt``: each of :data:`PACKAGE_RUNTIME` at its pin in the
    project's ``requirements.txt`` (an error names a package that is not pinned there)."""
    pins = {}
    for line in Path(requirements).read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[name.lower()] = version
    missing = [name for name in PACKAGE_RUNTIME if name not in pins]
    if missing:
        raise ValueError(f"{requirements}: no pin for {missing}")
    return "".join(f"{name}=={pins[name]}\n" for name in PACKAGE_RUNTIME)


def build_package(
    model: str | Path, detector: str | Path, settings: PackageSettings, zip_path: str | Path, close_up_detector: str | Path | None = None
) -> Path:
    """Write the package zip atomically; returns its path. ``close_up_detector`` (the short-range
    BlazeFace file) is required when ``settings.close_up_detector`` is set, and packed only then."""
    members = {
        PACKAGE_MODEL: Path(model).read_bytes(),
        "run_model.py": Path(run_model.__file__).read_bytes(),
        "requirements.txt": package_requirements().encode(),
        PACKAGE_DETECTOR: Path(detector).read_bytes(),
        PACKAGE_SETTINGS: settings.to_json().encode(),
    }
    if settings.close_up_detector:
        if close_up_detector is None:
            raise ValueError(f"{zip_path}: the settings use the close-up detector; give its file")
        members[PACKAGE_CLOSE_UP_DETECTOR] = Path(close_up_detector).read_bytes()
    return atomic_write_zip(zip_path, members)


def run_package(
    zip_path: str | Path, images: Sequence[str | Path], work_dir: str | Path, num_points: int, python: str | Path = sys.executable
) -> dict[str, np.ndarray]:
    """Run a final package as the organisers do: unpack it into ``work_dir/package``, write the
    image list, ``python run_model.py <list> <out>`` there; returns ``{image path: (F, N, 2)}``
    read back from its files (0-based pixels). A failing run raises with its stderr."""
    stems = [Path(image).stem for image in images]
    if len(set(stems)) != len(stems):
        clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
        raise ValueError(f"images share file stems {clashes[:5]}: the package names each output by its image's stem")
    work_dir = Path(work_dir)
    package, out = work_dir / "package", work_dir / "out"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(package)
    listing = work_dir / "images.txt"
    listing.write_text("".join(f"{os.path.abspath(image)}\n" for image in images))  # a linked image keeps its own name
    done = subprocess.run([str(python), "run_model.py", str(listing), str(out)], cwd=package, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{zip_path}: run_model.py failed ({done.returncode}): {done.stderr[-2000:]}")
    faces = {}
    for image in images:
        blocks = read_pts_blocks(out / f"{Path(image).stem}.txt", num_points)
        faces[str(image)] = np.stack(blocks) if blocks else np.zeros((0, num_points, 2))
    return faces
