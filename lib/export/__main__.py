"""``python -m lib.export --checkpoint best.pt --out DIR [--precision fp32 fp16 int8w int8] [--input-size S] [--name student]``

Converts a trained student to ``.tflite`` files (``DIR/<name>_<size>_<precision>.tflite``), runs
the parity gate on its validation crops and writes ``DIR/export_report_<name>_<size>.json``;
exits non-zero, naming the file, if the gate fails.
Run it with the export environment's Python (``.venv-export/bin/python``; ``make export-venv``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lib.export.convert import PRECISIONS
from lib.export.parity import FP32_TOLERANCE, NME_BUDGET, ParityError
from lib.export.student_export import export


def build_parser() -> argparse.ArgumentParser:
    """The command line's options (:func:`lib.export.command.export_command` builds a call)."""
    parser = argparse.ArgumentParser(prog="python -m lib.export", description="Export a landmark checkpoint to .tflite with a parity gate.")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=list(PRECISIONS), help="the precisions to export (default: all)")
    parser.add_argument("--input-size", type=int, default=None, help="input side (default: the checkpoint's)")
    parser.add_argument("--name", default="student", help="the network's name in the file names (e.g. pruned40)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: the checkpoint's)")
    parser.add_argument("--calibration-crops", type=int, default=64)
    parser.add_argument("--parity-faces", type=int, default=64)
    parser.add_argument("--fp32-tolerance", type=float, default=FP32_TOLERANCE)
    parser.add_argument("--nme-budget", type=float, default=NME_BUDGET, help="allowed NME increase of quantised files (fraction)")
    parser.add_argument(
        "--require",
        nargs="+",
        choices=PRECISIONS,
        default=None,
        help="precisions that must pass the gate (default: all exported); the others are only reported",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rows = export(
            args.checkpoint,
            args.out,
            args.precision,
            args.input_size,
            args.data_root,
            args.calibration_crops,
            args.parity_faces,
            args.fp32_tolerance,
            args.nme_budget,
            args.require,
            args.name,
        )
    except ParityError as error:
        print(error, file=sys.stderr)
        return 1
    for row in rows:
        status = "pass" if row["passed"] else "FAIL"
        print(f"{Path(row['file']).name}: {row['size_mb']:.2f} MB, NME {100 * row['nme_tflite']:.2f} [{status}: {row['reason']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
