"""Progress off a terminal: one line per tenth of the work, never a carriage return."""

import io

from lib.progress import LineProgress


def test_line_progress_prints_a_line_per_tenth_and_passes_items_through():
    stream = io.StringIO()
    bar = LineProgress(range(25), desc="train 1/3", stream=stream)
    bar.set_postfix(loss="0.512")
    assert list(bar) == list(range(25))
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 10
    assert [line.split(":")[1].split("(")[0].strip() for line in lines][:3] == ["2/25", "5/25", "8/25"]  # round(2.5), 5, round(7.5)
    assert lines[-1].startswith("train 1/3: 25/25 (100 %), ")
    assert lines[-1].endswith(", loss=0.512")


def test_line_progress_without_a_total_or_when_disabled():
    stream = io.StringIO()
    assert sum(LineProgress(iter(range(250)), desc="faces", stream=stream)) == sum(range(250))
    assert [line.split(",")[0] for line in stream.getvalue().splitlines()] == ["faces: 100/?", "faces: 200/?"]
    quiet = io.StringIO()
    assert list(LineProgress(range(5), stream=quiet, disable=True)) == [0, 1, 2, 3, 4]
    assert quiet.getvalue() == ""
