"""Write a synthetic dataset in the PAIR layout.

    <out>/ivslab_facial_train/<subset>/images/<stem>.jpg   one face per image
    <out>/ivslab_facial_train/<subset>/labels/<stem>.pts   51 points, 1-based .pts convention
    <out>/ivslab_facial_train/conditions.csv               per-face conditions and WFLW-style flags
    <out>/ivslab_facial_test/image_XXXX.png                1-3 faces per image, then face-free
                                                           images, then close-ups (one face filling
                                                           a 1024 x 1024 frame), as in PAIR's final round
    <out>/ivslab_facial_test_gt/image_XXXX.txt             ground truth in the submission format
                                                           (empty for a face-free image)
    <out>/ivslab_facial_test_gt/conditions.csv
    <out>/ivslab_facial_detector/images/image_XXXX.png     the detector's calibration set, disjoint
    <out>/ivslab_facial_detector/gt/image_XXXX.txt         from the test: scenes like the test's,
                                                           then face-free images (empty files), then
                                                           close-ups; the detector's layout and
                                                           threshold are chosen on it
    <out>/manifest.json                                    written last: the dataset is complete

Every image is rendered from its own seed (``seed``, split, index), so the output is the same
whatever the number of workers. The dataset is built in ``<out>.partial`` and renamed into
place at the end: an interrupted run leaves no half dataset behind, and the next run starts over.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from lib.data.synthetic import levers as lever
from lib.data.synthetic.render import degrade, draw_occluder, jpeg_roundtrip, render_background, render_face
from lib.data.synthetic.sampling import sample_degradation, sample_face, sample_light, sample_occluder, wflw_flags
from lib.formats.pair import PairTree
from lib.formats.pts import write_pts
from lib.formats.table import points_box
from lib.io import atomic_save_csv, atomic_write_bytes, atomic_write_text
from lib.progress import track
from lib.schemes import load_scheme

GENERATOR_VERSION = 7
SUBSETS = {"300W": (0.20, 1.0), "afw": (0.10, 1.2), "helen": (0.35, 0.7), "ibug": (0.05, 1.6), "IFPW": (0.30, 0.9)}
TEST_SIZES = ((640, 480), (800, 600), (512, 512), (480, 640))
CLOSEUP_SIZE = 1024
SPLIT_IDS = {"train": 0, "test": 1, "test_empty": 2, "test_closeup": 3, "detector_scene": 4, "detector_empty": 5, "detector_closeup": 6}
DETECTOR_KINDS = ("detector_scene", "detector_empty", "detector_closeup")


def extra_counts(test: int) -> dict[str, int]:
    """How many images of each extra kind come with ``test`` scene images: face-free and close-up
    test images (a tenth each, at least 1), and the detector set's scenes and face-free images (as
    many as the test's scenes, at least 2 each) and close-ups (a fifth, at least 1). The detector
    set is the larger so that its choice is steady: at this size five generator seeds chose 0.55
    or 0.60, at a quarter of it 0.60 or 0.65 (:mod:`lib.submission.threshold_seeds`; README,
    Submission)."""
    return {
        "test_empty": max(1, test // 10),
        "test_closeup": max(1, test // 10),
        "detector_scene": max(2, test),
        "detector_empty": max(2, test),
        "detector_closeup": max(1, test // 5),
    }


@dataclass(frozen=True)
class Placement:
    centre: np.ndarray
    scale: float


def face_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_IDS[split], index])


def lever_streams(levers: tuple[str, ...], seed: int, split: str, index: int) -> dict[str, np.random.Generator]:
    """The streams of the switched-on renderer ``levers`` for one image (beside :func:`face_rng`'s)."""
    return lever.lever_streams(levers, [seed, SPLIT_IDS[split], index])


def compose(
    rng: np.random.Generator, width: int, height: int, placements: list[Placement], difficulty: float, streams: dict[str, np.random.Generator] | None = None
) -> tuple[bytes, list[tuple[np.ndarray, dict]]]:
    """Render faces over a background and degrade the image; ``streams`` holds the random stream
    of each switched-on renderer lever (:mod:`lib.data.synthetic.levers`; ``rng``'s draws are the
    same with or without them).

    Returns the image JPEG-compressed at the sampled quality (``jpeg_quality`` in the
    conditions) and, per face, its (51, 2) landmarks in pixels and its conditions.
    """
    streams = streams or {}
    to_51 = load_scheme("ivslab51").from_ibug68
    degradation = sample_degradation(rng, difficulty)
    light, light_conditions = sample_light(rng, difficulty)
    image = render_background(rng, height, width, degradation["clutter"])
    if "scene" in streams:
        image = lever.photo_backdrop(streams["scene"], height, width)
        for place in placements:
            lever.draw_shoulders(image, streams["scene"], place.centre, place.scale)
    if "crowd" in streams:
        for place in placements:
            _draw_neighbours(image, streams["crowd"], place, light, difficulty)
    faces = []
    reference_scale = np.mean([p.scale for p in placements]) if placements else 0.1 * min(width, height)
    for place in placements:
        spec, conditions = sample_face(rng, difficulty, place.scale, place.centre)
        look = spec.appearance
        if "hair" in streams:
            lever.draw_hair_mass(image, streams["hair"], spec.centre, spec.scale, (spec.yaw, spec.pitch, spec.roll), look.hair, look.bald)
        landmarks = render_face(image, spec, light, rng, streams.get("skin"))
        if "hair" in streams and abs(spec.yaw) < 35:
            lever.draw_fringe(image, streams["hair"], landmarks, spec.scale, look.hair, look.bald)
        if "camera" in streams:
            lever.cast_shadow(image, streams["camera"], landmarks[36:48].mean(axis=0), spec.scale)
        occluder = sample_occluder(rng, difficulty)
        points = landmarks[to_51]
        occluded = 0.0
        if occluder != "none":
            mask = draw_occluder(image, occluder, landmarks, place.scale, rng, spec.appearance.skin)
            inside = np.round(points).astype(int)
            valid = (inside[:, 0] >= 0) & (inside[:, 0] < width) & (inside[:, 1] >= 0) & (inside[:, 1] < height)
            occluded = float(mask[inside[valid, 1], inside[valid, 0]].sum() / len(points))
        conditions.update(light_conditions, occluder=occluder, occluded_fraction=occluded)
        faces.append((points, conditions))
    if "camera" in streams:
        image = lever.camera(image, streams["camera"])
    blur_px = degradation["blur_sigma"] * reference_scale / 50
    image = degrade(image, rng, degradation["brightness"], degradation["gamma"], blur_px, degradation["motion_blur"], degradation["noise_sigma"])
    jpeg = jpeg_roundtrip((image * 255 + 0.5).astype(np.uint8), degradation["jpeg_quality"])
    for _, conditions in faces:
        conditions.update({k: v for k, v in degradation.items() if k != "clutter"})
        conditions.update(wflw_flags(conditions))
    return jpeg, faces


def _draw_neighbours(image: np.ndarray, rng: np.random.Generator, place: Placement, light, difficulty: float) -> None:
    """The ``crowd`` lever (:mod:`lib.data.synthetic.levers`): with two chances in five, one or
    two unlabelled people beside a face, in place, before any labelled face is drawn (so they
    stand behind it): 0.75-1.25 its size, their centres 1.9-3 of its eye distances to either side
    and a little up or down, often cut by the face or the frame."""
    if rng.random() >= 0.4:
        return
    for _ in range(int(rng.integers(1, 3))):
        offset = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(1.9, 3.0), rng.normal(0, 0.5)]) * place.scale
        spec, _ = sample_face(rng, difficulty, place.scale * rng.uniform(0.75, 1.25), place.centre + offset)
        render_face(image, spec, light, rng)


def subset_of(index: int, count: int) -> tuple[str, float]:
    """Deterministic subset assignment by index, in the SUBSETS proportions."""
    edges = np.cumsum([share for share, _ in SUBSETS.values()]) * count
    position = int(np.searchsorted(edges, index, side="right"))
    name = list(SUBSETS)[min(position, len(SUBSETS) - 1)]
    return name, SUBSETS[name][1]


def render_train(seed: int, index: int, count: int, levers: tuple[str, ...] = ()) -> tuple[str, bytes, np.ndarray, dict]:
    """One training image: (subset, JPEG bytes, (51, 2) points, conditions), with the renderer
    ``levers`` named switched on."""
    rng = face_rng(seed, "train", index)
    subset, difficulty = subset_of(index, count)
    width, height = (int(v) for v in rng.integers(224, 321, 2))
    scale = rng.uniform(0.13, 0.24) * min(width, height)
    centre = np.array([width / 2, height * 0.42]) + rng.normal(0, 0.06, 2) * [width, height]
    jpeg, [(points, conditions)] = compose(rng, width, height, [Placement(centre, scale)], difficulty, lever_streams(levers, seed, "train", index))
    return subset, jpeg, points, conditions


def _place_faces(rng: np.random.Generator, width: int, height: int, count: int) -> list[Placement]:
    placements: list[Placement] = []
    for _ in range(200):
        if len(placements) == count:
            break
        scale = rng.uniform(0.06, 0.13) * min(width, height)
        radius = 2.3 * scale
        centre = rng.uniform([1.4 * scale, 1.4 * scale], [width - 1.4 * scale, height - 1.6 * scale])
        if all(np.hypot(*(centre - p.centre)) > radius + 2.3 * p.scale for p in placements):
            placements.append(Placement(centre, scale))
    return placements


def render_test(seed: int, index: int, kind: str = "test", levers: tuple[str, ...] = ()) -> tuple[bytes, list[tuple[np.ndarray, dict]]]:
    """One scene image of ``kind``: ``test`` or ``detector_scene`` (a scene of 1-3 faces),
    ``test_empty`` or ``detector_empty`` (no face), ``test_closeup`` or ``detector_closeup`` (one
    face filling most of a square frame); PNG bytes and its faces ordered right to left by
    face-centre x. Each kind has its own random stream, so the detector set never repeats a test
    image; ``levers``: the renderer levers switched on."""
    rng = face_rng(seed, kind, index)
    if kind.endswith("_closeup"):
        width = height = CLOSEUP_SIZE
        placements = [Placement(np.array([width, height]) * rng.uniform(0.42, 0.58, 2), rng.uniform(0.22, 0.3) * width)]
    else:
        width, height = TEST_SIZES[rng.integers(len(TEST_SIZES))]
        count = 0 if kind.endswith("_empty") else int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
        placements = _place_faces(rng, width, height, count)
    jpeg, faces = compose(rng, width, height, placements, 1.0, lever_streams(levers, seed, kind, index))
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    faces.sort(key=lambda face: -(points_box(face[0])[[0, 2]].mean()))
    # Huffman-only deflate: noisy renders barely compress further, and this encodes fastest.
    ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return png.tobytes(), faces


def _train_job(args: tuple[int, int, int, tuple[str, ...]]) -> tuple[int, str, bytes, np.ndarray, dict]:
    seed, index, count, levers = args
    return (index, *render_train(seed, index, count, levers))


def _test_job(args: tuple[int, int, str, tuple[str, ...]]) -> tuple[int, bytes, list]:
    seed, index, kind, levers = args
    return (index, *render_test(seed, index, kind, levers))


def _write_scenes(seed: int, kinds: list[str], images: Path, truths: Path, workers: int, description: str, levers: tuple[str, ...] = ()) -> list[dict]:
    """Render one scene image per entry of ``kinds`` (numbered in order, each kind counting its
    own index; the renderer ``levers`` switched on) as ``images/image_XXXX.png`` with its ground
    truth ``truths/image_XXXX.txt``; returns one conditions row per face."""
    jobs = [(seed, i - kinds.index(kind), kind, levers) for i, kind in enumerate(kinds)]
    rows = []
    for number, (_, png, faces) in enumerate(parallel_map(_test_job, jobs, workers, description)):
        name = f"image_{number + 1:04d}"
        atomic_write_bytes(images / f"{name}.png", png)
        write_pts(truths / f"{name}.txt", [points for points, _ in faces])
        rows.extend({"image": f"{name}.png", "face_index": i, **conditions} for i, (_, conditions) in enumerate(faces))
    return rows


def write_detector_set(folder: Path, seed: int, test: int, workers: int = 1, levers: tuple[str, ...] = ()) -> int:
    """The detector set that comes with ``test`` scene images (:func:`extra_counts`: scenes, then
    face-free images, then close-ups) into ``folder/images`` and ``folder/gt``, rendered with
    ``levers``; returns its image count."""
    counts = extra_counts(test)
    kinds = [kind for kind in DETECTOR_KINDS for _ in range(counts[kind])]
    _write_scenes(seed, kinds, folder / "images", folder / "gt", workers, "detector set", levers)
    return len(kinds)


def write_face_free_scenes(images: Path, truths: Path, count: int, seed: int, workers: int = 1) -> None:
    """``count`` face-free scenes like the detector set's (``images/image_XXXX.png``, each with an
    empty ``truths/image_XXXX.txt``): what a detector set of real photographs, which rarely come
    without a face, needs to measure invented faces."""
    _write_scenes(seed, ["detector_empty"] * count, images, truths, workers, "face-free scenes")


def parallel_map(function, jobs: list, workers: int, description: str):
    if workers <= 1:
        yield from track(map(function, jobs), total=len(jobs), desc=description)
        return
    with Pool(workers) as pool:
        yield from track(pool.imap(function, jobs, chunksize=8), total=len(jobs), desc=description)


def generated_params(folder: Path) -> dict | None:
    """The parameters ``folder/manifest.json`` records when ``folder`` holds a dataset this
    generator wrote; None for anything else (no manifest, or one that is not ours)."""
    try:
        params = json.loads((folder / "manifest.json").read_text())["params"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return params if isinstance(params, dict) and "generator_version" in params else None


PARTIAL_MARKER = ".generator-partial"  # in a folder being built: this generator made it, and may clear it


def real_folder(out: Path) -> Path:
    """The folder ``out`` names: a symbolic link's target (the set is built beside it and the link
    keeps pointing at it), else ``out``."""
    return out.resolve() if out.is_symlink() else out


def foreign_files(folder: Path) -> list[Path]:
    """Files in a generated ``folder`` its ``manifest.json`` does not list (someone else put them
    there): the ones replacing the folder would delete. An older generator's manifest, without a
    file list, lists none."""
    try:
        listed = set(json.loads((folder / "manifest.json").read_text()).get("files", []))
    except (OSError, ValueError, AttributeError):
        listed = set()
    present = (path for path in folder.rglob("*") if not path.is_dir() and path.name != "manifest.json")
    return sorted(path for path in present if path.relative_to(folder).as_posix() not in listed)


def refuse_foreign(folder: Path) -> None:
    """``FileExistsError`` naming the files of ``folder`` this generator did not write (nothing is deleted)."""
    foreign = foreign_files(folder)
    if foreign:
        raise FileExistsError(
            f"{folder} holds {len(foreign)} files its manifest does not list (e.g. {foreign[0]}): refusing to replace it; "
            "move them out, or delete the folder yourself to regenerate it"
        )


def start_partial(out: Path) -> Path:
    """An empty ``<out>.partial`` to build ``out`` in, marked as this generator's. One left by an
    interrupted run (it carries the mark) is cleared; a folder of that name without the mark is
    someone else's: ``FileExistsError`` names it and nothing is deleted."""
    partial = out.with_name(out.name + ".partial")
    if partial.is_symlink() or partial.exists():
        ours = partial.is_dir() and not partial.is_symlink() and ((partial / PARTIAL_MARKER).is_file() or not any(partial.iterdir()))
        if not ours:
            raise FileExistsError(
                f"{partial} exists and is not a half-built set of this generator (no {PARTIAL_MARKER} in it): refusing to delete it; move it away"
            )
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    (partial / PARTIAL_MARKER).touch()
    return partial


def partial_folder(out: Path, params: dict, force: bool = False) -> Path | None:
    """Where to build a generated set for ``out``: None when ``out`` already holds a complete one
    with ``params`` (and not ``force``), else an empty ``<out>.partial`` (:func:`start_partial`).
    An existing ``out`` is replaced only when its manifest says this generator wrote it and lists
    every file in it (or it is an empty folder): a folder of real data, or files a user added, are
    never deleted, and ``FileExistsError`` names them before anything is rendered."""
    out = real_folder(out)
    existing = generated_params(out)
    if existing == params and not force:
        return None
    if existing is None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"{out} exists and is not a generated dataset (no generator manifest.json): refusing to replace it; "
            "point the profile's dataset root elsewhere, or set `generate: false` for real data"
        )
    if existing is not None:
        refuse_foreign(out)
    return start_partial(out)


def write_manifest(folder: Path, record: dict) -> None:
    """``folder/manifest.json``, written last: ``record`` and every file the generator wrote in
    ``folder`` (what a later run may replace)."""
    files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file() and path.name not in (PARTIAL_MARKER, "manifest.json"))
    atomic_write_text(folder / "manifest.json", json.dumps({**record, "files": files}, indent=2))


def move_into_place(partial: Path, out: Path) -> Path:
    """Replace ``out`` (a link's target) by the finished ``partial``; an ``out`` holding files
    its manifest does not list is not replaced (:func:`refuse_foreign`). Returns ``out``."""
    target = real_folder(out)
    if target.exists():
        refuse_foreign(target)
        shutil.rmtree(target)
    (partial / PARTIAL_MARKER).unlink(missing_ok=True)
    partial.rename(target)
    return out


def generate(out: str | Path, train: int, test: int, seed: int = 0, workers: int = 1, force: bool = False, levers=()) -> Path:
    """Generate the dataset into ``out`` (skipped if a complete one with the same parameters
    exists, unless ``force``; built in ``<out>.partial``, see :func:`partial_folder`; a symbolic link
    ``out`` is followed), every image rendered with the renderer ``levers`` named
    (:data:`lib.data.synthetic.levers.LEVERS`; the manifest records them when there are any).
    Returns ``out``."""
    out = Path(out)
    levers = lever.check_levers(levers)
    params = {
        "generator_version": GENERATOR_VERSION,
        "train": train,
        "test": test,
        "seed": seed,
        **extra_counts(test),
        **({"levers": list(levers)} if levers else {}),
    }
    partial = partial_folder(out, params, force)
    if partial is None:
        return out
    started = time.perf_counter()
    tree = PairTree(partial)
    train_root, test_root, gt_root = tree.train, tree.test, tree.test_gt
    rows = []
    for index, subset, jpeg, points, conditions in parallel_map(_train_job, [(seed, i, train, levers) for i in range(train)], workers, "train images"):
        stem = f"{subset.lower()}_{index:05d}"
        atomic_write_bytes(train_root / subset / "images" / f"{stem}.jpg", jpeg)
        write_pts(train_root / subset / "labels" / f"{stem}.pts", points)
        rows.append({"image": f"{subset}/images/{stem}.jpg", "face_index": 0, **conditions})
    atomic_save_csv(pd.DataFrame(rows), train_root / "conditions.csv", index=False)
    test_root.mkdir(parents=True, exist_ok=True)
    kinds = ["test"] * test + ["test_empty"] * params["test_empty"] + ["test_closeup"] * params["test_closeup"]
    rows = _write_scenes(seed, kinds, test_root, gt_root, workers, "test images", levers)
    gt_root.mkdir(parents=True, exist_ok=True)
    atomic_save_csv(pd.DataFrame(rows), gt_root / "conditions.csv", index=False)
    detector_images = write_detector_set(tree.detector, seed, test, workers, levers)
    seconds = time.perf_counter() - started
    write_manifest(
        partial, {"params": params, "seconds": round(seconds, 2), "images_per_second": round((train + len(kinds) + detector_images) / max(seconds, 1e-9), 1)}
    )
    return move_into_place(partial, out)
