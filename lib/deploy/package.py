"""The final-round package: ``final_package.zip`` = ``best.tflite``, ``run_model.py``,
``requirements.txt``, the face detector, and ``settings.json`` (:class:`PackageSettings`: the
box-to-crop rule, the detector threshold, the face count and the flip the submission used).

``python run_model.py <image_list.txt> <output_dir>`` inside the unpacked folder writes the
same files as the project's own writer (it *is* the project's TFLite inference code,
:mod:`lib.deploy.run_model`, copied verbatim), in a fresh environment that installs only the
package's ``requirements.txt``.
"""

from __future__ import annotations

from pathlib import Path

from lib.deploy import run_model
from lib.deploy.run_model import PackageSettings
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


def build_package(model: str | Path, detector: str | Path, settings: PackageSettings, zip_path: str | Path) -> Path:
    """Write the package zip atomically; returns its path."""
    members = {
        "best.tflite": Path(model).read_bytes(),
        "run_model.py": Path(run_model.__file__).read_bytes(),
        "requirements.txt": package_requirements().encode(),
        "face_detector.tflite": Path(detector).read_bytes(),
        "settings.json": settings.to_json().encode(),
    }
    return atomic_write_zip(zip_path, members)
