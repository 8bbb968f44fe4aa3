"""Checking a PAIR submission (a folder or a zip of ``.txt`` files) against the test images.

Every problem is reported, each with its file and, where it has one, its line: a test image
without its file, a file without an image, a name a zip holds twice, a folder or a file that is
not ``.txt``, a bad block (a version other than 1, header, brace, point count, a non-numeric,
non-finite or absurdly large number), faces not ordered right to left. An empty file is valid: no
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


def submission_entries(source: str | Path) -> list[tuple[str, str | None]]:
    """Every entry of a submission folder or zip, in order, as ``(name, text)``: each file's text
    (UTF-8, undecodable bytes replaced), ``None`` for a folder (its name ends with ``/``); a name
    a zip holds twice appears twice. A folder's hidden entries (``.name``: the writer's own
    marker, a desktop's index files) are not part of the submission and are left out."""
    source = Path(source)
    if source.is_dir():
        entries = [path for path in sorted(source.iterdir()) if not path.name.startswith(".")]
        return [(f"{path.name}/", None) if path.is_dir() else (path.name, path.read_bytes().decode("utf-8", errors="replace")) for path in entries]
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            return [(info.filename, None if info.is_dir() else archive.read(info).decode("utf-8", errors="replace")) for info in archive.infolist()]
    raise FormatError(source, "not a submission folder or zip file")


def read_submission_texts(source: str | Path) -> dict[str, str]:
    """``{file name: text}`` of the top-level ``.txt`` files of a submission folder or zip."""
    return {name: text for name, text in submission_entries(source) if text is not None and "/" not in name and name.endswith(".txt")}


def block_start_lines(text: str) -> list[int]:
    """1-based line numbers of the ``version:`` lines that open the blocks of ``text``."""
    return [number for number, line in enumerate(text.splitlines(), start=1) if line.strip().startswith("version:")]


def check_file(name: str, text: str, num_points: int) -> tuple[list[Problem], np.ndarray | None]:
    """Problems of one submission file, and its faces (F, N, 2) if it parsed. A byte-order mark
    is a problem here (the organisers' reader is unknown), though the kit's own readers allow one."""
    if text.startswith("\ufeff"):
        return [Problem(name, 1, "starts with a UTF-8 byte-order mark; the organisers' reader may not accept it")], None
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
    (an empty list means the submission is valid): a test image without its file, a name the zip
    holds twice (which copy the organisers read is unknown: every copy is checked), a folder, a
    file that is not ``.txt`` (``.TXT`` included), a file for no test image, and every problem of
    each file's blocks."""
    entries = submission_entries(source)
    expected = {f"{stem}.txt" for stem in image_stems}
    if not expected:
        raise ValueError("the test image list is empty")
    names = [name for name, _ in entries]
    problems = [Problem(name, None, f"missing: no file for test image {Path(name).stem}") for name in sorted(expected - set(names))]
    for name in sorted({name for name in names if names.count(name) > 1}):
        problems.append(Problem(name, None, f"the zip holds {names.count(name)} entries of this name; the organisers may read any one of them"))
    for name, text in entries:
        if text is None or "/" in name:
            problems.append(Problem(name, None, "a folder, or inside one; files must sit at the top level"))
        elif not name.endswith(".txt"):
            problems.append(Problem(name, None, "not a .txt file (the suffix must be lower-case .txt)"))
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
