"""Which exported file ships as ``best.tflite``: one rule for every profile (:data:`SHIP_RULE`).

Among the files that passed the export step's parity gate (each network exported only at the
input size it trained at), the most accurate by validation NME (faces no training step saw)
whose LiteRT latency is at most the reference model's (MediaPipe's face-landmark model) times
``max_ratio`` beyond the timer's noise. The file and the reference are timed in the same
alternating rounds of one bench run at the same thread count
(:mod:`lib.bench.embedded_benchmark`): a file's ratio is the median of its per-round ratios, and
it is within the cap when that ratio plus :data:`TIMER_SIGMAS` standard errors of that median is
(a file that runs at the reference's speed would otherwise be shipped by one run and not by the
next). The standard error, not the spread of single rounds, is the median's noise: it is how far
the median moves between bench runs (nine rounds 0.03 apart give 0.013), where three per-round
deviations would count a file at 0.83x as no faster than one at 0.99x on a noisy machine. Files whose NME is within ``tie_nme`` of that most accurate one are
near-ties (the students' spread between seeds, :func:`seed_spread`: a smaller difference is no
difference) and the fastest of them ships; near-ties whose ratios lie within the timer's noise of the fastest's are as fast, and
the smallest file of those ships. When no file is within the cap, the fastest ships (the
smallest of those as fast) and ``best.json`` says so (``within_latency: false``): a run always
ships. ``best.json`` records the rule, the figures of the chosen file, and the runner-up.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from lib.headline import percent
from lib.io import atomic_copy, atomic_write_text

TIMER_SIGMAS = 3.0  # standard errors of the median per-round ratio: a latency difference below this many is the timer's
SHIP_RULE = (
    "the most accurate file by validation NME whose latency is at most the reference's beyond the timer's noise "
    "(median per-round ratio + 3 standard errors of that median, same bench run, same threads); near-ties within tie_nme go to the faster, "
    "and among files as fast within the timer's noise to the smallest"
)
REFERENCE = "mediapipe"  # lib.bench.embedded_benchmark.DEFAULT_REFERENCES: MediaPipe's face-landmark model
FIELDS = ("file", "model", "input_size", "precision", "size_mb", "gflops", "nme")


def read_gate(export_dir: str | Path) -> pd.DataFrame:
    """Every row of the ``export_report_<size>.json`` files of an export folder, ``file`` as the
    file name (the parity gate's verdict per file: ``passed``, ``reason``, ``nme_tflite``...)."""
    rows = [row for path in sorted(Path(export_dir).glob("export_report_*.json")) for row in json.loads(path.read_text())]
    if not rows:
        raise FileNotFoundError(f"{export_dir}: no export_report_*.json (run the export step first)")
    table = pd.DataFrame(rows)
    table["file"] = table["file"].map(lambda p: Path(p).name)
    return table


STUDENTS = ("student + KD", "student alone")  # the student step's ablation models (lib.training.jobs.DISTILLED, ALONE)


def seed_spread(ablation_seeds: str | Path, models: tuple[str, ...] = STUDENTS) -> float:
    """The students' standard deviation of NME over seeds (a fraction), pooled over ``models`` in
    the student step's ``ablation_seeds.csv`` (:func:`lib.training.ablation.seed_summary`):
    sqrt(sum (n - 1) sd^2 / sum (n - 1)) over the models with two seeds or more. Each seed trains
    a model's network again, so both arms measure training's own noise; the KD student's alone
    would understate it (the seeds share one stream of batches and vary initialisation, to which
    distillation makes its student nearly blind). 0 when the file is absent or no model has two
    seeds (no spread measured: no near-ties)."""
    path = Path(ablation_seeds)
    if not path.is_file():
        return 0.0
    table = pd.read_csv(path)
    rows = table[table["model"].isin(models) & (table["seeds"] >= 2) & table["nme_std"].notna()]
    if rows.empty:
        return 0.0
    freedom = rows["seeds"] - 1
    return math.sqrt(float((freedom * rows["nme_std"] ** 2).sum() / freedom.sum()))


def most_accurate_within_latency(
    bench: pd.DataFrame, gate: pd.DataFrame, threads: int, tie_nme: float = 0.0, max_ratio: float = 1.0, reference: str = REFERENCE
) -> tuple[pd.Series, pd.Series | None, dict]:
    """(the row of ``bench`` to ship, the runner-up row or None, the decision's figures) by the
    module's rule. ``bench`` is a :func:`lib.bench.embedded_benchmark.benchmark` table (``nme``,
    ``litert_ms_t<threads>``, ``vs_<reference>_t<threads>`` and its ``_se``); ``gate`` the
    export step's :func:`read_gate`. The runner-up is the best other file by the same rule.
    Raises ``ValueError`` naming what is missing."""
    latency, ratio = f"litert_ms_t{threads}", f"vs_{reference}_t{threads}"
    missing = [column for column in (latency, ratio, f"{ratio}_se", "nme") if column not in bench]
    if missing:
        raise ValueError(f"the bench table lacks {missing}: time the files and {reference!r} at {threads} threads in one run")
    if tie_nme < 0 or max_ratio <= 0:
        raise ValueError(f"tie_nme must be >= 0 and max_ratio > 0, not {tie_nme} and {max_ratio}")
    passed = bench[bench["file"].isin(set(gate.loc[gate["passed"].astype(bool), "file"]))]
    if passed.empty:
        raise ValueError("no exported file passed the parity gate")
    choice = _ranked(passed, ratio, tie_nme, max_ratio).iloc[0]
    rest = passed[passed["file"] != choice["file"]]
    runner_up = _ranked(rest, ratio, tie_nme, max_ratio).iloc[0] if len(rest) else None
    fast_enough = _within_cap(passed, ratio, max_ratio)
    figures = {
        "rule": SHIP_RULE,
        "reference": reference,
        "threads": threads,
        "max_ratio": max_ratio,
        "tie_nme": tie_nme,
        "timer_sigmas": TIMER_SIGMAS,
        "within_latency": bool(fast_enough.any()),
        "candidates": int(len(passed)),
        "within_latency_files": int(fast_enough.sum()),
    }
    return choice, runner_up, figures


def _within_cap(files: pd.DataFrame, ratio: str, max_ratio: float) -> pd.Series:
    """Whether each file's ratio to the reference is at most ``max_ratio`` beyond the timer's
    noise: the median per-round ratio plus :data:`TIMER_SIGMAS` standard errors of it."""
    return files[ratio] + TIMER_SIGMAS * files[f"{ratio}_se"] <= max_ratio


def _ranked(files: pd.DataFrame, ratio: str, tie_nme: float, max_ratio: float) -> pd.DataFrame:
    """``files`` in the rule's order: of those within the cap, the near-ties of the lowest NME
    (:func:`_fastest_first`), then the others by NME; none within the cap: all of them
    :func:`_fastest_first`."""
    fast_enough = files[_within_cap(files, ratio, max_ratio)]
    if fast_enough.empty:
        return _fastest_first(files, ratio)
    tied = fast_enough[fast_enough["nme"] <= fast_enough["nme"].min() + tie_nme]
    return pd.concat([_fastest_first(tied, ratio), fast_enough.drop(tied.index).sort_values(["nme", ratio, "file"])])


def _fastest_first(files: pd.DataFrame, ratio: str) -> pd.DataFrame:
    """``files`` fastest first, those as fast as the fastest (within :data:`TIMER_SIGMAS` of
    their largest standard error: the timer cannot order them) the smallest first (then the
    lower NME, then the name)."""
    as_fast = files[ratio] <= files[ratio].min() + TIMER_SIGMAS * files[f"{ratio}_se"].max()
    return pd.concat([files[as_fast].sort_values(["size_mb", "nme", "file"]), files[~as_fast].sort_values([ratio, "nme", "file"])])


def _described(row: pd.Series, threads: int, reference: str) -> dict:
    """A file's :data:`FIELDS`, its latency and its latency over the reference's, as JSON values."""
    latency, ratio = f"litert_ms_t{threads}", f"vs_{reference}_t{threads}"
    fields = {**{key: row[key] for key in FIELDS}, latency: row[latency], "latency_ratio": row[ratio]}
    return {key: value.item() if hasattr(value, "item") else value for key, value in fields.items()}


def ship(choice: pd.Series, runner_up: pd.Series | None, figures: dict, export_dir: str | Path, out_dir: str | Path) -> Path:
    """Copy the chosen file to ``out_dir/best.tflite`` and describe the decision in
    ``best.json``: the chosen file's fields (``litert_ms_t<threads>`` and ``latency_ratio`` to the
    reference among them), the rule and its figures, and ``runner_up`` (its fields, or null)."""
    out_dir = Path(out_dir)
    threads, reference = figures["threads"], figures["reference"]
    atomic_copy(Path(export_dir) / choice["file"], out_dir / "best.tflite")
    record = {**_described(choice, threads, reference), **figures, "runner_up": None if runner_up is None else _described(runner_up, threads, reference)}
    atomic_write_text(out_dir / "best.json", json.dumps(record, indent=2))
    return out_dir / "best.tflite"


def export_headline(gate: pd.DataFrame) -> tuple[str, dict]:
    """The export step's headline (:mod:`lib.headline`) from :func:`read_gate`: the files written
    and how many passed the parity gate, the largest NME change among those that passed."""
    passed = gate[gate["passed"]]
    numbers = {
        "files": len(gate),
        "passed": len(passed),
        "failed": sorted(gate.loc[~gate["passed"], "file"]),
        "max_nme_delta": passed["nme_delta"].max() if len(passed) else None,
    }
    line = f"{len(passed)} of {len(gate)} files passed the parity gate" + (
        f" (NME change at most {100 * numbers['max_nme_delta']:+.2f} points)" if len(passed) else ""
    )
    return line, {"export": numbers}


def timing_headline(best: dict, references: pd.DataFrame, reference: str = REFERENCE) -> tuple[str, dict]:
    """The timing step's headline (:mod:`lib.headline`) from ``best.json`` (:func:`ship`) and the
    references timed in the same run: the shipped file with the ``reference``'s latency in its
    column (``shipped``) and the runner-up."""
    column = next(key for key in best if key.startswith("litert_ms_t"))
    reference_ms = float(references.loc[references["name"] == reference, column].iloc[0])
    shipped = {**{k: v for k, v in best.items() if k != "runner_up"}, "mediapipe_ms": reference_ms, "latency_column": column}
    line = f"ships {best['file']}: validation NME {percent(best['nme'])}, {best[column]:.2f} ms = {best['latency_ratio']:.2f}x {reference}"
    return line, {"shipped": shipped, "runner_up": best.get("runner_up")}
