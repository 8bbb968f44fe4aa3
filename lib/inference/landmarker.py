"""The kit's way in for inference, three calls (the notebooks, the video tracker and the
real-face report come through here)::

    from lib.inference.landmarker import load_landmarker

    landmarker = load_landmarker("submissions/<run>/final_package.zip")  # 1. load
    boxes, scores = landmarker.detect(image)                            # 2. detect faces
    faces, confidences = landmarker.landmarks(image, boxes)             # 3. landmarks

``image`` is RGB (H, W, 3) uint8 (:func:`lib.formats.images.load_image` reads a file so);
``boxes`` (F, 8) are detections (the box x0, y0, x1, y1, then the eyes the detector found, x, y
of the face's right then its left eye; pixels) and ``scores`` (F,) the detector's, likeliest first;
``faces`` (F, N, 2) are 0-based image pixels in the boxes' order and ``confidences`` (F,) each
face's heatmap confidence (near 1 for a face as the model saw them in training; low when it is
unsure). ``landmarker.follow(image, points)`` predicts a face again from its earlier landmarks
(a video's next frame). The landmarker is the final package's own
:class:`~lib.deploy.run_model.Pipeline`, so it gives what ``run_model.py`` writes.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
import zipfile
from pathlib import Path

from lib.deploy.detector_files import CLOSE_UP_DETECTOR, DEFAULT_DETECTOR
from lib.deploy.run_model import BadInput, LandmarkModel, PackageSettings, Pipeline, package_pipeline, pipeline_with
from lib.inference.torch_model import TorchLandmarkModel
from lib.models.checkpoint import load_model
from lib.paths import resolve
from lib.schemes import load_scheme


def landmark_model(path: str | Path, flip: bool = False, threads: int = 2, scheme: str = "ivslab51") -> LandmarkModel | TorchLandmarkModel:
    """A landmark ``.tflite`` file or a PyTorch checkpoint (``.pt``) behind the runtime's
    landmark interface, with the flip test-time augmentation if ``flip`` (``scheme``: the
    ``.tflite`` file's landmark scheme, for the flip's permutation)."""
    path = resolve(path)
    if path.suffix == ".tflite":
        return LandmarkModel(path, threads, load_scheme(scheme).flip_permutation if flip else None)
    return TorchLandmarkModel(load_model(path), flip)


def load_landmarker(
    source: str | Path,
    settings: str | Path | None = None,
    detector: str | Path = DEFAULT_DETECTOR,
    close_up_detector: str | Path = CLOSE_UP_DETECTOR,
    threads: int = 2,
) -> Pipeline:
    """A landmarker from ``source``: a ``final_package.zip`` or an unpacked package folder (its
    own model, detectors and settings), or a landmark ``.tflite`` file or ``.pt`` checkpoint with
    ``settings`` (a package's ``settings.json``: crop rule, detector threshold and layout, flip,
    refinement; without it :meth:`~lib.deploy.run_model.PackageSettings.unmeasured`) and the
    detector files. :class:`~lib.deploy.run_model.BadInput` names a file that cannot be used."""
    source = resolve(source)
    if source.suffix == ".zip":
        return _unpacked_package(source, threads)
    if source.is_dir():
        return package_pipeline(source, threads)
    if source.suffix not in (".tflite", ".pt") or not source.is_file():
        raise BadInput(f"{source}: not a package (.zip or folder), a landmark .tflite file or a .pt checkpoint")
    chosen = PackageSettings.read(resolve(settings)) if settings else PackageSettings.unmeasured()
    model = landmark_model(source, threads=threads)
    return pipeline_with(model, chosen, resolve(detector), resolve(close_up_detector), threads, (settings or "the default settings", source))


def _unpacked_package(zip_path: Path, threads: int) -> Pipeline:
    """The package in ``zip_path`` unpacked into a folder of its own, removed with the landmarker."""
    if not zip_path.is_file():
        raise BadInput(f"{zip_path}: package not found")
    folder = Path(tempfile.mkdtemp(prefix="landmarker-"))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(folder)
        landmarker = package_pipeline(folder, threads)
    except (zipfile.BadZipFile, BadInput) as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise BadInput(f"{zip_path}: not a usable package ({error})") from None
    weakref.finalize(landmarker, shutil.rmtree, folder, True)
    return landmarker
