"""Standalone landmark runtime: face detection + 51-point landmarks from ``.tflite`` files.

This one file is the final-round package's ``run_model.py`` (copied verbatim) and the project's
TFLite inference path, so both write byte-identical files. It needs only numpy, OpenCV and a
TFLite interpreter (``ai-edge-litert`` or ``tflite-runtime``), never the project::

    python run_model.py <image_list.txt> <output_dir> [--model best.tflite] [--detector face_detector.tflite]
        [--close-up-detector face_detector_close_up.tflite] [--settings settings.json]

``image_list.txt`` holds one image path per line (UTF-8, a byte-order mark allowed; a relative
path is read against the working directory, else against the list's folder);
``<output_dir>/<stem>.txt`` receives one ``.pts`` block per face, faces right to left by the x
of their centre, coordinates 1-based pixels of the original image. One image's failure never
stops the batch: an image that cannot be read or predicted gets an empty file, a face whose
landmarks are not finite is left out, and an image whose stem an earlier, different image of the
list took is not predicted (outputs are named by the stem; a path listed twice is predicted
once); each is reported on stderr with its reason, and a summary line counts the files written,
the problems and the faces whose heatmap confidence stayed low (written all the same). A
settings, model, detector or list file that cannot be used stops the run before anything is
written, naming the file (exit status 2); otherwise the exit status is 0 unless ``--strict`` is
given and something failed. ``settings.json`` (:class:`PackageSettings`) holds
every choice the submission was made with: the box-to-crop rule, the detector threshold and
layout (tiles, the close-up model), the most faces kept per image, and the flip test-time
augmentation's landmark permutation (or null), whether the first crop of a face is turned to
level the eyes the detector found (a rolled face seen upright), and the refinement passes: how
many times each face is predicted again from the training crop around its own landmarks, which
places the crop as training did wherever the detector's box sits off the face, and for which
faces (every face, or only a face whose landmarks ask for a crop beyond a bound from the one
they were predicted from: a second look only where the first was off).

Conventions shared with the project (tested against it): pixels are 0-based in memory with the
centre of the top-left pixel at (0, 0); a crop of side ``S`` maps the square of side ``200 *
scale`` around ``centre`` onto ``S x S`` pixels with the centre on ``(S - 1) / 2``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

import cv2
import numpy as np

PTS_ORIGIN = 1.0
DECIMALS = 3
MAX_FACES = 3
HEATMAP_STRIDE = 4  # input pixels per heatmap cell: the grid is input_size // HEATMAP_STRIDE
CROP_UNIT = 200.0  # pixels: a crop of scale s covers a square of side CROP_UNIT * s
LANDMARK_BOX_FACTOR = 1.4  # the training crop: the landmarks' box, its longer side times this
MAX_CROP_SHIFT = 0.5  # a refinement crop whose centre moves more than this share of the last crop's side (the face half out of it) is undone
MAX_CROP_ZOOM = 1.5  # likewise one whose side grows or shrinks by more than this factor
MIN_SCORE = 0.4  # the detector's score threshold where none was measured on a detector set
LOW_CONFIDENCE = 0.3  # a face whose heatmap confidence stays below this (the targets' peak is 1) is reported
# A detection is a row of pixels: the face's box x0, y0, x1, y1, then the (x, y) of its right and
# of its left eye (BlazeFace's first two keypoints; the image's left and right in an upright face).
DETECTION_COLUMNS = 8
EYES = slice(4, 8)


class BadInput(ValueError):
    """A file given to the runtime that it cannot use (the settings, a model, a detector, the
    image list); ``str()`` names the file and what is wrong. ``main`` turns it into exit status 2,
    so a caller importing this module keeps its own process."""


def tflite_interpreter() -> type:
    """LiteRT's ``Interpreter``, or the old ``tflite_runtime``'s on the challenge's phones
    (imported on first use: the project imports this file for its image reader alone)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    return Interpreter


class TFLiteNet:
    """A ``.tflite`` file behind a float interface: quantised inputs/outputs are (de)quantised
    with the file's own scale and zero point. Inputs and outputs keep the file's order."""

    def __init__(self, path: str | Path, num_threads: int = 2):
        self.path = Path(path)
        if not self.path.is_file():
            raise BadInput(f"{self.path}: model file not found")
        try:
            self.interpreter = tflite_interpreter()(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise BadInput(f"{self.path}: not a TFLite model ({error})") from None
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.inputs[0]["shape"])

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Run once on float arrays of the input shapes; float32 outputs."""
        for detail, array in zip(self.inputs, arrays, strict=True):
            scale, zero_point = detail["quantization"]
            if detail["dtype"] != np.float32 and scale:
                info = np.iinfo(detail["dtype"])
                array = np.clip(np.round(array / scale + zero_point), info.min, info.max)
            self.interpreter.set_tensor(detail["index"], np.ascontiguousarray(array, dtype=detail["dtype"]))
        self.interpreter.invoke()
        results = []
        for detail in self.outputs:
            value = self.interpreter.get_tensor(detail["index"])
            scale, zero_point = detail["quantization"]
            if value.dtype != np.float32 and scale:
                value = (value.astype(np.float32) - zero_point) * scale
            results.append(value.astype(np.float32))
        return results


# ---------------------------------------------------------------- face detection (BlazeFace)


@dataclass(frozen=True)
class BlazeFaceSpec:
    """Anchor layout of a BlazeFace file: input side, one stride per anchor layer, anchors per
    cell of each layer, and the score threshold MediaPipe uses with it."""

    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]
    min_score: float


BLAZEFACE_SPECS = {
    128: BlazeFaceSpec(128, (8, 16, 16, 16), (2, 2, 2, 2), 0.5),  # short range: 896 anchors
    192: BlazeFaceSpec(192, (4,), (1,), 0.6),  # full range: 2304 anchors
}


def blazeface_anchors(spec: BlazeFaceSpec) -> np.ndarray:
    """(A, 2) anchor centres in [0, 1] (fixed-size SSD anchors, cell centres), layers of equal
    stride sharing their cells as in MediaPipe's SsdAnchorsCalculator."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        repeats = 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:
            repeats += spec.anchors_per_cell[layer]
            layer += 1
        cells = int(np.ceil(spec.input_size / stride))
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, repeats, axis=0))
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression: each kept detection is the score-weighted
    mean of those whose boxes overlap its box by more than ``iou_threshold``. (K, C) detections
    (the box first, then any points: :data:`DETECTION_COLUMNS`), (K,) scores."""
    order = np.argsort(-scores)
    kept_boxes, kept_scores = [], []
    remaining = order
    while len(remaining):
        best = boxes[remaining[0]]
        overlap = box_iou(best[None], boxes[remaining])[0]
        group = remaining[overlap > iou_threshold]
        weights = scores[group]
        kept_boxes.append((boxes[group] * weights[:, None]).sum(0) / weights.sum())
        kept_scores.append(scores[remaining[0]])
        remaining = remaining[overlap <= iou_threshold]
    return np.array(kept_boxes, dtype=np.float64).reshape(-1, boxes.shape[1]), np.array(kept_scores, dtype=np.float64)


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(P, Q) intersection over union of (P, 4) and (Q, 4) ``x0, y0, x1, y1`` boxes (or
    detections: their first four columns)."""
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:4], second[None, :, 2:4])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    first_area, second_area = (np.prod(b[:, 2:4] - b[:, :2], axis=-1) for b in (first, second))
    return intersection / (first_area[:, None] + second_area[None, :] - intersection + 1e-12)


class BlazeFaceDetector:
    """Faces of an RGB image with a BlazeFace ``.tflite`` file (MediaPipe's short- or full-range
    model). The image is letterboxed to the model's square input; boxes come back in image pixels.
    No anchor at ``min_score`` or above: no face (a face-free image gets an empty file)."""

    def __init__(self, path: str | Path, min_score: float | None = None, iou_threshold: float = 0.3, num_threads: int = 2):
        self.net = TFLiteNet(path, num_threads)
        size = self.net.input_shape[1]
        if size not in BLAZEFACE_SPECS:
            raise BadInput(f"{path}: not a BlazeFace detector (input side {size}, known: {sorted(BLAZEFACE_SPECS)})")
        self.spec = BLAZEFACE_SPECS[size]
        self.anchors = blazeface_anchors(self.spec)
        self.min_score = self.spec.min_score if min_score is None else min_score
        self.iou_threshold = iou_threshold

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB -> (F, 8) detections (box and eyes, :data:`DETECTION_COLUMNS`) in
        pixels and (F,) scores."""
        return weighted_nms(*self.anchor_boxes(image), self.iou_threshold)

    def anchor_boxes(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every anchor's detection (K, 8) (box and eyes, :data:`DETECTION_COLUMNS`) in image
        pixels and score (K,) at ``min_score`` or above, before the non-maximum suppression that
        makes them faces."""
        size = self.spec.input_size
        side = max(image.shape[:2])
        zoom = size / side
        # Letterbox: the image, scaled to fit, centred in a square; pixel centres map exactly.
        pad = (np.array([side - image.shape[1], side - image.shape[0]]) / 2.0) * zoom
        matrix = np.array([[zoom, 0, pad[0] + 0.5 * zoom - 0.5], [0, zoom, pad[1] + 0.5 * zoom - 0.5]])
        square = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
        regressors, logits = sorted(self.net(square[None].astype(np.float32) / 127.5 - 1.0), key=lambda a: -a.shape[-1])
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0, :, 0].astype(np.float64), -100, 100)))
        keep = scores >= self.min_score
        raw, anchors = regressors[0, keep, :DETECTION_COLUMNS] / size, self.anchors[keep]
        centre, extent = anchors + raw[:, :2], raw[:, 2:4]
        eyes = raw[:, EYES] + np.tile(anchors, 2)  # keypoints are offsets from the anchor
        detections = np.concatenate([centre - extent / 2, centre + extent / 2, eyes], axis=1).astype(np.float64)
        # [0, 1] of the square -> square edge coordinates -> image pixel coordinates.
        return (detections * size - np.tile(pad, DETECTION_COLUMNS // 2)) / zoom - 0.5, scores[keep]


TILE_OVERLAP = 0.2  # neighbouring tiles overlap by this share of the image's longer side
TILE_FACE_SHARE = 0.5  # a tile keeps faces up to this share of its side: larger ones the whole image shows


def tile_grid(width: int, height: int, tiles: int) -> tuple[int, list[tuple[int, int]]]:
    """Side and top-left corners of a ``tiles`` x ``tiles`` grid of square tiles over a
    ``width`` x ``height`` image: side ``ceil((1 + TILE_OVERLAP) * longer side / tiles)``,
    corners spread evenly from the image's top-left to its bottom-right (a tile never starts
    outside the image; along a side shorter than the tile, one tile covers it)."""
    longer = max(width, height)
    side = math.ceil((1 + TILE_OVERLAP) * longer / tiles)
    starts = [sorted({round(v) for v in np.linspace(0, max(extent - side, 0), tiles)}) for extent in (width, height)]
    return side, [(x, y) for y in starts[1] for x in starts[0]]


Detections = tuple[np.ndarray, np.ndarray]  # (K, 8) detections (DETECTION_COLUMNS) in pixels, (K,) scores


NO_BOX_MAP = (0.0, 0.0, 1.0)


def map_boxes(boxes: np.ndarray, box_map: tuple[float, float, float]) -> np.ndarray:
    """(K, C) detections whose boxes (the first four columns) are moved by ``box_map = (dx, dy,
    scale)``: the centre by ``(dx, dy)`` box sides (the longer side), width and height times
    ``scale``; the points after the box stay where they are."""
    dx, dy, scale = box_map
    centre, extent = (boxes[:, :2] + boxes[:, 2:4]) / 2, boxes[:, 2:4] - boxes[:, :2]
    centre = centre + np.array([dx, dy]) * extent.max(axis=1, keepdims=True)
    return np.concatenate([centre - extent * scale / 2, centre + extent * scale / 2, boxes[:, 4:]], axis=1)


def cut_by_tile_edge(boxes: np.ndarray, x: int, y: int, side: int, width: int, height: int) -> np.ndarray:
    """(K,) whether each (K, 4) box, in the pixels of the tile at ``(x, y)``, reaches one of the
    tile's edges inside the image (within 1 % of the side): a face the edge may cut, which a
    neighbouring tile or the whole image sees entire."""
    margin = 0.01 * side
    inner = np.array([x > 0, y > 0, x + side < width, y + side < height])
    reaches = np.stack([boxes[:, 0] < margin, boxes[:, 1] < margin, boxes[:, 2] > side - 1 - margin, boxes[:, 3] > side - 1 - margin], axis=1)
    return (reaches & inner).any(axis=1)


class FaceDetector:
    """The package's face detector, built from MediaPipe's BlazeFace models:

    - the full-range model on the whole image and, with ``tiles`` > 1, on each tile of a
      ``tiles`` x ``tiles`` grid (:func:`tile_grid`), keeping from a tile only faces up to
      :data:`TILE_FACE_SHARE` of its side: a small face of a crowd, seen at ``tiles`` times the
      resolution (a larger face, or part of one cut by the tile's edge, is the whole image's);
      their anchors merged into faces by MediaPipe's weighted NMS;
    - with ``close_up``, the short-range model on the whole image (a face filling the frame,
      which the full-range model can miss): its boxes, mapped by ``close_up_box`` onto the
      full-range model's convention (:func:`map_boxes`, fitted by
      :func:`lib.inference.calibrate.fit_close_up_box`: the box the full-range model would have
      drawn), are added where no full-range face lies, so one crop rule serves every face.

    Both models share ``min_score``. :meth:`anchor_sets` and :meth:`merge` split the work so a
    threshold sweep runs the models once (:mod:`lib.submission.detection_threshold`)."""

    def __init__(
        self, full_range: BlazeFaceDetector, tiles: int = 1, close_up: BlazeFaceDetector | None = None, close_up_box: tuple[float, float, float] = NO_BOX_MAP
    ):
        if tiles < 1:
            raise ValueError(f"tiles must be >= 1, not {tiles}")
        self.full_range, self.tiles, self.close_up, self.close_up_box = full_range, tiles, close_up, close_up_box

    @property
    def model_runs(self) -> int:
        """BlazeFace runs per image: the cost of this layout."""
        return 1 + (self.tiles**2 if self.tiles > 1 else 0) + (self.close_up is not None)

    def anchor_sets(self, image: np.ndarray) -> tuple[Detections, Detections]:
        """The full-range anchors (whole image and tiles) and the close-up model's (empty
        without it), at the models' ``min_score`` or above, before any suppression."""
        found = [self.full_range.anchor_boxes(image)]
        if self.tiles > 1:
            side, corners = tile_grid(image.shape[1], image.shape[0], self.tiles)
            for x, y in corners:
                boxes, scores = self.full_range.anchor_boxes(np.ascontiguousarray(image[y : y + side, x : x + side]))
                keep = (np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) <= TILE_FACE_SHARE * side) & ~cut_by_tile_edge(
                    boxes, x, y, side, image.shape[1], image.shape[0]
                )
                found.append((boxes[keep] + np.tile(np.array([x, y], dtype=np.float64), DETECTION_COLUMNS // 2), scores[keep]))
        full = (np.concatenate([b for b, _ in found]), np.concatenate([s for _, s in found]))
        if self.close_up is None:
            return full, (np.zeros((0, DETECTION_COLUMNS)), np.zeros(0))
        boxes, scores = self.close_up.anchor_boxes(image)
        return full, (map_boxes(boxes, self.close_up_box), scores)

    def merge(self, anchor_sets: tuple[Detections, Detections], min_score: float) -> Detections:
        """Faces from :meth:`anchor_sets` at ``min_score``: the full-range anchors suppressed
        into faces, then each close-up face that overlaps none of them (IoU at most the NMS
        threshold)."""
        iou = self.full_range.iou_threshold
        (full_boxes, full_scores), (close_boxes, close_scores) = anchor_sets
        keep = full_scores >= min_score
        boxes, scores = weighted_nms(full_boxes[keep], full_scores[keep], iou)
        keep = close_scores >= min_score
        for box, score in zip(*weighted_nms(close_boxes[keep], close_scores[keep], iou), strict=True):
            if not len(boxes) or box_iou(box[None], boxes).max() <= iou:
                boxes, scores = np.vstack([boxes, box[None]]), np.append(scores, score)
        return boxes, scores

    def __call__(self, image: np.ndarray) -> Detections:
        """(H, W, 3) uint8 RGB -> (F, 8) detections (box and eyes, :data:`DETECTION_COLUMNS`) in
        pixels and (F,) scores."""
        return self.merge(self.anchor_sets(image), self.full_range.min_score)


def build_detector(
    full_range: str | Path,
    close_up: str | Path | None,
    min_score: float | None = None,
    tiles: int = 1,
    use_close_up: bool = False,
    num_threads: int = 2,
    close_up_box: tuple[float, float, float] = NO_BOX_MAP,
) -> FaceDetector:
    """A :class:`FaceDetector` from the two BlazeFace files (the short-range ``close_up`` file is
    read only with ``use_close_up``); ``min_score`` None: each model's MediaPipe threshold."""
    if use_close_up and not (close_up and Path(close_up).is_file()):
        raise BadInput(f"{close_up}: the close-up (short-range) detector is asked for and its file is missing")
    second = BlazeFaceDetector(close_up, min_score, num_threads=num_threads) if use_close_up else None
    return FaceDetector(BlazeFaceDetector(full_range, min_score, num_threads=num_threads), tiles, second, close_up_box)


# ---------------------------------------------------------------- landmarks


def crop_matrix(centre: np.ndarray, scale: float, size: int, rotation: float = 0.0, flip: bool = False) -> np.ndarray:
    """(2, 3) affine from image pixels to a ``size`` x ``size`` crop: the square of side
    ``CROP_UNIT * scale`` around ``centre``, rotated by ``rotation`` degrees (counter-clockwise in
    the image), fills the crop with the centre on ``(size - 1) / 2``; ``flip`` mirrors the crop
    horizontally. The one crop rule of the kit (training, calibration, prediction)."""
    zoom = size / (CROP_UNIT * scale)
    angle = np.deg2rad(rotation)
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    linear = np.array([[cos, sin], [-sin, cos]])
    if flip:
        linear = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ linear
    middle = (size - 1) / 2.0
    return np.column_stack([linear, middle - linear @ np.asarray(centre, dtype=np.float64)])


class LandmarkCalibration:
    """Detector box -> landmark crop: the centre moves by ``offset`` box sides and the crop side
    is ``side_factor`` box sides (fitted on training faces, see ``lib.inference.calibrate``)."""

    def __init__(self, offset=(0.0, 0.0), side_factor: float = 1.4):
        self.offset = np.asarray(offset, dtype=np.float64)
        self.side_factor = float(side_factor)

    def crop(self, box: np.ndarray) -> tuple[np.ndarray, float]:
        """Centre (2,) and scale (side / 200 px) of the landmark crop for a (4,) box (or a
        detection: its first four values)."""
        side = max(box[2] - box[0], box[3] - box[1])
        centre = (box[:2] + box[2:4]) / 2.0 + self.offset * side
        return centre, side * self.side_factor / CROP_UNIT


def landmark_crop(points: np.ndarray, rotation: float = 0.0, side_factor: float = LANDMARK_BOX_FACTOR) -> tuple[np.ndarray, float]:
    """Centre (2,) and scale of the training crop around (N, 2) landmarks: the middle of their
    box, ``side_factor`` times its longer side, the box taken along the axes of a crop rotated
    by ``rotation`` degrees (:func:`crop_matrix`)."""
    angle = np.deg2rad(rotation)
    axes = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])  # image -> crop directions
    along = points @ axes.T
    low, high = along.min(axis=0), along.max(axis=0)
    return (low + high) / 2.0 @ axes, float(np.max(high - low)) * side_factor / CROP_UNIT


def eye_line_roll(points: np.ndarray, level_eyes: tuple[Sequence[int], Sequence[int]]) -> float:
    """Degrees by which (N, 2) landmarks' eye line turns from horizontal: the direction from the
    centroid of ``level_eyes[0]`` (the eye on the image's left) to that of ``level_eyes[1]``, as
    :func:`crop_matrix`'s ``rotation`` that levels it."""
    step = points[list(level_eyes[1])].mean(axis=0) - points[list(level_eyes[0])].mean(axis=0)
    return float(np.degrees(np.arctan2(step[1], step[0])))


def detection_roll(detection: np.ndarray) -> float:
    """Degrees by which a (8,) detection's eye line (its right eye to its left,
    :data:`DETECTION_COLUMNS`) turns from horizontal: the :func:`crop_matrix` ``rotation`` that
    levels the eyes the detector found."""
    return eye_line_roll(detection[EYES].reshape(2, 2), ((0,), (1,)))


def heatmap_confidence(heatmaps: np.ndarray) -> float:
    """Mean over landmarks of each (N, G, G) fused map's peak: near the training targets' unit
    peak when the face fills the crop as in training, low when the crop holds no face or the
    model is unsure where the points are."""
    return float(np.asarray(heatmaps, dtype=np.float64).reshape(len(heatmaps), -1).max(axis=1).mean())


def face_prediction(model, image: np.ndarray, centre: np.ndarray, scale: float, rotation: float, flip: bool) -> tuple[np.ndarray, float]:
    """(N, 2) landmarks in image pixels and their :func:`heatmap_confidence` for the crop at
    ``centre``/``scale``/``rotation`` of an RGB image, by ``model.face_outputs`` (a
    :class:`LandmarkModel` or the project's PyTorch one); with ``flip`` the mean of the crop's and
    its mirror's landmarks and confidences."""
    outputs = [model.face_outputs(image, centre, scale, mirrored, rotation) for mirrored in ((False, True) if flip else (False,))]
    return np.mean([points for points, _ in outputs], axis=0), float(np.mean([heatmap_confidence(maps) for _, maps in outputs]))


def landmark_outputs(net: TFLiteNet) -> int:
    """The number of landmarks N of a landmark ``.tflite`` file (``lib.export``'s graph: one
    (1, S, S, 3) input, S a multiple of :data:`HEATMAP_STRIDE`; outputs (1, N, 2) and (1, N, S/4,
    S/4)); :class:`BadInput` naming the file and its shapes for any other model (a detector given
    as the landmark model, say)."""
    inputs = [tuple(int(v) for v in detail["shape"]) for detail in net.inputs]
    outputs = [tuple(int(v) for v in detail["shape"]) for detail in net.outputs]
    size = inputs[0][1] if len(inputs) == 1 and len(inputs[0]) == 4 else 0
    points = [shape[1] for shape in outputs if len(shape) == 3 and shape[0] == 1 and shape[2] == 2]
    grid = size // HEATMAP_STRIDE
    maps = [shape for shape in outputs if len(shape) == 4]
    if not (size and inputs[0] == (1, size, size, 3) and size % HEATMAP_STRIDE == 0 and len(points) == 1 and maps == [(1, points[0], grid, grid)]):
        raise BadInput(f"{net.path}: not a landmark model (inputs {inputs}, outputs {outputs}; expected (1, S, S, 3) in, (1, N, 2) and (1, N, S/4, S/4) out)")
    return points[0]


class LandmarkModel:
    """A landmark ``.tflite`` file (``lib.export``'s graph): an RGB crop in, N landmarks out.

    ``flip_permutation`` ((N,) ints, the scheme's): also run the mirrored crop and average
    (landmark k of the mirrored crop is landmark ``flip_permutation[k]`` of the face).
    """

    def __init__(self, path: str | Path, num_threads: int = 2, flip_permutation: np.ndarray | None = None):
        self.net = TFLiteNet(path, num_threads)
        self.input_size = self.net.input_shape[1]
        self.num_points = landmark_outputs(self.net)
        self.flip_permutation = flip_permutation

    def crop_outputs(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(S, S, 3) uint8 RGB crop -> (N, 2) landmarks in crop pixels and the (N, S/4, S/4)
        fused heatmaps they were decoded from."""
        outputs = self.net(crop[None].astype(np.float32))
        landmarks = next(o for o in outputs if o.ndim == 3)[0].astype(np.float64)
        heatmaps = next(o for o in outputs if o.ndim == 4)[0]
        grid = self.input_size // HEATMAP_STRIDE
        cells = ((landmarks + 1.0) * grid - 1.0) / 2.0  # [-1, 1] -> grid cells
        return (cells + 0.5) * (self.input_size / grid) - 0.5, heatmaps  # grid cells -> crop pixels

    def face_outputs(self, image: np.ndarray, centre: np.ndarray, scale: float, flip: bool = False, rotation: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) landmarks in image pixels for the crop at ``centre``/``scale``/``rotation``
        (degrees, :func:`crop_matrix`) of an RGB image (``flip``: of the mirrored crop, landmark
        k being the face's ``flip_permutation[k]``), and the crop's (N, S/4, S/4) fused heatmaps."""
        matrix = crop_matrix(centre, scale, self.input_size, rotation, flip)
        crop = cv2.warpAffine(image, matrix, (self.input_size, self.input_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
        landmarks, heatmaps = self.crop_outputs(crop)
        points = landmarks @ inverse[:, :2].T + inverse[:, 2]
        return (points[self.flip_permutation] if flip else points), heatmaps

    def face_landmarks(self, image: np.ndarray, centre: np.ndarray, scale: float, rotation: float = 0.0) -> tuple[np.ndarray, float]:
        """(N, 2) landmarks in image pixels for the crop at ``centre``/``scale``/``rotation`` of
        an RGB image, and their confidence (:func:`face_prediction`, the flip when set)."""
        return face_prediction(self, image, centre, scale, rotation, self.flip_permutation is not None)


def face_centre_x(faces: np.ndarray) -> np.ndarray:
    """(F,) x of each (F, N, 2) face's centre: the middle of its landmarks' x extent."""
    return (faces[..., 0].min(axis=-1) + faces[..., 0].max(axis=-1)) / 2.0


def right_to_left(faces: np.ndarray) -> np.ndarray:
    """Indices that order (F, N, 2) faces right to left by :func:`face_centre_x`, stable for ties."""
    return np.argsort(-face_centre_x(faces), kind="stable")


def pts_block(face: np.ndarray, decimals: int | None = DECIMALS) -> str:
    """One ``.pts`` block for (N, 2) 0-based pixel coordinates, written 1-based (``PTS_ORIGIN``)
    with ``decimals`` decimals (None: the shortest text that reads back as the same float64).
    The one ``.pts`` writer of the kit: submissions, the package and the project's labels."""
    number = (lambda v: repr(float(v))) if decimals is None else (lambda v: f"{v:.{decimals}f}")
    body = "\n".join(f"{number(x + PTS_ORIGIN)} {number(y + PTS_ORIGIN)}" for x, y in face)
    return f"version: 1\nn_points: {len(face)}\n{{\n{body}\n}}\n"


def pts_text(faces: np.ndarray, decimals: int | None = DECIMALS) -> str:
    """The submission text of one image: a ``.pts`` block per (F, N, 2) face, in the order given."""
    return "".join(pts_block(face, decimals) for face in faces)


class _Invalid(Exception):
    """A settings value outside its rule (:data:`SETTINGS_RULES`)."""


def _number(value, low: float = -math.inf, high: float = math.inf, above_low: bool = False) -> float:
    """``value`` as a float when it is a finite JSON number (not a boolean) in its range."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
        raise _Invalid
    if not ((low < value) if above_low else (low <= value)) or value > high:
        raise _Invalid
    return float(value)


def _integer(value, low: int) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
        raise _Invalid
    return value


def _numbers(value, count: int, positive_last: bool = False) -> tuple[float, ...]:
    if not (isinstance(value, list) and len(value) == count):
        raise _Invalid
    return (*[_number(v) for v in value[:-1]], _number(value[-1], 0.0, above_low=True) if positive_last else _number(value[-1]))


def _boolean(value) -> bool:
    if not isinstance(value, bool):
        raise _Invalid
    return value


def _permutation(value) -> tuple[int, ...] | None:
    """Null, or a horizontal flip's landmark permutation: each index once, its own inverse."""
    if value is None:
        return None
    if not (isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise _Invalid
    if sorted(value) != list(range(len(value))) or any(value[v] != k for k, v in enumerate(value)):
        raise _Invalid
    return tuple(value)


def _eye_groups(value) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Null, or two non-empty lists of landmark indices (the eyes a refinement crop levels)."""
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(group, list) and group for group in value)):
        raise _Invalid
    return tuple(_integer(k, 0) for k in value[0]), tuple(_integer(k, 0) for k in value[1])


SETTINGS_RULES = {  # PackageSettings field -> (parse and check, raising _Invalid; what it must be)
    "offset": (lambda v: _numbers(v, 2), "2 finite numbers"),
    "side_factor": (lambda v: _number(v, 0.0, above_low=True), "a number > 0"),
    "min_score": (lambda v: _number(v, 0.0, 1.0), "a number in [0, 1]"),
    "max_faces": (lambda v: _integer(v, 1), "an integer >= 1"),
    "flip_permutation": (_permutation, "null or a permutation of the landmarks that is its own inverse"),
    "detector_tiles": (lambda v: _integer(v, 1), "an integer >= 1"),
    "close_up_detector": (_boolean, "true or false"),
    "close_up_box": (lambda v: _numbers(v, 3, positive_last=True), "3 finite numbers, the last > 0"),
    "refine_passes": (lambda v: _integer(v, 0), "an integer >= 0"),
    "level_eyes": (_eye_groups, "null or 2 non-empty lists of landmark indices"),
    "detector_roll": (_boolean, "true or false"),
    "refine_beyond": (lambda v: None if v is None else _number(v, 0.0), "null or a number >= 0"),
}


@dataclass(frozen=True)
class PackageSettings:
    """What a submission was made with, so the package predicts the same files: the crop rule
    (``offset`` in box sides, ``side_factor``), the detector's ``min_score``, ``max_faces`` kept
    per image (the likeliest), ``flip_permutation`` (the scheme's, when the flip test-time
    augmentation is on; None otherwise), the detector's layout (:class:`FaceDetector`:
    ``detector_tiles``, ``close_up_detector``, ``close_up_box``; files without them mean the
    full-range model on the whole image) and the crops (:class:`Pipeline`: ``refine_passes``,
    ``level_eyes``, ``detector_roll``, ``refine_beyond``; files without them: none, no turn,
    every face refined). Stored as JSON; floats round-trip exactly."""

    offset: tuple[float, float]
    side_factor: float
    min_score: float
    max_faces: int = MAX_FACES
    flip_permutation: tuple[int, ...] | None = None
    detector_tiles: int = 1
    close_up_detector: bool = False
    close_up_box: tuple[float, float, float] = NO_BOX_MAP
    refine_passes: int = 0
    level_eyes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    detector_roll: bool = False
    refine_beyond: float | None = None

    @classmethod
    def unmeasured(cls) -> PackageSettings:
        """The settings of a model no submission measured anything for: the landmark box as
        the crop, :data:`MIN_SCORE`, the full-range detector on the whole image, no flip, no
        refinement."""
        return cls((0.0, 0.0), LANDMARK_BOX_FACTOR, MIN_SCORE)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> PackageSettings:
        """Parse and check a settings file: every field of its JSON type and in its range
        (:data:`SETTINGS_RULES`), no unknown field; a field an older file lacks takes its
        default. :class:`BadInput` names the file and the field."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise BadInput(f"{path}: not a readable settings file ({type(error).__name__}: {error})") from None
        if not isinstance(raw, dict):
            raise BadInput(f"{path}: not a settings file (a JSON object of fields)")
        known = {field.name: field for field in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise BadInput(f"{path}: unknown settings {unknown}; known: {sorted(known)}")
        values = {}
        for name, field in known.items():
            if name not in raw:
                if field.default is MISSING:
                    raise BadInput(f"{path}: the setting {name!r} is missing")
                continue
            check, rule = SETTINGS_RULES[name]
            try:
                values[name] = check(raw[name])
            except _Invalid:
                raise BadInput(f"{path}: {name} must be {rule}, not {json.dumps(raw[name])[:80]}") from None
        return cls(**values)

    @property
    def calibration(self) -> LandmarkCalibration:
        return LandmarkCalibration(self.offset, self.side_factor)


def face_rows(boxes: np.ndarray) -> np.ndarray:
    """(F, C) float64 rows of detections (C = :data:`DETECTION_COLUMNS`) or boxes (C = 4), from
    an (F, C) array or nested sequence (kept as it is, also when F is 0), or one (C,) row; an
    empty sequence: (0, 4)."""
    rows = np.asarray(boxes, dtype=np.float64)
    if rows.ndim == 2:
        return rows
    return rows.reshape(1, -1) if rows.size else np.zeros((0, 4))


def crop_change(last: tuple[np.ndarray, float], new: tuple[np.ndarray, float], rotation: float = 0.0) -> tuple[np.ndarray, float]:
    """How the crop ``new`` (centre (2,), scale) differs from the crop ``last``: the (2,) shift
    of its centre along the axes of a crop turned by ``rotation`` degrees (:func:`crop_matrix`),
    in sides of the last crop, and its zoom (its side over the last one's)."""
    angle = np.deg2rad(rotation)
    axes = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])  # image -> crop directions
    shift = axes @ (np.asarray(new[0], dtype=np.float64) - np.asarray(last[0], dtype=np.float64)) / (CROP_UNIT * last[1])
    return shift, new[1] / last[1]


def crop_moved_too_far(last: tuple[np.ndarray, float], new: tuple[np.ndarray, float]) -> bool:
    """Whether the crop ``new`` (centre (2,), scale) strays from the crop ``last`` beyond the
    bounds: its centre more than :data:`MAX_CROP_SHIFT` of the last crop's side away, or its side
    more than :data:`MAX_CROP_ZOOM` times larger or smaller. A refinement pass whose landmarks'
    own crop strays so from the crop it ran on has thrown the face off (the face it found is not
    the one it was shown)."""
    shift, zoom = crop_change(last, new)
    return float(np.linalg.norm(shift)) > MAX_CROP_SHIFT or not 1 / MAX_CROP_ZOOM <= zoom <= MAX_CROP_ZOOM


def crop_stray(last: tuple[np.ndarray, float], new: tuple[np.ndarray, float], rotation: float = 0.0) -> float:
    """How far the crop ``new`` strays from the crop ``last`` (each centre (2,), scale), as one
    number in crop sides: the larger shift of its centre along the axes of the last crop (turned by
    ``rotation`` degrees) and half its side's relative change (training crops vary their side
    twice as much as their centre, :mod:`lib.data.augment`). Where the landmarks predicted from
    ``last`` ask for a crop that strays from it beyond the training crops' jitter, the network was
    shown a face placed as it never saw one."""
    shift, zoom = crop_change(last, new, rotation)
    return max(float(np.abs(shift).max()), abs(zoom - 1.0) / 2.0)


class Pipeline:
    """Detector + calibration + landmark model (a :class:`LandmarkModel` or anything with its
    ``face_landmarks``; any detector returning ``(boxes, scores)``): the kit's one way from an
    image to landmarks, in three calls::

        pipeline = build_pipeline(...)  # or lib.inference.landmarker.load_landmarker(path)
        boxes, scores = pipeline.detect(image)
        faces, confidences = pipeline.landmarks(image, boxes)

    :meth:`detect` keeps the ``max_faces`` likeliest detections. :meth:`landmarks` predicts
    each face from the calibrated crop of its box (turned to level the detector's eyes with
    ``detector_roll``, :func:`detection_roll`), then ``refine_passes`` more times from
    :func:`landmark_crop` of its last landmarks (the crop the model was trained on); with
    ``level_eyes`` (:func:`eye_line_roll`'s two eyes) those crops are turned to level the eyes,
    and the landmarks turned back. With ``refine_beyond`` (crop sides) a face's passes run only
    while the crop its last landmarks ask for strays beyond that from the crop they were predicted
    from (:func:`crop_stray`): a face the first crop placed well costs one network run. A pass is
    undone for a face, and the face's passes end, when its landmarks are not finite, when its crop
    strays beyond the bounds (:func:`crop_moved_too_far`), or when it lowers the face's heatmap
    confidence: a pass can only keep or improve a face, never send it astray. ``crops_tally``
    counts the crops predicted: ``crops_tally[k]`` those of the faces so far up to their ``k``-th
    pass (``crops_tally[0]``: the faces; :meth:`crops_per_face`); assign ``Counter()`` to start
    again. :meth:`follow` predicts a face from its earlier landmarks (a video's next
    frame)."""

    def __init__(
        self,
        model: LandmarkModel,
        detector: FaceDetector,
        calibration: LandmarkCalibration,
        max_faces: int = MAX_FACES,
        refine_passes: int = 0,
        level_eyes: tuple[Sequence[int], Sequence[int]] | None = None,
        detector_roll: bool = False,
        refine_beyond: float | None = None,
    ):
        self.model, self.detector, self.calibration, self.max_faces = model, detector, calibration, max_faces
        self.refine_passes, self.level_eyes, self.detector_roll = refine_passes, level_eyes, detector_roll
        self.refine_beyond = refine_beyond
        self.crops_tally: Counter[int] = Counter()

    @property
    def flip(self) -> bool:
        """Whether each crop's mirror is predicted too and the two averaged."""
        return self.model.flip_permutation is not None

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB image (H, W, 3) uint8 -> the ``max_faces`` likeliest faces' (F, 8) detections
        (box x0, y0, x1, y1 and the eyes, :data:`DETECTION_COLUMNS`, pixels) and (F,) detection
        scores, likeliest first."""
        boxes, scores = self.detector(image)
        likeliest = np.argsort(-np.asarray(scores), kind="stable")[: self.max_faces]
        return face_rows(boxes)[likeliest], np.asarray(scores, dtype=np.float64)[likeliest]

    def landmarks(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB image and (F, 8) detections (or (F, 4) boxes: no eyes, no turn) -> (F, N, 2)
        landmarks in image pixels and their (F,) heatmap confidences, in the order of the boxes,
        after the pipeline's refinement passes."""
        return self.landmarks_per_pass(image, boxes, self.refine_passes)[-1]

    def landmarks_per_pass(self, image: np.ndarray, boxes: np.ndarray, passes: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`landmarks` after 0, 1, ... ``passes`` refinement passes (``passes + 1`` pairs)."""
        per_face = [self.face_passes(image, box, passes) for box in face_rows(boxes)]
        if not per_face:
            return [(np.zeros((0, 0, 2)), np.zeros(0))] * (passes + 1)
        return [(np.array([face[step][0] for face in per_face]), np.array([face[step][1] for face in per_face])) for step in range(passes + 1)]

    def follow(self, image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, float]:
        """(N, 2) landmarks and their confidence for the face whose earlier (N, 2) landmarks
        were ``points`` (the last frame's, or the last pass's): one prediction from the training
        crop around them, eyes levelled when the pipeline levels them."""
        return self.model.face_landmarks(image, *self.training_crop(points))

    def training_crop(self, points: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(centre (2,), scale, rotation in degrees) of :func:`landmark_crop` around (N, 2)
        landmarks, turned to level the eyes when the pipeline levels them."""
        rotation = eye_line_roll(points, self.level_eyes) if self.level_eyes is not None else 0.0
        return (*landmark_crop(points, rotation), rotation)

    def first_crop(self, detection: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(centre (2,), scale, rotation in degrees) of a face's first crop: the calibrated crop of
        the (8,) detection's box, turned to level its eyes with ``detector_roll`` (a (4,) box
        has none: not turned)."""
        rotation = detection_roll(detection) if self.detector_roll and len(detection) == DETECTION_COLUMNS else 0.0
        return (*self.calibration.crop(detection), rotation)

    def face_passes(self, image: np.ndarray, box: np.ndarray, passes: int) -> list[tuple[np.ndarray, float]]:
        """(N, 2) landmarks in image pixels and their confidence for the face of the (8,)
        detection (or (4,) box) after 0, 1, ... ``passes`` refinement passes (``passes + 1``
        pairs; from an undone or unneeded pass on, the last kept pair repeated)."""
        last_centre, last_scale, last_rotation = self.first_crop(box)
        results = [self.model.face_landmarks(image, last_centre, last_scale, last_rotation)]
        crops = 1
        while len(results) <= passes and np.isfinite(results[-1][0]).all():
            points, confidence = results[-1]
            centre, scale, rotation = self.training_crop(points)
            if self.refine_beyond is not None and crop_stray((last_centre, last_scale), (centre, scale), last_rotation) <= self.refine_beyond:
                break
            refined, refined_confidence = self.model.face_landmarks(image, centre, scale, rotation)
            crops += 1
            if not np.isfinite(refined).all() or refined_confidence < confidence or crop_moved_too_far((centre, scale), landmark_crop(refined, rotation)):
                break
            results.append((refined, refined_confidence))
            last_centre, last_scale, last_rotation = centre, scale, rotation
        for step in range(passes + 1):
            self.crops_tally[step] += min(crops, step + 1)
        return results + [results[-1]] * (passes + 1 - len(results))

    def crops_per_face(self, passes: int) -> float:
        """Crops a face of :attr:`crops_tally` was predicted from on average with ``passes``
        passes (each a network run, two with the flip; 0 before any face)."""
        faces = self.crops_tally[0]
        return self.crops_tally[passes] / faces if faces else 0.0

    def predict_passes(
        self, image: np.ndarray, passes: int, detections: tuple[np.ndarray, np.ndarray] | None = None
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """RGB image -> for 0, 1, ... ``passes`` refinement passes, (F, N, 2) faces in pixels,
        their (F,) detection scores and (F,) heatmap confidences, right to left (the detector
        runs once; not at all when ``detections``, :meth:`detect`'s on this image, are given)."""
        boxes, scores = self.detect(image) if detections is None else detections
        results = []
        for faces, confidences in self.landmarks_per_pass(image, boxes, passes):
            order = right_to_left(faces) if len(faces) else np.zeros(0, int)
            results.append((faces[order], scores[order], confidences[order]))
        return results

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB image -> (F, N, 2) faces in pixels, their (F,) detection scores and (F,) heatmap
        confidences, right to left (as the package writes them)."""
        return self.predict_passes(image, self.refine_passes)[-1]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """RGB image -> (F, N, 2) faces right to left."""
        return self.predict(image)[0]

    def variant(
        self, level_eyes: tuple[Sequence[int], Sequence[int]] | None, flip_permutation: Sequence[int] | None, detector_roll: bool | None = None
    ) -> Pipeline:
        """The same detector, calibration and network (shared, not reloaded) with other crops and
        flip: ``level_eyes`` and ``detector_roll`` (None: this pipeline's) as in the constructor,
        ``flip_permutation`` the scheme's to average each crop with its mirror (None: no flip).
        This pipeline is left as it is."""
        model = copy.copy(self.model)
        model.flip_permutation = None if flip_permutation is None else np.asarray(flip_permutation)
        roll = self.detector_roll if detector_roll is None else detector_roll
        return Pipeline(model, self.detector, self.calibration, self.max_faces, self.refine_passes, level_eyes, roll, self.refine_beyond)


class UnreadableImage(ValueError):
    """An image that cannot be decoded; ``str()`` reads ``path: reason``."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


def cut_short(data: np.ndarray) -> bool:
    """Whether encoded JPEG or PNG bytes lack their end marker anywhere (a truncated file, which
    OpenCV would decode with its missing part grey instead of failing). The last kilobyte is
    searched first; a file with data appended after its end marker (phones append videos to
    JPEGs) is not cut short. Other formats: False."""
    head = data[:8].tobytes()
    marker = b"\xff\xd9" if head.startswith(b"\xff\xd8") else b"IEND" if head.startswith(b"\x89PNG") else None
    return marker is not None and marker not in data[-1024:].tobytes() and marker not in data.tobytes()


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, decoded as everywhere in the kit (training, calibration, prediction):
    OpenCV with the EXIF orientation applied, 16-bit samples scaled to 8 bits, grey expanded and
    alpha dropped. :class:`UnreadableImage` names the file if it is missing, truncated or not an
    image."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableImage(path, "image file not found")
    data = np.fromfile(path, dtype=np.uint8)
    if cut_short(data):
        raise UnreadableImage(path, "corrupt or truncated image (no end marker)")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if len(data) else None
    except cv2.error as error:  # e.g. a header claiming more pixels than OpenCV decodes
        raise UnreadableImage(path, f"cannot be decoded ({str(error).strip().splitlines()[-1]})") from None
    if image is None:
        raise UnreadableImage(path, "not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# The package's files: the runtime finds its model, detectors and settings beside itself.
PACKAGE_MODEL = "best.tflite"
PACKAGE_DETECTOR = "face_detector.tflite"
PACKAGE_CLOSE_UP_DETECTOR = "face_detector_close_up.tflite"
PACKAGE_SETTINGS = "settings.json"


def pipeline_with(
    landmarks: LandmarkModel,
    chosen: PackageSettings,
    detector: Path,
    close_up_detector: Path | None = None,
    num_threads: int = 2,
    names: tuple[str | Path, str | Path] = ("settings", "the model"),
) -> Pipeline:
    """The :class:`Pipeline` of a landmark model (a :class:`LandmarkModel` or the project's
    PyTorch one: ``num_points``, a settable ``flip_permutation``) under the settings ``chosen``
    (their flip, crop rule, detector threshold and layout, refinement); :class:`BadInput` names
    the settings and the model (``names``) when the settings do not fit the model's landmarks."""
    named = {"flip_permutation": chosen.flip_permutation or (), "level_eyes": [k for group in chosen.level_eyes or () for k in group]}
    for name, indices in named.items():
        if any(k >= landmarks.num_points for k in indices) or (name == "flip_permutation" and indices and len(indices) != landmarks.num_points):
            raise BadInput(f"{names[0]}: {name} does not fit the {landmarks.num_points} landmarks of {names[1]}")
    landmarks.flip_permutation = None if chosen.flip_permutation is None else np.asarray(chosen.flip_permutation)
    face_detector = build_detector(
        detector, close_up_detector, chosen.min_score, chosen.detector_tiles, chosen.close_up_detector, num_threads, chosen.close_up_box
    )
    return Pipeline(
        landmarks, face_detector, chosen.calibration, chosen.max_faces, chosen.refine_passes, chosen.level_eyes, chosen.detector_roll, chosen.refine_beyond
    )


def build_pipeline(model: Path, detector: Path, settings: Path, num_threads: int = 2, close_up_detector: Path | None = None) -> Pipeline:
    """The package's :class:`Pipeline` from its landmark model, detector files and settings;
    :class:`BadInput` names a file that cannot be used, or settings that do not fit the model."""
    chosen = PackageSettings.read(settings)
    return pipeline_with(LandmarkModel(model, num_threads), chosen, detector, close_up_detector, num_threads, (settings, model))


def package_pipeline(folder: Path, num_threads: int = 2) -> Pipeline:
    """The :class:`Pipeline` of an unpacked package ``folder`` (its files by their package names)."""
    folder = Path(folder)
    return build_pipeline(folder / PACKAGE_MODEL, folder / PACKAGE_DETECTOR, folder / PACKAGE_SETTINGS, num_threads, folder / PACKAGE_CLOSE_UP_DETECTOR)


def read_image_list(path: Path) -> list[str]:
    """The non-blank lines of an image list (UTF-8, a byte-order mark allowed), stripped;
    :class:`BadInput` names the file when it is missing, empty or not UTF-8 text."""
    if not path.is_file():
        raise BadInput(f"{path}: image list not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise BadInput(f"{path}:{line}: the image list is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise BadInput(f"{path}: the image list is empty")
    return lines


def output_names(paths: Sequence[Path]) -> tuple[dict[Path, str], list[str]]:
    """Each image's output file name ``<stem>.txt`` (the organisers' naming), and a problem
    line for each image left out: a path listed again is predicted once; an image whose stem an
    earlier, different image already took (``a/face.png`` and ``b/face.png``, ``face.jpg`` and
    ``face.png``) is left out, named beside the image that keeps the file."""
    names, owners, problems = {}, {}, []
    for path in paths:
        key = path.resolve()
        if key in names:
            continue
        name = f"{path.stem}.txt"
        if name in owners:
            problems.append(f"{path}: not predicted: its output {name} belongs to {owners[name]}, listed earlier (outputs are named by the image's stem)")
            continue
        names[key], owners[name] = name, path
    return names, problems


def write_output(output_dir: Path, name: str, text: str) -> str | None:
    """Write one output file atomically (a short temporary name, then one rename); the problem
    line when it cannot be written (a folder in its place, a name too long), with nothing left
    behind; None when written."""
    target = output_dir / name
    if target.is_dir():
        return f"{target}: not written: a folder of that name is in the way"
    temporary = output_dir / f".run_model-{os.getpid()}.tmp"
    try:
        temporary.write_text(text)
        temporary.replace(target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        return f"{target}: not written ({error.strerror or error})"
    return None


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image_list", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--model", type=Path, default=here / PACKAGE_MODEL)
    parser.add_argument("--detector", type=Path, default=here / PACKAGE_DETECTOR, help="full-range BlazeFace")
    parser.add_argument("--close-up-detector", type=Path, default=here / PACKAGE_CLOSE_UP_DETECTOR, help="short-range BlazeFace (if the settings use it)")
    parser.add_argument(
        "--settings", type=Path, default=here / PACKAGE_SETTINGS, help="the submission's crop rule, detector threshold, face count and flip (JSON)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when an image could not be predicted")
    args = parser.parse_args(argv)
    try:
        pipeline = build_pipeline(args.model, args.detector, args.settings, args.threads, args.close_up_detector)
        lines = read_image_list(args.image_list)
    except BadInput as error:
        print(f"run_model: {error}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for line in lines:
        path, note = resolve_listed(line, args.image_list.parent)
        if note:
            print(f"run_model: {note}", file=sys.stderr)
        paths.append(path)
    names, failures = output_names(paths)
    for problem in failures:
        print(f"run_model: {problem}", file=sys.stderr)
    others = sorted({path.name for path in args.output_dir.glob("*.txt")} - set(names.values()))
    if others:  # never deleted: they are not this run's to delete
        print(
            f"run_model: {args.output_dir} already holds {len(others)} .txt files this list does not write (e.g. {others[0]}); left as they are",
            file=sys.stderr,
        )
    written, unsure = 0, 0
    for path in paths:
        name = names.pop(path.resolve(), None)
        if name is None:  # listed again, or its stem taken
            continue
        faces, confidences, problem = predict_file(pipeline, path)
        unsure += int((confidences < LOW_CONFIDENCE).sum())
        problems = [problem, write_output(args.output_dir, name, pts_text(faces))]
        written += problems[1] is None
        for problem in filter(None, problems):
            failures.append(problem)
            print(f"run_model: {problem}", file=sys.stderr)
    print(
        f"wrote {written} files to {args.output_dir} for {len(lines)} listed images; problems: {len(failures)}; faces of low confidence (< {LOW_CONFIDENCE}): {unsure}",
        file=sys.stderr,
    )
    return 1 if failures and args.strict else 0


def resolve_listed(line: str, list_folder: Path) -> tuple[Path, str | None]:
    """The image a list line names: absolute as given; relative, the working directory's file
    if it exists, else the list folder's. The note says which was taken when both exist and
    differ (None otherwise)."""
    path = Path(line)
    if path.is_absolute():
        return path, None
    here, beside = Path.cwd() / path, list_folder / path
    if not here.is_file():
        return beside, None
    if beside.is_file() and beside.resolve() != here.resolve():
        return here, f"{line}: read {here} (the working directory's), not {beside} (the list folder's)"
    return here, None


def predict_file(pipeline: Pipeline, path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The (F, N, 2) faces to write for one image, their (F,) heatmap confidences, and what went
    wrong (None if nothing): an image that cannot be read gives no face; faces with non-finite
    landmarks are left out. A face of low confidence is still written (the format wants one per
    face found): the caller counts them. The package's ``main`` and the project's submission
    writer both predict through this."""
    try:
        image = read_rgb(path)
        faces, _, confidences = pipeline.predict(image)
    except UnreadableImage as error:  # it names the file
        return np.zeros((0, 0, 2)), np.zeros(0), str(error)
    except Exception as error:  # one image's failure never stops the batch: named, counted, an empty file
        return np.zeros((0, 0, 2)), np.zeros(0), f"{path}: prediction failed ({type(error).__name__}: {error})"
    finite = np.isfinite(faces).all(axis=(1, 2))
    if finite.all():
        return faces, confidences, None
    return faces[finite], confidences[finite], f"{path}: {int((~finite).sum())} of {len(faces)} faces had non-finite landmarks and were left out"


if __name__ == "__main__":
    sys.exit(main())
