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

# The runtime's whole dependency set (the versions the project itself runs with).
PACKAGE_REQUIREMENTS = "ai-edge-litert==2.3.0\nnumpy==2.4.6\nopencv-python-headless==5.0.0.93\n"


def build_package(model: str | Path, detector: str | Path, settings: PackageSettings, zip_path: str | Path) -> Path:
    """Write the package zip atomically; returns its path."""
    members = {
        "best.tflite": Path(model).read_bytes(),
        "run_model.py": Path(run_model.__file__).read_bytes(),
        "requirements.txt": PACKAGE_REQUIREMENTS.encode(),
        "face_detector.tflite": Path(detector).read_bytes(),
        "settings.json": settings.to_json().encode(),
    }
    return atomic_write_zip(zip_path, members)
