"""PyTorch landmark model -> ``.tflite`` files at several precisions (runs in ``.venv-export``).

``litert-torch`` converts the float graph (:class:`lib.export.graph.DeployableLandmarks`);
``ai-edge-quantizer`` (a dependency of litert-torch) makes the quantised files from it:

    fp32       the converted graph
    fp16       weights stored as float16, computed in float32 (half the size, same ops)
    int8w      weight-only int8 (per-channel), activations float32
    int8       full integer: int8 weights and activations, int8 input and output tensors,
               activation ranges calibrated on real training crops (never random tensors)

The converter's dependencies (jax, an old typing-extensions pin) would break the notebook
kernel, so this module is only imported in the export environment (see the Makefile).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from lib.export.command import PRECISIONS
from lib.export.graph import DeployableLandmarks
from lib.io import atomic_path

SIGNATURE = "serving_default"
# Output-tensor scopes kept in float32 by ``int8``: the three output convs, the AAM fusion, the
# decoding after it and the outputs (litert-torch names tensors by the PyTorch module path).
FLOAT_SCOPES = r"Outputs_outputs|AAMFusion_aam|LandmarkNet_model;|serving_default_output"


def signature_input(path: Path) -> str:
    """The name of the (single) input of a file's default signature."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path)).get_signature_list()[SIGNATURE]["inputs"][0]


def convert_float(graph: DeployableLandmarks, path: Path) -> Path:
    """Convert ``graph`` to a float32 ``.tflite`` file at ``path`` (atomically)."""
    import litert_torch

    sample = torch.full((1, graph.input_size, graph.input_size, 3), 127.5)
    edge_model = litert_torch.convert(graph.eval(), (sample,))
    with atomic_path(path) as tmp:
        edge_model.export(str(tmp))
    return path


def quantise(float_path: Path, precision: str, path: Path, calibration: Iterable[np.ndarray] = ()) -> Path:
    """Write the ``precision`` variant of the float file ``float_path`` to ``path``.

    ``calibration``: (1, S, S, 3) float32 RGB crops for ``int8`` activation ranges.
    """
    from ai_edge_quantizer import qtyping, quantizer, recipe

    engine = quantizer.Quantizer(str(float_path))
    if precision == "fp16":
        engine.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16, algorithm_key="float_casting")
    elif precision == "int8w":
        engine.load_quantization_recipe(recipe.weight_only_wi8_afp32())
    elif precision == "int8":
        engine.load_quantization_recipe(recipe.static_wi8_ai8())
        # Heatmaps and their decoding stay float: all-int8 cost 1.4 NME points here, this 0.4.
        engine.update_quantization_recipe(regex=FLOAT_SCOPES, operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, algorithm_key="no_quantize")
    else:
        raise ValueError(f"unknown precision {precision!r}; options: {PRECISIONS}")
    result = None
    if engine.need_calibration:
        samples = list(calibration)
        if not samples:
            raise ValueError("int8 needs calibration crops")
        result = engine.calibrate({SIGNATURE: [{signature_input(float_path): sample} for sample in samples]})
    with atomic_path(path) as tmp:
        engine.quantize(result, enable_progress_report=False).export_model(str(tmp), overwrite=True)
    return path
