"""One export: a trained student to ``.tflite`` files at each precision, checked by the parity
gate on its validation crops (``python -m lib.export`` runs it)."""

from __future__ import annotations

import json
from pathlib import Path

from lib.export.convert import PRECISIONS, convert_float, quantise
from lib.export.crops import export_datasets
from lib.export.graph import DeployableLandmarks
from lib.export.parity import FP32_TOLERANCE, NME_BUDGET, check_parity, crop_pixels, enforce
from lib.io import atomic_write_text
from lib.models.checkpoint import load_checkpoint, load_model


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
    name: str = "student",
) -> list[dict]:
    """Convert, quantise and check; returns the report rows (also written as
    ``export_report_<name>_<size>.json``, files ``<name>_<size>_<precision>.tflite``: ``name``
    tells the networks of one export folder apart). The export fails if a file of a ``required``
    precision (default: every one) fails the gate; the others are written and reported either way."""
    if not name or "_" in name or "/" in name:
        raise ValueError(f"name {name!r}: a network's name in file names must be non-empty, without '_' or '/'")
    unknown = set(precisions) - set(PRECISIONS)
    if unknown:
        raise ValueError(f"unknown precisions {sorted(unknown)}; options: {PRECISIONS}")
    model = load_model(checkpoint, input_size=input_size)
    graph = DeployableLandmarks(model)
    size = graph.input_size
    calibration_set, validation_set = export_datasets(load_checkpoint(checkpoint)["config"], size, data_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    float_path = convert_float(graph, out_dir / f"{name}_{size}_fp32.tflite")
    files = {"fp32": float_path}
    calibration = [crop[None] for crop in crop_pixels(calibration_set, calibration_crops)] if "int8" in precisions else []
    for precision in precisions:
        if precision != "fp32":
            files[precision] = quantise(float_path, precision, out_dir / f"{name}_{size}_{precision}.tflite", calibration)
    selected = {p: files[p] for p in precisions}
    reports = check_parity(graph, selected, validation_set, parity_faces, fp32_tolerance, nme_budget)
    rows = [{**r.to_dict(), "model": name, "input_size": size, "checkpoint": str(checkpoint)} for r in reports]
    atomic_write_text(out_dir / f"export_report_{name}_{size}.json", json.dumps(rows, indent=2))
    if "fp32" not in precisions:
        float_path.unlink()
    enforce(reports, None if required is None else set(required))
    return rows
