"""Progress off a terminal: one line per twentieth of the work with rate and time left, never a carriage return."""

import io
import os
import sys

from lib.pipeline.runner import kernel_environment
from lib.progress import LINES, LineProgress, interactive


def test_line_progress_prints_a_line_per_twentieth_and_passes_items_through():
    stream = io.StringIO()
    bar = LineProgress(range(50), desc="train 1/3", stream=stream)
    bar.set_postfix(loss="0.512")
    assert list(bar) == list(range(50))
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 20
    assert [line.split(":")[1].split("(")[0].strip() for line in lines][:3] == ["2/50", "5/50", "8/50"]  # round(2.5), 5, round(7.5)
    assert lines[-1].startswith("train 1/3: 50/50 (100 %), ")
    assert " s left" in lines[0]
    assert lines[-1].endswith(", 0 s left, loss=0.512")


def test_the_pipeline_asks_its_kernels_for_lines(monkeypatch):
    monkeypatch.setattr(sys, "modules", {**sys.modules, "ipykernel": object()})
    monkeypatch.delenv(LINES, raising=False)
    assert interactive(io.StringIO())  # a kernel a person watches renders bars
    with kernel_environment({LINES: "lines"}):
        assert not interactive(io.StringIO())
    assert LINES not in os.environ


def test_line_progress_without_a_total_or_when_disabled():
    stream = io.StringIO()
    assert sum(LineProgress(iter(range(250)), desc="faces", stream=stream)) == sum(range(250))
    assert [line.split(",")[0] for line in stream.getvalue().splitlines()] == ["faces: 100/?", "faces: 200/?"]
    quiet = io.StringIO()
    assert list(LineProgress(range(5), stream=quiet, disable=True)) == [0, 1, 2, 3, 4]
    assert quiet.getvalue() == ""
