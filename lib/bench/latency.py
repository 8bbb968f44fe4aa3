"""Latency of one batch-1 forward pass: the same network through LiteRT, PyTorch eager and
onnxruntime, each with a fixed number of threads. Warm-up calls first, then the median and the
90th percentile of ``runs`` timed calls (milliseconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lib.deploy.run_model import TFLiteNet
from lib.export.graph import DeployableLandmarks
from lib.timing import time_calls


def compared_threads(threads: tuple[int, ...] | list[int]) -> int:
    """The thread count tables, ratios and plots compare files at: 2 when it was measured (the
    challenge's phones ran small thread pools; 2 is this machine's core count), else the first."""
    return 2 if 2 in threads else threads[0]


def litert_latency(path: str | Path, threads: int, warmup: int = 5, runs: int = 50) -> dict[str, float]:
    """A ``.tflite`` file in the LiteRT interpreter (XNNPACK, ``threads`` threads)."""
    net = TFLiteNet(path, num_threads=threads)
    pixels = np.full(net.input_shape, 127.5, dtype=np.float32)
    return time_calls(lambda: net(pixels), warmup, runs)


def torch_latency(graph: DeployableLandmarks, threads: int, warmup: int = 5, runs: int = 50) -> dict[str, float]:
    """The PyTorch graph in eager mode with ``threads`` intra-op threads."""
    pixels = torch.full((1, graph.input_size, graph.input_size, 3), 127.5)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            return time_calls(lambda: graph(pixels), warmup, runs)
    finally:
        torch.set_num_threads(previous)


def export_onnx(graph: DeployableLandmarks, path: Path) -> Path:
    """The same graph as ONNX (torch.export-based exporter; the legacy TorchScript exporter
    gives wrong numbers for this network)."""
    pixels = torch.full((1, graph.input_size, graph.input_size, 3), 127.5)
    torch.onnx.export(graph.eval(), (pixels,), dynamo=True, input_names=["pixels"], output_names=["landmarks", "heatmaps"]).save(str(path))
    return path


def onnx_latency(path: str | Path, threads: int, warmup: int = 5, runs: int = 50) -> dict[str, float]:
    """An ONNX file in onnxruntime's CPU provider with ``threads`` intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    size = session.get_inputs()[0].shape[1]
    feed = {"pixels": np.full((1, size, size, 3), 127.5, dtype=np.float32)}
    return time_calls(lambda: session.run(None, feed), warmup, runs)
