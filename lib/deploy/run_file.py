"""Run one ``.tflite`` file on saved inputs, standalone (numpy + a TFLite runtime only):
``python run_file.py model.tflite inputs.npy outputs.npz`` writes ``output_0 ...`` in the file's
output order. Used to run files under another runtime (e.g. ``tflite-runtime`` 2.14 in its own
venv), so that its results can be compared with the project's interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_model import TFLiteNet  # noqa: E402  (the sibling file, importable without the project)


def main(argv: list[str]) -> int:
    model, inputs, outputs = argv
    net = TFLiteNet(model)
    results = [net(sample[None]) for sample in np.load(inputs)]
    np.savez(outputs, **{f"output_{k}": np.concatenate([r[k] for r in results]) for k in range(len(results[0]))})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
