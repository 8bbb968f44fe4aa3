"""One export: a trained student to ``.tflite`` files at each precision, checked by the parity
gate on its validation crops (``python -m lib.export`` runs it)."""

from __future__ import annotations

import json
from pathlib import Path

from lib.export.command import ExportSettings
from lib.export.convert import convert_float, quantise
from lib.export.crops import export_datasets
from lib.export.graph import DeployableLandmarks
from lib.export.parity import check_parity, crop_pixels, enforce
from lib.io import atomic_write_text
from lib.models.checkpoint import load_checkpoint, load_model


def export(checkpoint: Path, out_dir: Path, settings: ExportSettings) -> list[dict]:
    """Convert, quantise and check; returns the report rows (also written as
    ``export_report_<name>_<size>.json``, files ``<name>_<size>_<precision>.tflite``: the
    settings' ``name`` tells the networks of one export folder apart). The export fails if a file
    of a ``required`` precision (default: every one) fails the gate; the others are written and
    reported either way."""
    precisions, name = settings.precisions, settings.name
    graph = DeployableLandmarks(load_model(checkpoint, input_size=settings.input_size))
    size = graph.input_size
    calibration_set, validation_set = export_datasets(load_checkpoint(checkpoint)["config"], size, settings.data_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    float_path = convert_float(graph, out_dir / f"{name}_{size}_fp32.tflite")
    files = {"fp32": float_path}
    calibration = [crop[None] for crop in crop_pixels(calibration_set, settings.calibration_crops)] if "int8" in precisions else []
    for precision in precisions:
        if precision != "fp32":
            files[precision] = quantise(float_path, precision, out_dir / f"{name}_{size}_{precision}.tflite", calibration)
    selected = {p: files[p] for p in precisions}
    reports = check_parity(graph, selected, validation_set, settings.parity_faces, settings.fp32_tolerance, settings.nme_budget)
    rows = [{**r.to_dict(), "model": name, "input_size": size, "checkpoint": str(checkpoint)} for r in reports]
    atomic_write_text(out_dir / f"export_report_{name}_{size}.json", json.dumps(rows, indent=2))
    if "fp32" not in precisions:
        float_path.unlink()
    enforce(reports, None if settings.required is None else set(settings.required))
    return rows
