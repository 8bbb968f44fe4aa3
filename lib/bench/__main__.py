"""``python -m lib.bench --checkpoint best.pt --files DIR/*.tflite --out DIR [--threads 1 2 4] [--runs 50] [--rounds 9]``

Writes ``bench.json``, ``bench.csv``, ``references.csv`` (MediaPipe's face-landmark model and face
detector, timed in the same run) and ``pareto.png`` (NME against LiteRT latency) to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lib.bench.embedded_benchmark import BenchSettings, benchmark
from lib.bench.latency import compared_threads
from lib.bench.plots import pareto_figure
from lib.io import atomic_save_figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Embedded timing of exported .tflite files.")
    parser.add_argument("--checkpoint", required=True, type=Path, help="the PyTorch checkpoint the files were exported from")
    parser.add_argument("--files", required=True, nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds that time every file and the references")
    parser.add_argument("--faces", type=int, default=64, help="validation faces for the NME of each file")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    threads = tuple(args.threads)
    settings = BenchSettings(threads, args.warmup, args.runs, args.faces, args.rounds, args.data_root)
    table, references = benchmark(dict.fromkeys(args.files, args.checkpoint), args.out, settings)
    atomic_save_figure(pareto_figure(table, f"litert_ms_t{compared_threads(threads)}", references), args.out / "pareto.png", dpi=100)
    columns = [
        "file",
        "model",
        "size_mb",
        "gflops",
        *[f"{n}_ms_t{t}" for t in threads for n in ("litert", "torch", "onnx")],
        *[f"vs_mediapipe_t{t}" for t in threads],
        "nme",
        "score",
    ]
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(references.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
