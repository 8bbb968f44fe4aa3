"""Frames in and annotated frames out: a video file, a folder of images or a camera; mp4 output.

Frames are RGB (H, W, 3) uint8 everywhere in the kit; OpenCV's BGR stays inside this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from lib.deploy.run_model import read_rgb
from lib.formats.images import IMAGE_SUFFIXES

DEFAULT_FPS = 30.0


def open_frames(source: str | Path) -> tuple[Iterator[np.ndarray], float]:
    """RGB frames of ``source`` and its frame rate: a camera index (``"0"``), a folder of images
    (sorted by name; 30 fps) or a video file. An error names a source that cannot be opened."""
    text = str(source)
    if text.isdigit():
        return _capture_frames(cv2.VideoCapture(int(text)), f"camera {text}")
    path = Path(source)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise FileNotFoundError(f"{path}: no images in the folder")
        return (read_rgb(p) for p in images), DEFAULT_FPS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file, image folder or camera index")
    return _capture_frames(cv2.VideoCapture(str(path)), str(path))


def _capture_frames(capture: cv2.VideoCapture, name: str) -> tuple[Iterator[np.ndarray], float]:
    if not capture.isOpened():
        raise OSError(f"{name}: cannot be opened as a video")
    fps = capture.get(cv2.CAP_PROP_FPS)

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    return frames(), float(fps) if fps and fps > 0 else DEFAULT_FPS


def draw_points(frame: np.ndarray, points: np.ndarray | None, colour: tuple[int, int, int] = (0, 255, 0), radius: int = 2) -> np.ndarray:
    """A copy of the RGB ``frame`` with (N, 2) landmarks drawn as filled dots (none: unchanged)."""
    out = frame.copy()
    if points is not None:
        for x, y in np.round(points).astype(int):
            cv2.circle(out, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)
    return out


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float) -> int:
    """Write RGB frames to an mp4 (``mp4v``) atomically: into a hidden temporary file renamed at
    the end, so an interrupted write leaves no partial video. Returns the number of frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    writer, count = None, 0
    try:
        for frame in frames:
            if writer is None:
                writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frame.shape[1], frame.shape[0]))
                if not writer.isOpened():
                    raise OSError(f"{path}: OpenCV cannot write mp4v video here")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            count += 1
        if count == 0:
            raise ValueError(f"{path}: no frames to write")
    except BaseException:
        if writer is not None:
            writer.release()
        temporary.unlink(missing_ok=True)
        raise
    writer.release()
    os.replace(temporary, path)
    return count
