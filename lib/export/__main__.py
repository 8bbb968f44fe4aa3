"""``python -m lib.export --checkpoint best.pt --out DIR [--precisions fp32 fp16 int8w int8] [--input-size S] [--name student]``

Converts a trained student to ``.tflite`` files (``DIR/<name>_<size>_<precision>.tflite``), runs
the parity gate on its validation crops and writes ``DIR/export_report_<name>_<size>.json``;
exits non-zero, naming the file, if the gate fails.
Run it with the export environment's Python (``.venv-export/bin/python``; ``make export-venv``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lib.export.command import ExportSettings, add_arguments
from lib.export.parity import ParityError
from lib.export.student_export import export


def build_parser() -> argparse.ArgumentParser:
    """The command line's options (:func:`lib.export.command.export_command` builds a call)."""
    parser = argparse.ArgumentParser(prog="python -m lib.export", description="Export a landmark checkpoint to .tflite with a parity gate.")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rows = export(args.checkpoint, args.out, ExportSettings.from_arguments(args))
    except ParityError as error:
        print(error, file=sys.stderr)
        return 1
    for row in rows:
        status = "pass" if row["passed"] else "FAIL"
        print(f"{Path(row['file']).name}: {row['size_mb']:.2f} MB, NME {100 * row['nme_tflite']:.2f} [{status}: {row['reason']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
