"""MediaPipe's model files, taken out of MediaPipe's last wheel that bundles them: the BlazeFace
face detectors (the final package's detector) and the face-landmark model (the speed reference of
the embedded benchmark).

``python -m lib.deploy.detector_files [--out data/models]`` downloads ``mediapipe==0.10.21``
from PyPI (set-up time only, with pip, not installed: it pins numpy < 2), extracts the
``.tflite`` files and checks their SHA-256. Nothing downloads anything at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from lib.io import atomic_write_bytes
from lib.paths import resolve

WHEEL = "mediapipe==0.10.21"
FILES = {
    # full range: 192 px input, faces from about 2 % of the image side; the project's default
    "face_detection_full_range_sparse.tflite": (
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    ),
    # short range: 128 px input, faces filling much of the image
    "face_detection_short_range.tflite": (
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    ),
    # FaceMesh landmarks: 192 px input, 468 points (1.24 MB); timed beside the students
    "face_landmark.tflite": (
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    ),
}
DEFAULT_DIR = "data/models"
DEFAULT_DETECTOR = f"{DEFAULT_DIR}/face_detection_full_range_sparse.tflite"
CLOSE_UP_DETECTOR = f"{DEFAULT_DIR}/face_detection_short_range.tflite"
MEDIAPIPE_LANDMARKS = f"{DEFAULT_DIR}/face_landmark.tflite"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(out_dir: str | Path = DEFAULT_DIR) -> list[Path]:
    """Make sure both files are in ``out_dir`` with the right checksum; download only if not."""
    out_dir = resolve(out_dir)
    wanted = [name for name, (_, digest) in FILES.items() if not ((out_dir / name).is_file() and sha256((out_dir / name).read_bytes()) == digest)]
    if wanted:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", WHEEL, "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("mediapipe-*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                for name in wanted:
                    member, digest = FILES[name]
                    data = archive.read(member)
                    if sha256(data) != digest:
                        raise RuntimeError(f"{wheel.name}:{member}: unexpected SHA-256 {sha256(data)}")
                    atomic_write_bytes(out_dir / name, data)
    return [out_dir / name for name in FILES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_DIR)
    for path in fetch(parser.parse_args(argv).out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
