"""Which exported file ships as ``best.tflite``: the fastest file that passed the parity gate
and stays within an NME budget of the reference network's fp32 file at its own input size (the
reference is the step's student; the other networks, pruned students, compete under its budget).

Files whose latencies differ by less than ``tie_share`` of the fastest are timed as equal (the
median of 50 calls still moves by a few per cent between runs); among those the smallest wins.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lib.io import atomic_copy, atomic_write_text


def read_gate(export_dir: str | Path) -> pd.DataFrame:
    """Every row of the ``export_report_<size>.json`` files of an export folder, ``file`` as the
    file name (the parity gate's verdict per file: ``passed``, ``reason``, ``nme_tflite``...)."""
    rows = [row for path in sorted(Path(export_dir).glob("export_report_*.json")) for row in json.loads(path.read_text())]
    if not rows:
        raise FileNotFoundError(f"{export_dir}: no export_report_*.json (run the export step first)")
    table = pd.DataFrame(rows)
    table["file"] = table["file"].map(lambda p: Path(p).name)
    return table


def fastest_within_budget(
    bench: pd.DataFrame, gate: pd.DataFrame, latency: str, native_size: int, nme_points: float, tie_share: float = 0.05, reference_model: str = "student"
) -> pd.Series:
    """The row of ``bench`` (a :func:`lib.bench.run.benchmark` table) to ship: among files the
    ``gate`` passed whose ``nme`` is at most ``nme_points`` NME points above the fp32 file of
    ``reference_model`` at ``native_size``, the fastest by ``latency`` (a column, ms), ties within
    ``tie_share`` going to the smaller file. Raises ``ValueError`` naming what is missing."""
    native = bench[(bench["model"] == reference_model) & (bench["input_size"] == native_size) & (bench["precision"] == "fp32")]
    if native.empty:
        raise ValueError(f"no fp32 file of {reference_model} at its own input size {native_size} to measure the budget from")
    limit = float(native["nme"].iloc[0]) + nme_points / 100
    passed = set(gate.loc[gate["passed"].astype(bool), "file"])
    candidates = bench[bench["file"].isin(passed) & (bench["nme"] <= limit)]
    if candidates.empty:
        raise ValueError(f"no file passed the gate within {nme_points} NME points of {native['file'].iloc[0]}")
    fastest = candidates[latency].min()
    return candidates[candidates[latency] <= fastest * (1 + tie_share)].sort_values(["size_mb", latency]).iloc[0]


def ship(choice: pd.Series, export_dir: str | Path, out_dir: str | Path, latency: str) -> Path:
    """Copy the chosen file to ``out_dir/best.tflite`` and describe it in ``best.json``."""
    out_dir = Path(out_dir)
    atomic_copy(Path(export_dir) / choice["file"], out_dir / "best.tflite")
    fields = {key: choice[key] for key in ("file", "model", "input_size", "precision", "size_mb", "gflops", "nme", latency)}
    atomic_write_text(out_dir / "best.json", json.dumps({**fields, "rule": "fastest passing the gate within the NME budget"}, indent=2, default=float))
    return out_dir / "best.tflite"
