"""The parity gate: every exported file against the PyTorch graph on validation crops.

For each file: the largest absolute difference of the fused heatmaps and of the landmarks
(in [-1, 1]), the NME of both on the crops' ground truth, the file's size and its operators.
A float32 file passes when its heatmaps agree within ``fp32_tolerance``; any other precision
passes when its NME is at most ``nme_budget`` above the PyTorch NME (NME as a fraction:
0.002 = 0.2 NME points).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lib.data.dataset import PIXEL_MEAN, PIXEL_SCALE, LandmarkDataset
from lib.data.geometry import apply_affine, grid_to_crop, normalised_to_grid
from lib.deploy.run_model import HEATMAP_STRIDE, TFLiteNet
from lib.export.graph import DeployableLandmarks
from lib.formats.table import points_array
from lib.metrics import nme

FP32_TOLERANCE = 1e-4
NME_BUDGET = 0.002


class ParityError(RuntimeError):
    """An exported file disagrees with PyTorch beyond the gate's limits."""


@dataclass
class ParityReport:
    """What the gate measured for one file (NMEs as fractions, sizes in MB)."""

    file: str
    precision: str
    size_mb: float
    faces: int
    max_abs_heatmap: float
    max_abs_landmark: float
    nme_torch: float
    nme_tflite: float
    nme_delta: float
    passed: bool
    reason: str
    ops: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def crop_pixels(dataset: LandmarkDataset, limit: int | None = None) -> np.ndarray:
    """(F, S, S, 3) float32 RGB pixels of the dataset's deterministic crops (the graph's input)."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    images = torch.stack([dataset[i]["image"] for i in range(count)])
    return (images * PIXEL_SCALE + PIXEL_MEAN).permute(0, 2, 3, 1).numpy().astype(np.float32)


def landmarks_to_image(landmarks: np.ndarray, dataset: LandmarkDataset, input_size: int) -> np.ndarray:
    """(F, N, 2) graph landmarks in [-1, 1] -> original-image pixels through each crop's inverse."""
    grid = input_size // HEATMAP_STRIDE
    crop_points = grid_to_crop(normalised_to_grid(landmarks.astype(np.float64), grid), input_size, grid)
    inverses = np.stack([dataset[i]["crop_to_image"].numpy() for i in range(len(landmarks))])
    return apply_affine(inverses, crop_points)


def tflite_outputs(net: TFLiteNet, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, N, 2) landmarks and (F, N, G, G) heatmaps of a file, one crop at a time."""
    landmarks, heatmaps = [], []
    for crop in pixels:
        outputs = net(crop[None])
        landmarks.append(next(o for o in outputs if o.ndim == 3)[0])
        heatmaps.append(next(o for o in outputs if o.ndim == 4)[0])
    return np.stack(landmarks), np.stack(heatmaps)


def torch_outputs(graph: DeployableLandmarks, pixels: np.ndarray, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(F, N, 2) landmarks and (F, N, G, G) heatmaps of the PyTorch graph."""
    landmarks, heatmaps = [], []
    with torch.no_grad():
        for start in range(0, len(pixels), batch_size):
            points, maps = graph(torch.from_numpy(pixels[start : start + batch_size]))
            landmarks.append(points.numpy())
            heatmaps.append(maps.numpy())
    return np.concatenate(landmarks), np.concatenate(heatmaps)


def operator_counts(path: str | Path) -> dict[str, int]:
    """``{operator name: how many}`` of a file's graph (read without delegates, which would
    replace the operators they take over by one ``DELEGATE`` node)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return dict(sorted(Counter(op["op_name"] for op in interpreter._get_ops_details()).items()))


def check_parity(
    graph: DeployableLandmarks,
    files: dict[str, Path],
    dataset: LandmarkDataset,
    limit: int | None = 64,
    fp32_tolerance: float = FP32_TOLERANCE,
    nme_budget: float = NME_BUDGET,
) -> list[ParityReport]:
    """A :class:`ParityReport` for each ``{precision: path}`` on the first ``limit`` crops."""
    pixels = crop_pixels(dataset, limit)
    truth = points_array(dataset.table)[: len(pixels)]
    scheme = dataset.scheme
    reference_points, reference_maps = torch_outputs(graph, pixels)
    nme_torch = float(nme(landmarks_to_image(reference_points, dataset, graph.input_size), truth, scheme).mean())
    reports = []
    for precision, path in files.items():
        net = TFLiteNet(path)
        points, maps = tflite_outputs(net, pixels)
        nme_file = float(nme(landmarks_to_image(points, dataset, graph.input_size), truth, scheme).mean())
        heatmap_error = float(np.abs(maps - reference_maps).max())
        delta = nme_file - nme_torch
        if precision == "fp32":
            passed = heatmap_error <= fp32_tolerance
            reason = f"max |heatmap difference| {heatmap_error:.2e} {'<=' if passed else '>'} {fp32_tolerance:.0e}"
        else:
            passed = delta <= nme_budget
            reason = (
                f"NME {100 * nme_file:.3f} vs PyTorch {100 * nme_torch:.3f}: +{100 * delta:.3f} points {'<=' if passed else '>'} budget {100 * nme_budget:.2f}"
            )
        reports.append(
            ParityReport(
                file=str(path),
                precision=precision,
                size_mb=Path(path).stat().st_size / 1e6,
                faces=len(pixels),
                max_abs_heatmap=heatmap_error,
                max_abs_landmark=float(np.abs(points - reference_points).max()),
                nme_torch=nme_torch,
                nme_tflite=nme_file,
                nme_delta=delta,
                passed=passed,
                reason=reason,
                ops=operator_counts(path),
            )
        )
    return reports


def enforce(reports: list[ParityReport], required: set[str] | None = None) -> None:
    """Raise :class:`ParityError` naming every file of a ``required`` precision (default: all)
    that failed the gate."""
    failed = [f"{Path(r.file).name} ({r.precision}): {r.reason}" for r in reports if not r.passed and (required is None or r.precision in required)]
    if failed:
        raise ParityError("parity gate failed: " + "; ".join(failed))
