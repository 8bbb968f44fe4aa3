"""Image reading with errors that name the file: missing, unreadable or truncated.

Pixels are decoded by the final package's own reader (:func:`lib.deploy.run_model.read_rgb`,
OpenCV, EXIF orientation applied), so training, calibration and prediction see the same image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lib.deploy.run_model import UnreadableImage, read_rgb
from lib.formats.errors import FormatError

EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image fully: (H, W, 3) uint8 RGB. Raises :class:`FormatError` if it is missing,
    not an image, or truncated."""
    try:
        return read_rgb(Path(path))
    except UnreadableImage as error:
        raise FormatError(error.path, error.reason) from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as :func:`load_image` returns the image (EXIF orientation applied), from
    the header, without decoding the pixels."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            turned = image.getexif().get(EXIF_ORIENTATION) in TRANSPOSING_ORIENTATIONS
    except (OSError, UnidentifiedImageError):
        raise FormatError(path, "not a readable image") from None
    return (height, width) if turned else (width, height)


def find_image(directory: Path, stem: str) -> Path | None:
    """The image called ``stem`` with any known suffix in ``directory``, or None."""
    for suffix in IMAGE_SUFFIXES:
        for candidate in (directory / f"{stem}{suffix}", directory / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None
