"""Do the exported files run on the challenge era's runtime, with the same outputs?

``tflite-runtime`` 2.14.0 is the oldest release installable here (the phones of the final round
ran a 2.11-era runtime); it needs numpy < 2, so it lives in its own small venv
(``make old-runtime-venv``: ``.venv-tflite214``). Each file runs there through
``lib/deploy/run_file.py`` on the same crops as in the project's interpreter
(``ai-edge-litert``), and the largest output difference is reported, or the runtime's error
(an operator or operator version it does not know) when the file does not load.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from lib.deploy import run_file
from lib.deploy.run_model import TFLiteNet
from lib.paths import PROJECT_ROOT

OLD_RUNTIME_PYTHON = PROJECT_ROOT / ".venv-tflite214" / "bin" / "python"


def compare_on_old_runtime(files: dict[str, Path], pixels: np.ndarray, python: Path = OLD_RUNTIME_PYTHON) -> list[dict]:
    """One row per ``{precision: path}``: ``runs`` (bool), ``max_abs_difference`` of every
    output against ai-edge-litert on ``pixels`` ((F, S, S, 3) float32), ``error`` if it failed."""
    if not Path(python).is_file():
        raise FileNotFoundError(f"{python} not found: `make old-runtime-venv` builds it")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.npy"
        np.save(inputs, pixels.astype(np.float32))
        for precision, path in files.items():
            outputs = Path(tmp) / f"{precision}.npz"
            result = subprocess.run([str(python), run_file.__file__, str(path), str(inputs), str(outputs)], capture_output=True, text=True)
            row = {"file": Path(path).name, "precision": precision, "runs": result.returncode == 0, "max_abs_difference": None, "error": None}
            if result.returncode:
                messages = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("INFO:")]
                crash = "killed by a signal" if result.returncode < 0 or result.returncode > 128 else "failed"
                row["error"] = f"{crash} (exit code {result.returncode})" + (f": {messages[-1]}" if messages else ", no message")
            else:
                net = TFLiteNet(path)
                reference = [np.concatenate(parts) for parts in zip(*(net(sample[None]) for sample in pixels), strict=True)]
                old = np.load(outputs)
                row["max_abs_difference"] = max(float(np.abs(old[f"output_{k}"] - ref).max()) for k, ref in enumerate(reference))
            rows.append(row)
    return rows
