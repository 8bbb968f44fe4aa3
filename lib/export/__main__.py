"""``python -m lib.export --checkpoint best.pt --out DIR [--precision fp32,fp16,int8w,int8] [--input-size S]``

Converts a trained student to ``.tflite`` files, runs the parity gate on its validation crops
and writes ``DIR/export_report.json``; exits non-zero, naming the file, if the gate fails.
Run it with the export environment's Python (``.venv-export/bin/python``; ``make export-venv``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lib.export.convert import PRECISIONS, convert_float, quantise
from lib.export.graph import DeployableLandmarks
from lib.export.parity import FP32_TOLERANCE, NME_BUDGET, ParityError, check_parity, crop_pixels, enforce
from lib.export.splits import export_datasets
from lib.io import atomic_write_text
from lib.training.checkpoint import load_checkpoint, load_model


def export(
    checkpoint: Path,
    out_dir: Path,
    precisions: list[str],
    input_size: int | None = None,
    data_root: str | None = None,
    calibration_crops: int = 64,
    parity_faces: int = 64,
    fp32_tolerance: float = FP32_TOLERANCE,
    nme_budget: float = NME_BUDGET,
    required: list[str] | None = None,
) -> list[dict]:
    """Convert, quantise and check; returns the report rows (also written as JSON). The export
    fails if a file of a ``required`` precision (default: every one) fails the gate; the others
    are written and reported either way."""
    unknown = set(precisions) - set(PRECISIONS)
    if unknown:
        raise ValueError(f"unknown precisions {sorted(unknown)}; options: {PRECISIONS}")
    model = load_model(checkpoint, input_size=input_size)
    graph = DeployableLandmarks(model)
    size = graph.input_size
    calibration_set, validation_set = export_datasets(load_checkpoint(checkpoint)["config"], size, data_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    float_path = convert_float(graph, out_dir / f"student_{size}_fp32.tflite")
    files = {"fp32": float_path}
    calibration = [crop[None] for crop in crop_pixels(calibration_set, calibration_crops)] if "int8" in precisions else []
    for precision in precisions:
        if precision != "fp32":
            files[precision] = quantise(float_path, precision, out_dir / f"student_{size}_{precision}.tflite", calibration)
    selected = {p: files[p] for p in precisions}
    reports = check_parity(graph, selected, validation_set, parity_faces, fp32_tolerance, nme_budget)
    rows = [{**r.to_dict(), "input_size": size, "checkpoint": str(checkpoint)} for r in reports]
    atomic_write_text(out_dir / f"export_report_{size}.json", json.dumps(rows, indent=2))
    if "fp32" not in precisions:
        float_path.unlink()
    enforce(reports, None if required is None else set(required))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a landmark checkpoint to .tflite with a parity gate.")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--precision", default="fp32,fp16,int8w,int8", help=f"comma-separated subset of {','.join(PRECISIONS)}")
    parser.add_argument("--input-size", type=int, default=None, help="input side (default: the checkpoint's)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: the checkpoint's)")
    parser.add_argument("--calibration-crops", type=int, default=64)
    parser.add_argument("--parity-faces", type=int, default=64)
    parser.add_argument("--fp32-tolerance", type=float, default=FP32_TOLERANCE)
    parser.add_argument("--nme-budget", type=float, default=NME_BUDGET, help="allowed NME increase of quantised files (fraction)")
    parser.add_argument("--require", default=None, help="precisions that must pass the gate (default: all exported); the others are only reported")
    args = parser.parse_args(argv)
    try:
        rows = export(
            args.checkpoint,
            args.out,
            args.precision.split(","),
            args.input_size,
            args.data_root,
            args.calibration_crops,
            args.parity_faces,
            args.fp32_tolerance,
            args.nme_budget,
            args.require.split(",") if args.require else None,
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
