"""Each step's headline: its key numbers in one file of one shape, ``<step folder>/headline.json``::

    {"step": "timing", "summary": "<one line a person reads>", "numbers": {"shipped": {...}, ...}}

Every step of a run writes one (:func:`write_headline`, which also prints the summary line at the
step's end); the run's report (:mod:`lib.pipeline.report`) and its summary read these files and
nothing else. The top-level keys of ``numbers`` are the report's names: no two steps share one.
Numbers are plain JSON (NaN as null); NME values are fractions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from lib.io import atomic_write_text

HEADLINE_FILE = "headline.json"


def plain(value):
    """``value`` as JSON data: numpy numbers as Python ones, NaN as None, containers walked."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def percent(value: float, digits: int = 2) -> str:
    """A fraction as the reports write it: ``0.069`` -> ``6.90 %``."""
    return f"{100 * value:.{digits}f} %"


def write_headline(step_dir: str | Path, step: str, summary: str, numbers: dict) -> dict:
    """Write ``step_dir/headline.json`` atomically and print ``summary`` (one line); returns the headline."""
    if "\n" in summary:
        raise ValueError(f"a step's summary is one line, not {summary!r}")
    headline = {"step": step, "summary": summary, "numbers": plain(numbers)}
    atomic_write_text(Path(step_dir) / HEADLINE_FILE, json.dumps(headline, indent=2) + "\n")
    print(f"{step}: {summary}")
    return headline


def read_headline(step_dir: str | Path) -> dict | None:
    """The headline a step wrote in ``step_dir`` (None when it wrote none); a file of another
    shape is an error naming it."""
    path = Path(step_dir) / HEADLINE_FILE
    if not path.is_file():
        return None
    headline = json.loads(path.read_text())
    if not (isinstance(headline, dict) and {"step", "summary", "numbers"} <= set(headline) and isinstance(headline["numbers"], dict)):
        raise ValueError(f"{path}: not a step headline (step, summary, numbers)")
    return headline
