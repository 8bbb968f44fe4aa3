"""The one error type for bad input files: it names the file and, where known, the line."""

from __future__ import annotations

from pathlib import Path


class FormatError(ValueError):
    """A malformed input file. ``str(error)`` reads ``path:line: what is wrong``."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")
