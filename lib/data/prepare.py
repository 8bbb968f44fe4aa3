"""A user's labelled faces, split by photograph and laid out as the run's own PAIR tree.

:func:`prepare_labelled_folder` reads a folder of any kind :mod:`lib.data.kinds` recognises,
groups the faces by photograph (300-W's ``<photo>_<k>`` files, and image files of identical
content, so that a copy of a photograph never lands on both sides), and splits the photographs
with a seed into

* ``train`` and ``val``: the training tree (``PairTree.train``); validation is the part the
  training's own split (:func:`lib.data.splits.training_split`, with the profile's
  ``val_fraction`` and split seed) holds out, and it is written again as the detector set
  (``PairTree.detector``, with as many face-free scenes drawn by the synthetic generator: real
  photographs rarely come without a face) on which the submission step makes its choices
  (detector threshold and layout, refinement passes, flip); the timing step's ship rule reads
  the validation NME;
* ``test``: test images with their ground truth (``PairTree.test``, ``PairTree.test_gt``), used
  for nothing but the report.

Images are symbolic links to the user's files (nothing of theirs is copied, moved or changed);
labels are written in the scheme's points. ``split.csv`` lists every face with its original
file, photograph and part; ``prepared.json`` the settings and counts. The tree is built in
``<out>.partial`` and moved into place when complete; a tree prepared with the same settings is
reused, one prepared with others is an error naming both.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from lib.data.kinds import detect_kind
from lib.data.sources import AUTO, Source
from lib.data.splits import split_table, training_split
from lib.data.synthetic.generate import write_face_free_scenes
from lib.formats.pair import CONDITIONS_FILE, PairTree
from lib.formats.pts import write_pts
from lib.io import atomic_save_csv, atomic_write_text, file_sha256
from lib.paths import resolve

PREPARED_FOLDER = "data"  # the tree's folder in a run folder (lib.pipeline.runner)
PREPARED_FILE = "prepared.json"
SPLIT_FILE = "split.csv"
PARTS = ("train", "val", "test")
PARTIAL_MARKER = ".preparing"  # in <out>.partial while it is written
MIN_FACE_FREE = 2  # face-free scenes beside the validation photographs: as many as they, at least this


def photo_groups(table: pd.DataFrame) -> pd.Series:
    """One group id per face: faces of one ``photo``, and of image files with identical bytes,
    share it (a union over both relations); the id is the group's first photo in table order."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    photos = table["photo"].astype(str)
    order = {photo: index for index, photo in enumerate(dict.fromkeys(photos))}
    first_photo_of_hash: dict[str, str] = {}
    for image, photo in zip(table["image"], photos, strict=True):
        other = first_photo_of_hash.setdefault(file_sha256(image), photo)
        low, high = sorted((find(photo), find(other)), key=order.__getitem__)
        parent[high] = low
    return photos.map(find)


def _flat(subset: str) -> str:
    return str(subset).replace("/", "-").replace("\\", "-") or "faces"


def _link(target: str, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(Path(target).resolve())


def _write_train(faces: pd.DataFrame, train_root: Path, source_root: Path) -> None:
    """One image link and one 1-face label per face, by subset; ``conditions.csv`` keeps each
    face's photograph and original file."""
    rows = []
    counts = faces.groupby("image")["image"].transform("size")
    for (_, face), several in zip(faces.iterrows(), counts, strict=True):
        original = Path(face["image"])
        stem = original.stem + (f"_{int(face['face_index'])}" if several > 1 else "")
        subset = _flat(face["subset"])
        image = train_root / subset / "images" / f"{stem}{original.suffix}"
        if image.exists() or image.is_symlink():
            raise ValueError(f"{face['image']}: two faces map to {image.relative_to(train_root)}; give the files of one folder distinct stems")
        _link(face["image"], image)
        write_pts(train_root / subset / "labels" / f"{stem}.pts", face["points"])
        rows.append({"image": image.relative_to(train_root).as_posix(), "face_index": 0, "photo": face["photo"], "original": _relative(original, source_root)})
    atomic_save_csv(pd.DataFrame(rows), train_root / CONDITIONS_FILE, index=False)


def _write_scenes(faces: pd.DataFrame, images_root: Path, gt_root: Path, source_root: Path) -> None:
    """One image link per original image and its faces' ground truth (``<stem>.txt``, the
    submission format), named ``<subset>-<stem>``; ``gt/conditions.csv`` keeps each face's
    photograph, original file and folder."""
    rows = []
    for image, group in faces.groupby("image", sort=False):
        original = Path(image)
        stem = f"{_flat(group['subset'].iloc[0])}-{original.stem}"
        _link(image, images_root / f"{stem}{original.suffix}")
        write_pts(gt_root / f"{stem}.txt", [np.asarray(points) for points in group["points"]])
        for face_index, face in enumerate(group.itertuples(index=False)):
            rows.append(
                {
                    "image": f"{stem}{original.suffix}",
                    "face_index": face_index,
                    "photo": face.photo,
                    "folder": face.subset,
                    "original": _relative(original, source_root),
                }
            )
    gt_root.mkdir(parents=True, exist_ok=True)
    atomic_save_csv(pd.DataFrame(rows), gt_root / CONDITIONS_FILE, index=False)


def _relative(path: Path, root: Path) -> str:
    path = path.resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def prepare_labelled_folder(
    source_root: str | Path, out: str | Path, scheme: str, test_fraction: float, seed: int, val_fraction: float, split_seed: int
) -> Path:
    """The run's PAIR tree at ``out`` made from the labelled folder ``source_root`` (module
    docstring): ``test_fraction`` of the photographs (at least one) are the test part, drawn with
    ``seed``; validation is ``val_fraction`` of the rest, drawn by the training's split with
    ``split_seed``. Returns ``out``."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), not {test_fraction!r}")
    source_root, out = resolve(source_root).resolve(), resolve(out)
    kind = detect_kind(source_root)
    settings = {
        "source": str(source_root),
        "kind": kind.name,
        "scheme": scheme,
        "test_fraction": test_fraction,
        "seed": seed,
        "val_fraction": val_fraction,
        "split_seed": split_seed,
    }
    if (out / PREPARED_FILE).is_file():
        recorded = json.loads((out / PREPARED_FILE).read_text())["settings"]
        if recorded != settings:
            changed = "; ".join(f"{key}: {recorded.get(key)!r} there, {value!r} now" for key, value in settings.items() if recorded.get(key) != value)
            raise ValueError(f"{out} holds faces prepared with other settings ({changed}): give another run folder")
        return out
    faces = kind.all_faces(source_root, scheme)
    faces = faces.assign(photo=photo_groups(faces))
    rest, test = split_table(faces, test_fraction, seed)
    partial = out.with_name(out.name + ".partial")
    if (partial / PARTIAL_MARKER).is_file():
        shutil.rmtree(partial)  # an interrupted preparation: links and labels this function wrote
    elif partial.exists():
        raise FileExistsError(f"{partial} exists and was not made by a preparation: move it away")
    partial.mkdir(parents=True)
    (partial / PARTIAL_MARKER).touch()
    tree = PairTree(partial)
    _write_train(rest, tree.train, source_root)
    _write_scenes(test, tree.test, tree.test_gt, source_root)
    val = training_split([Source("pair", AUTO, str(partial))], scheme, val_fraction, split_seed)[1]
    in_val = rest["image"].map(lambda image: _relative(Path(image), source_root)).isin(set(val["original"]))
    _write_scenes(rest[in_val], tree.detector / "images", tree.detector / "gt", source_root)
    write_face_free_scenes(tree.detector / "images", tree.detector / "gt", max(MIN_FACE_FREE, rest.loc[in_val, "image"].nunique()), seed)
    parts = pd.concat([rest.assign(part=np.where(in_val, "val", "train")), test.assign(part="test")], ignore_index=True)
    split = pd.DataFrame(
        {
            "original": [_relative(Path(image), source_root) for image in parts["image"]],
            "folder": parts["subset"],
            "photo": parts["photo"],
            "part": parts["part"],
        }
    )
    atomic_save_csv(split, partial / SPLIT_FILE, index=False)
    counts = {part: {"faces": int((split["part"] == part).sum()), "photos": int(split.loc[split["part"] == part, "photo"].nunique())} for part in PARTS}
    atomic_write_text(partial / PREPARED_FILE, json.dumps({"settings": settings, "parts": counts}, indent=2))
    (partial / PARTIAL_MARKER).unlink()
    os.replace(partial, out)
    return out


def data_headline(prepared: dict) -> tuple[str, dict]:
    """The data preparation's headline (:mod:`lib.headline`) from its ``prepared.json``: the
    folder's name (not its path), its kind and the faces and photographs of each part."""
    parts = prepared["parts"]
    line = ", ".join(f"{name} {part['faces']} faces ({part['photos']} photographs)" for name, part in parts.items())
    return f"{Path(prepared['settings']['source']).name} ({prepared['settings']['kind']}) split by photograph: {line}", {
        "data": {"folder": Path(prepared["settings"]["source"]).name, "kind": prepared["settings"]["kind"], "parts": parts}
    }
