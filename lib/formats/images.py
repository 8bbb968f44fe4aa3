"""Image reading with errors that name the file: missing, unreadable or truncated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lib.formats.errors import FormatError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image fully: (H, W, 3) uint8 RGB. Raises :class:`FormatError` if it is missing,
    not an image, or truncated."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "image file not found")
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        raise FormatError(path, "not a readable image") from None
    except (OSError, SyntaxError) as error:
        raise FormatError(path, f"corrupt or truncated image ({error})") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header, without decoding the pixels."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError):
        raise FormatError(path, "not a readable image") from None


def find_image(directory: Path, stem: str) -> Path | None:
    """The image called ``stem`` with any known suffix in ``directory``, or None."""
    for suffix in IMAGE_SUFFIXES:
        for candidate in (directory / f"{stem}{suffix}", directory / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None
