"""Latency of one batch-1 forward pass: the same network through LiteRT, PyTorch eager and
onnxruntime, each with a fixed number of threads. Warm-up calls first, then the median and the
90th percentile of ``runs`` timed calls (milliseconds); ``.tflite`` files that are compared with
one another are timed in alternating rounds (:func:`litert_rounds`)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
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


def litert_rounds(paths: Mapping[str, str | Path], threads: int, rounds: int, warmup: int = 5, runs: int = 50) -> dict[str, list[dict[str, float]]]:
    """``.tflite`` files (a name -> path) timed against one another in the LiteRT interpreter
    (XNNPACK, ``threads`` threads): ``rounds`` rounds, each timing every file in turn (``warmup``
    untimed, then ``runs`` timed calls), the order reversed every other round, so that a change in
    the machine's speed during the measurement falls on every file alike. name -> one
    ``{"median", "p90"}`` (ms) per round, in round order: two files' latencies in the same round
    are a paired measurement."""
    nets = {name: TFLiteNet(path, num_threads=threads) for name, path in paths.items()}
    calls = {name: partial(net, np.full(net.input_shape, 127.5, dtype=np.float32)) for name, net in nets.items()}
    timed: dict[str, list[dict[str, float]]] = {name: [] for name in nets}
    order = list(nets)
    for index in range(rounds):
        for name in order if index % 2 == 0 else order[::-1]:
            timed[name].append(time_calls(calls[name], warmup, runs))
    return timed


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
