"""Progress of long loops: a tqdm bar on a terminal or in a notebook a person watches; anywhere
else (output sent to a file or a pipe, e.g. ``make pipeline > log``, a CI log, or a notebook the
pipeline executes, where every redraw would be stored) one plain line every twentieth of the work
with the rate and the time left, instead of thousands of carriage-return-separated redraws."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator

from tqdm import TqdmWarning

with warnings.catch_warnings():  # without ipywidgets tqdm.auto warns once and draws text bars, as wanted here
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

STEPS = 20  # lines per loop when not interactive
LINES = "KIT_PROGRESS"  # set to "lines" (as the pipeline does for the notebooks it runs): plain lines even in a kernel


def interactive(stream=None) -> bool:
    """Whether progress goes to a terminal or a Jupyter kernel (which renders bars)."""
    stream = stream or sys.stderr
    if os.environ.get(LINES) == "lines":
        return False
    return bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules


class LineProgress:
    """A tqdm stand-in that prints ``desc: k/total (p %), s elapsed, rate/s, s left, postfix`` at
    each :data:`STEPS`-th of ``total`` (every 100 items when the total is unknown), with tqdm's
    ``set_postfix`` and ``disable``."""

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
                elapsed = time.perf_counter() - started
                rate = count / max(elapsed, 1e-9)
                share = f" ({100 * count / self.total:.0f} %)" if self.total else ""
                left = f", {(self.total - count) / rate:.0f} s left" if self.total else ""
                extra = f", {self.postfix}" if self.postfix else ""
                print(f"{self.desc}: {count}/{self.total or '?'}{share}, {elapsed:.0f} s, {rate:.3g}/s{left}{extra}", file=self.stream, flush=True)


def track(iterable: Iterable, desc: str = "", total: int | None = None, disable: bool = False, leave: bool = True):
    """A tqdm bar where one is rendered (:func:`interactive`), else a :class:`LineProgress`."""
    if interactive():
        return tqdm(iterable, desc=desc, total=total, disable=disable, leave=leave)
    return LineProgress(iterable, desc, total, disable)


def note(text: str) -> None:
    """Print a line without breaking a bar in progress."""
    tqdm.write(text, file=sys.stderr)
