"""Atomic file writes: a reader never sees a half-written file, an interrupted write leaves the
previous version in place, and the temporary file is removed on failure. Files get the
permissions a plain ``open(path, "w")`` would give them (0666 less the umask), not ``mkstemp``'s
private 0600."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def _default_mode() -> int:
    """0666 less the process umask (read without changing it for longer than one call)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(source: str | Path, path: str | Path) -> None:
    """Copy the bytes of ``source`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)


def atomic_save_csv(frame, path: str | Path, **to_csv_kwargs) -> None:
    """``frame.to_csv(path, **to_csv_kwargs)`` (a pandas DataFrame or Series), atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **to_csv_kwargs)


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` to exactly ``path`` (no ``.npy`` appended), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def atomic_save_figure(figure, path: str | Path, **savefig_kwargs) -> None:
    """``figure.savefig(path, **savefig_kwargs)`` (a matplotlib Figure), atomically; the format
    comes from ``path``'s suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip("."), **savefig_kwargs)


def atomic_write_zip(path: str | Path, members: dict[str, bytes]) -> Path:
    """A deflated zip of ``members`` (name -> bytes, in the order given) with fixed timestamps and
    Unix mode 0644 (``unzip`` would otherwise make each member 0600), so the same members give the
    same bytes; written atomically. Returns ``path``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3  # Unix: the mode bits are read
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
