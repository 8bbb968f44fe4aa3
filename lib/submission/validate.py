"""Checking a PAIR submission (a folder or a zip of ``.txt`` files) against the test images.

Every problem is reported, each with its file and, where it has one, its line: a test image
without its file, a file without an image, a bad block (header, brace, point count, a
non-numeric or non-finite number), faces not ordered right to left. An empty file is valid: no
face was found (PAIR's final round has face-free images).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lib.deploy.run_model import face_centre_x
from lib.formats.errors import FormatError
from lib.formats.pts import parse_pts_blocks


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission: ``file:line: message`` (line None = the whole file)."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line is not None else f"{self.file}: {self.message}"


def read_submission_texts(source: str | Path) -> dict[str, str]:
    """``{file name: text}`` of the ``.txt`` files of a submission folder or zip."""
    source = Path(source)
    if source.is_dir():
        return {path.name: path.read_bytes().decode("utf-8", errors="replace") for path in sorted(source.glob("*.txt"))}
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
            return {name: archive.read(name).decode("utf-8", errors="replace") for name in sorted(names)}
    raise FormatError(source, "not a submission folder or zip file")


def block_start_lines(text: str) -> list[int]:
    """1-based line numbers of the ``version:`` lines that open the blocks of ``text``."""
    return [number for number, line in enumerate(text.splitlines(), start=1) if line.strip().startswith("version:")]


def check_file(name: str, text: str, num_points: int) -> tuple[list[Problem], np.ndarray | None]:
    """Problems of one submission file, and its faces (F, N, 2) if it parsed."""
    try:
        faces = parse_pts_blocks(text, name, expected_points=num_points)
    except FormatError as error:
        return [Problem(name, error.line, error.message)], None
    if not faces:  # no face found: PAIR's final round has face-free images
        return [], np.zeros((0, num_points, 2))
    faces = np.stack(faces)
    problems = []
    centres = face_centre_x(faces)
    starts = block_start_lines(text)
    for k in range(1, len(faces)):
        if centres[k] > centres[k - 1]:
            problems.append(
                Problem(
                    name, starts[k], f"faces not ordered right to left: face {k} (centre x {centres[k]:.1f}) is right of face {k - 1} ({centres[k - 1]:.1f})"
                )
            )
    return problems, faces


def validate_submission(source: str | Path, image_stems: Iterable[str], num_points: int) -> list[Problem]:
    """Every problem of the submission at ``source`` for the test images named by ``image_stems``
    (an empty list means the submission is valid)."""
    texts = read_submission_texts(source)
    problems = []
    expected = {f"{stem}.txt" for stem in image_stems}
    if not expected:
        raise ValueError("the test image list is empty")
    for name in sorted(expected - set(texts)):
        problems.append(Problem(name, None, f"missing: no file for test image {Path(name).stem}"))
    for name, text in texts.items():
        if "/" in name:
            problems.append(Problem(name, None, "inside a folder of the zip; files must sit at its top level"))
        elif not name.endswith(".txt"):
            problems.append(Problem(name, None, "not a .txt file"))
        elif name not in expected:
            problems.append(Problem(name, None, "no test image of this name"))
        else:
            problems.extend(check_file(name, text, num_points)[0])
    return problems


def read_submission(source: str | Path, num_points: int) -> dict[str, np.ndarray]:
    """``{image stem: (F, N, 2)}`` of a valid-looking submission (0-based pixels, file order).
    Raises :class:`FormatError` for the first file that does not parse."""
    faces_by_stem = {}
    for name, text in read_submission_texts(source).items():
        faces = parse_pts_blocks(text, name, expected_points=num_points)
        faces_by_stem[Path(name).stem] = np.stack(faces) if faces else np.zeros((0, num_points, 2))
    return faces_by_stem
