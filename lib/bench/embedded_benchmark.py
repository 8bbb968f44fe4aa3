"""The embedded benchmark: for every ``.tflite`` file, its size, parameters, GFLOPs, LiteRT
latency at several thread counts, its NME on validation crops, and, for the same network in the
same run, PyTorch eager and onnxruntime latency; a challenge-style score against a reference;
and MediaPipe's face-landmark model and face detector timed in the same run, as the speed a
student should match. The files and the references are timed in the same alternating rounds
(:func:`lib.bench.latency.litert_rounds`), and a file's latency over a reference's is the
median of its per-round ratios (a paired measurement: the machine's speed drifts between rounds,
not within one), with their standard deviation over the rounds and the standard error of the
median."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lib.bench.challenge_score import DEFAULT_WEIGHTS, challenge_score
from lib.bench.latency import compared_threads, export_onnx, litert_rounds, onnx_latency, torch_latency
from lib.deploy.detector_files import DEFAULT_DETECTOR, MEDIAPIPE_LANDMARKS
from lib.deploy.run_model import TFLiteNet
from lib.export.crops import export_datasets
from lib.export.graph import DeployableLandmarks
from lib.export.parity import crop_pixels, landmarks_to_image, tflite_outputs
from lib.formats.table import points_array
from lib.io import atomic_save_csv, atomic_write_text
from lib.metrics import nme
from lib.models.checkpoint import load_checkpoint, load_model
from lib.models.complexity import count_flops, count_parameters
from lib.paths import resolve
from lib.progress import track

# What a user would run instead, timed in the same run: MediaPipe's FaceMesh landmark model
# (192 px, 468 points) and the BlazeFace detector the final package runs before the student.
DEFAULT_REFERENCES = {"mediapipe": MEDIAPIPE_LANDMARKS, "blazeface": DEFAULT_DETECTOR}


def precision_of(path: Path) -> str:
    """``student_192_int8.tflite`` -> ``int8`` (the export's naming, ``<model>_<size>_<precision>``)."""
    return path.stem.rsplit("_", 1)[-1]


def model_of(path: Path) -> str:
    """``pruned40_96_int8.tflite`` -> ``pruned40``: the network a file was exported from."""
    return path.stem.rsplit("_", 2)[0]


Rounds = dict[int, dict[str, list[dict[str, float]]]]  # threads -> name -> {median, p90} ms per round


def latency_columns(timed: Rounds, name: str) -> dict[str, float]:
    """``litert_ms_t<k>`` and ``litert_p90_t<k>`` of ``name`` in :func:`litert_rounds`'s rounds
    at each thread count ``k``: the median over rounds of each round's median and p90 (ms)."""
    columns = {}
    for t, by_name in timed.items():
        columns[f"litert_ms_t{t}"] = float(np.median([r["median"] for r in by_name[name]]))
        columns[f"litert_p90_t{t}"] = float(np.median([r["p90"] for r in by_name[name]]))
    return columns


def ratio_columns(timed: Rounds, name: str, references: list[str]) -> dict[str, float]:
    """``vs_<reference>_t<k>``: ``name``'s latency over each reference's, the median over rounds
    of the ratio within each round (1 = as fast); ``vs_<reference>_t<k>_sd``, the standard
    deviation of those per-round ratios (how far the timer's rounds disagree); and
    ``vs_<reference>_t<k>_se``, the standard error of their median, sqrt(pi / 2) sd / sqrt(rounds)
    (how far the median itself moves from one bench run to the next)."""
    columns = {}
    for t, by_name in timed.items():
        for reference in references:
            paired = [ours["median"] / theirs["median"] for ours, theirs in zip(by_name[name], by_name[reference], strict=True)]
            spread = float(np.std(paired, ddof=1)) if len(paired) > 1 else 0.0
            columns[f"vs_{reference}_t{t}"] = float(np.median(paired))
            columns[f"vs_{reference}_t{t}_sd"] = spread
            columns[f"vs_{reference}_t{t}_se"] = math.sqrt(math.pi / 2) * spread / math.sqrt(len(paired))
    return columns


def reference_rows(references: Mapping[str, Path], timed: Rounds) -> pd.DataFrame:
    """One row per reference ``.tflite`` file (a name -> path) of the same rounds as the students:
    ``name``, ``file``, ``size_mb``, ``input_shape`` and :func:`latency_columns`."""
    rows = []
    for name, path in references.items():
        shape = "x".join(map(str, TFLiteNet(path).input_shape))
        rows.append({"name": name, "file": path.name, "size_mb": path.stat().st_size / 1e6, "input_shape": shape, **latency_columns(timed, name)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class BenchSettings:
    """How the files are timed and scored: ``threads`` (LiteRT, PyTorch and onnxruntime each at
    every count), ``warmup`` and ``runs`` per latency (the median and p90 of ``runs``), LiteRT's
    in ``rounds`` alternating rounds (files and references alike), ``faces``
    validation crops scored per file (from ``data_root``, default the checkpoint's own data),
    ``weights`` of the challenge score, ``references`` (name -> ``.tflite``; default
    :data:`DEFAULT_REFERENCES`) timed in the same run."""

    threads: tuple[int, ...] = (1, 2, 4)
    warmup: int = 5
    runs: int = 50
    faces: int = 64
    rounds: int = 9
    data_root: str | None = None
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    references: Mapping[str, str | Path] = field(default_factory=lambda: dict(DEFAULT_REFERENCES))


def network_baseline(checkpoint: Path, size: int, onnx_path: Path, settings: BenchSettings) -> dict:
    """What every file of one network at one input size shares: parameters (M), GFLOPs, the
    validation crops (``validation``, ``pixels``) and the PyTorch and onnxruntime latencies of the
    network (``torch_ms_t<k>``, ``onnx_ms_t<k>``: {median, p90} ms); the ONNX file is written to
    ``onnx_path``."""
    graph = DeployableLandmarks(load_model(checkpoint, input_size=size))
    export_onnx(graph, onnx_path)
    _, validation = export_datasets(load_checkpoint(checkpoint)["config"], size, settings.data_root)
    timed = (settings.warmup, settings.runs)
    return {
        "params_m": count_parameters(graph.model) / 1e6,
        "gflops": count_flops(graph.model, size) / 1e9,
        "validation": validation,
        "pixels": crop_pixels(validation, settings.faces),
        **{f"torch_ms_t{t}": torch_latency(graph, t, *timed) for t in settings.threads},
        **{f"onnx_ms_t{t}": onnx_latency(onnx_path, t, *timed) for t in settings.threads},
    }


def file_row(path: Path, size: int, base: dict, settings: BenchSettings) -> dict:
    """One ``.tflite`` file's row: what it is, its NME on the network's validation crops and its
    network's PyTorch and onnxruntime latencies at every thread count."""
    points, _ = tflite_outputs(TFLiteNet(path), base["pixels"])
    truth = points_array(base["validation"].table)[: len(points)]
    row = {
        "file": path.name,
        "model": model_of(path),
        "input_size": size,
        "precision": precision_of(path),
        "size_mb": path.stat().st_size / 1e6,
        "params_m": base["params_m"],
        "gflops": base["gflops"],
        "nme": float(nme(landmarks_to_image(points, base["validation"], size), truth, base["validation"].scheme).mean()),
        "faces": len(points),
    }
    for t in settings.threads:
        for name in ("torch", "onnx"):
            row[f"{name}_ms_t{t}"], row[f"{name}_p90_t{t}"] = base[f"{name}_ms_t{t}"]["median"], base[f"{name}_ms_t{t}"]["p90"]
    return row


def scored(table: pd.DataFrame, settings: BenchSettings) -> pd.DataFrame:
    """``table`` with ``score`` against the fp32 file of the largest input size and network (100 =
    equal to it) and ``score_reference``."""
    speed = f"litert_ms_t{compared_threads(settings.threads)}"
    fp32 = table[table["precision"] == "fp32"]
    reference = (fp32 if len(fp32) else table).sort_values(["input_size", "params_m"]).iloc[-1]
    keys = {"nme": "nme", "gflops": "gflops", "size_mb": "size_mb", "latency_ms": speed}
    table["score"] = [
        challenge_score({k: row[c] for k, c in keys.items()}, {k: reference[c] for k, c in keys.items()}, settings.weights) for _, row in table.iterrows()
    ]
    table["score_reference"] = reference["file"]
    return table


def benchmark(
    files: Mapping[Path, str | Path], out_dir: str | Path, settings: BenchSettings = BenchSettings(), progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(students, references): one row per ``.tflite`` file of ``files`` (each file -> the
    checkpoint it was exported from: PyTorch and onnxruntime time that network at the file's
    input size, and its validation crops score the file, :func:`file_row`; its LiteRT latency and
    its ratios to each reference come from the rounds, :func:`latency_columns` and
    :func:`ratio_columns`; then :func:`scored`), and one per reference model timed in the same
    rounds (:func:`reference_rows`). Writes ``bench.json``, ``bench.csv`` and ``references.csv``
    into ``out_dir``. Latencies in ms (median and p90 per thread count); ``nme`` as a fraction."""
    if not files:
        raise ValueError("no .tflite files to benchmark")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    references = {name: resolve(path) for name, path in settings.references.items()}
    for path in references.values():
        if not path.is_file():
            raise FileNotFoundError(f"reference model {path} not found (make detector extracts MediaPipe's files)")
    timed_paths = {**references, **{str(path): path for path in files}}
    timed = {
        t: litert_rounds(timed_paths, t, settings.rounds, settings.warmup, settings.runs)
        for t in track(settings.threads, desc="LiteRT rounds", disable=not progress)
    }
    baselines: dict[tuple[Path, int], dict] = {}
    rows = []
    for path in track(sorted(files), desc="bench", disable=not progress):
        checkpoint, size = Path(files[path]), TFLiteNet(path).input_shape[1]
        if (checkpoint, size) not in baselines:
            baselines[checkpoint, size] = network_baseline(checkpoint, size, out_dir / f"{model_of(path)}_{size}.onnx", settings)
        rows.append(
            {
                **file_row(path, size, baselines[checkpoint, size], settings),
                **latency_columns(timed, str(path)),
                **ratio_columns(timed, str(path), list(references)),
            }
        )
    table = scored(pd.DataFrame(rows), settings)
    reference_table = reference_rows(references, timed)
    for name, frame in (("bench.csv", table), ("references.csv", reference_table)):
        atomic_save_csv(frame, out_dir / name, index=False)
    record = {
        "threads": list(settings.threads),
        "runs": settings.runs,
        "warmup": settings.warmup,
        "rounds": settings.rounds,
        "weights": dict(settings.weights),
        "rows": table.to_dict("records"),
        "references": reference_table.to_dict("records"),
    }
    atomic_write_text(out_dir / "bench.json", json.dumps(record, indent=2))
    return table, reference_table
