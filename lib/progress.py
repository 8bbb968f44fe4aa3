"""Progress of long loops: a tqdm bar on a terminal or in a notebook; anywhere else (output sent
to a file or a pipe, e.g. ``make pipeline > log`` or a CI log) one plain line per tenth of the
work, instead of a single carriage-return-separated line thousands of characters long."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

from tqdm.auto import tqdm

STEPS = 10  # lines per loop when not interactive


def interactive(stream=None) -> bool:
    """Whether progress goes to a terminal or a Jupyter kernel (which renders bars)."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules


class LineProgress:
    """A tqdm stand-in that prints ``desc: k/total (p %), s, postfix`` at each tenth of
    ``total`` (every 100 items when the total is unknown), with tqdm's ``set_postfix`` and
    ``disable``."""

    def __init__(self, iterable: Iterable, desc: str = "", total: int | None = None, disable: bool = False, stream=None):
        self.iterable, self.desc, self.disable = iterable, desc, disable
        self.total = total if total is not None else len(iterable) if hasattr(iterable, "__len__") else None
        self.stream = stream or sys.stderr
        self.postfix = ""

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def __iter__(self) -> Iterator:
        if self.disable:
            yield from self.iterable
            return
        started = time.perf_counter()
        marks = {max(1, round(self.total * k / STEPS)) for k in range(1, STEPS + 1)} if self.total else set()
        for count, item in enumerate(self.iterable, start=1):
            yield item
            if count in marks or (not self.total and count % 100 == 0):
                share = f" ({100 * count / self.total:.0f} %)" if self.total else ""
                extra = f", {self.postfix}" if self.postfix else ""
                print(f"{self.desc}: {count}/{self.total or '?'}{share}, {time.perf_counter() - started:.0f} s{extra}", file=self.stream, flush=True)


def track(iterable: Iterable, desc: str = "", total: int | None = None, disable: bool = False, leave: bool = True):
    """A tqdm bar where one is rendered (:func:`interactive`), else a :class:`LineProgress`."""
    if interactive():
        return tqdm(iterable, desc=desc, total=total, disable=disable, leave=leave)
    return LineProgress(iterable, desc, total, disable)


def note(text: str) -> None:
    """Print a line without breaking a bar in progress."""
    tqdm.write(text, file=sys.stderr)
