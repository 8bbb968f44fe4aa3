"""Readers and writers of the landmark file formats; each reader yields the canonical
annotation table (see :mod:`lib.formats.table`)."""

from lib.formats.errors import FormatError

__all__ = ["FormatError"]
