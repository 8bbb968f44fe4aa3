"""The 300W ``.pts`` format, also used by the PAIR labels and submission files.

A block is::

    version: 1
    n_points: 51
    {
    x y
    ...
    }

A file holds one block (a label) or several (a PAIR submission file: one block per face). One
rule for every reader: the version line says ``version: 1`` (the only version 300-W and PAIR
write), coordinates are finite and within :data:`MAX_COORDINATE` pixels (negative ones, a point
just outside its image, are kept), and a UTF-8 byte-order mark at the start is allowed, as in the
package's image lists.
Coordinates in files are 1-based pixel positions (the 300W/Matlab convention, which menpo also
assumes); in memory they are 0-based (the centre of the top-left pixel is (0, 0)). Readers take
an ``origin`` (values are read as ``file - origin``); every writer writes ``memory + PTS_ORIGIN``
through the final package's :func:`lib.deploy.run_model.pts_block`, the kit's one ``.pts`` writer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lib.deploy.run_model import PTS_ORIGIN, pts_block
from lib.formats.errors import FormatError
from lib.io import atomic_write_text

MAX_COORDINATE = 1e6  # px: no image is this large; a coordinate beyond it is a broken file, not a point


def parse_pts_blocks(text: str, path: str | Path, expected_points: int | None = None, origin: float = PTS_ORIGIN) -> list[np.ndarray]:
    """Parse every block of a ``.pts`` text into (n_points, 2) float64 arrays (0-based pixels).

    Raises :class:`FormatError` with the file and 1-based line of the first problem.
    """
    lines = text.splitlines()
    blocks: list[np.ndarray] = []
    row = 0

    def next_content_line() -> tuple[int, str] | None:
        nonlocal row
        while row < len(lines) and not lines[row].strip():
            row += 1
        if row == len(lines):
            return None
        row += 1
        return row, lines[row - 1].strip()

    while (item := next_content_line()) is not None:
        line_no, line = item
        if line.split() != ["version:", "1"] and line.replace(" ", "") != "version:1":
            raise FormatError(path, f"expected 'version: 1', found {line!r}", line_no)
        item = next_content_line()
        if item is None or not item[1].startswith("n_points:"):
            raise FormatError(path, "expected 'n_points: N' after the version line", item[0] if item else line_no)
        line_no, line = item
        try:
            n_points = int(line.split(":", 1)[1])
        except ValueError:
            raise FormatError(path, f"n_points is not an integer: {line!r}", line_no) from None
        if expected_points is not None and n_points != expected_points:
            raise FormatError(path, f"n_points is {n_points}, expected {expected_points}", line_no)
        item = next_content_line()
        if item is None or item[1] != "{":
            raise FormatError(path, "expected '{' before the points", item[0] if item else line_no)
        points = np.empty((n_points, 2), dtype=np.float64)
        for index in range(n_points):
            item = next_content_line()
            if item is None or item[1] == "}":
                raise FormatError(path, f"block ends after {index} of {n_points} points", item[0] if item else len(lines))
            line_no, line = item
            fields = line.split()
            if len(fields) != 2:
                raise FormatError(path, f"expected 'x y', found {line!r}", line_no)
            try:
                x, y = float(fields[0]), float(fields[1])
            except ValueError:
                raise FormatError(path, f"non-numeric coordinate in {line!r}", line_no) from None
            if not (math.isfinite(x) and math.isfinite(y)):
                raise FormatError(path, f"non-finite coordinate in {line!r}", line_no)
            if max(abs(x), abs(y)) > MAX_COORDINATE:
                raise FormatError(path, f"coordinate beyond {MAX_COORDINATE:g} px in {line!r}", line_no)
            points[index] = (x - origin, y - origin)
        item = next_content_line()
        if item is None or item[1] != "}":
            found = "end of file" if item is None else repr(item[1])
            raise FormatError(path, f"expected '}}' after {n_points} points, found {found}", item[0] if item else len(lines))
        blocks.append(points)
    return blocks


def read_pts_blocks(path: str | Path, expected_points: int | None = None, origin: float = PTS_ORIGIN) -> list[np.ndarray]:
    """Read all blocks of a ``.pts``/submission ``.txt`` file: a list of (n_points, 2) arrays."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError(path, "not a UTF-8 text file") from None
    return parse_pts_blocks(text, path, expected_points, origin)


def read_pts(path: str | Path, expected_points: int | None = None, origin: float = PTS_ORIGIN) -> np.ndarray:
    """Read a one-face ``.pts`` label: (n_points, 2) float64, 0-based pixels."""
    blocks = read_pts_blocks(path, expected_points, origin)
    if len(blocks) != 1:
        raise FormatError(path, f"expected one point block, found {len(blocks)}")
    return blocks[0]


def format_pts_block(points: np.ndarray, decimals: int | None = None) -> str:
    """One checked ``.pts`` block for (n_points, 2) 0-based pixel coordinates (written by
    :func:`lib.deploy.run_model.pts_block`; ``decimals`` None keeps every float64 exactly)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (n_points, 2), got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points contain NaN or infinite coordinates")
    return pts_block(points, decimals)


def write_pts(path: str | Path, faces: np.ndarray | Sequence[np.ndarray], decimals: int | None = None) -> None:
    """Write one face ((n_points, 2) array) or several (a sequence of them) atomically."""
    if isinstance(faces, np.ndarray) and faces.ndim == 2:
        faces = [faces]
    atomic_write_text(path, "".join(format_pts_block(face, decimals) for face in faces))
