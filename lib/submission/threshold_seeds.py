"""How steady the detector set's choice is: the same measurement on detector sets of other
generator seeds and sizes.

    python -m lib.submission.threshold_seeds --sizes 50 200 --seeds 0 1 2 3 4 --out DIR [--settings settings.json]

For each size (the ``test`` count the generator sizes its detector set by,
:func:`lib.data.synthetic.generate.extra_counts`) and generator seed, the detector set is written
under ``DIR/sets/`` (built in a ``.partial`` folder and renamed: a rerun reuses finished sets) and
measured exactly as the submission step measures its own (:func:`measure_detector`: every layout,
every candidate threshold). Writes ``DIR/sweeps/<set>.csv`` per set (a rerun skips measured sets),
``DIR/choices.csv`` (one row per set: the chosen layout and threshold, its missed share, invented
faces per image and cost) and prints the choices and each size's range of thresholds. A choice
that moves with the seed is noise in the detector set, not a property of the detector: how far it
moves at each size says how large the set must be. Sets and sweeps are named by the generator's
version too, so a changed renderer never reuses old ones. ``--settings`` takes the close-up box map
of a package's ``settings.json`` (as the submission step fits it on training faces); without it
the close-up model's boxes are used unmapped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lib.data.synthetic.generate import GENERATOR_VERSION, move_into_place, start_partial, write_detector_set
from lib.deploy.detector_files import CLOSE_UP_DETECTOR, DEFAULT_DETECTOR
from lib.deploy.run_model import NO_BOX_MAP, BadInput, PackageSettings
from lib.io import atomic_save_csv
from lib.paths import resolve
from lib.progress import track
from lib.submission.detection_threshold import choose_layout, measure_detector


def set_name(size: int, seed: int) -> str:
    """The folder (and sweep) name of one detector set: generator version, size and seed."""
    return f"v{GENERATOR_VERSION}_test{size}_seed{seed}"


def detector_set(root: Path, size: int, seed: int, workers: int) -> Path:
    """``root/<set_name>``, written unless a finished one is there."""
    folder = root / set_name(size, seed)
    if not folder.is_dir():
        partial = start_partial(folder)
        write_detector_set(partial, seed, size, workers)
        move_into_place(partial, folder)
    return folder


COUNTS = ("faces", "face_free_images", "images")


def measured_sweep(folder: Path, sweep_path: Path, close_up_box: tuple[float, float, float], threads: int) -> pd.DataFrame:
    """:func:`measure_detector`'s table for the set in ``folder`` with its counts as columns,
    read from ``sweep_path`` when a run before measured it (else measured and saved there)."""
    if sweep_path.is_file():
        return pd.read_csv(sweep_path)
    _, _, sweep, counts = measure_detector(resolve(DEFAULT_DETECTOR), resolve(CLOSE_UP_DETECTOR), folder, 51, threads=threads, close_up_box=close_up_box)
    sweep = sweep.assign(**{key: counts[key] for key in COUNTS})
    atomic_save_csv(sweep, sweep_path, index=False)
    return sweep


def measure_seeds(
    out: Path, sizes: list[int], seeds: list[int], close_up_box: tuple[float, float, float] = NO_BOX_MAP, workers: int = 1, threads: int = 2
) -> pd.DataFrame:
    """One row per (size, seed): the set's ``faces``, ``face_free_images`` and ``images``, the
    chosen ``tiles``, ``close_up`` and ``min_score`` (:func:`choose_layout`) and that choice's
    ``missed_share``, ``invented_per_image`` and ``cost``; the sweeps stay in ``out/sweeps/``."""
    rows = []
    for size, seed in track([(size, seed) for size in sizes for seed in seeds], desc="detector sets"):
        folder = detector_set(out / "sets", size, seed, workers)
        sweep = measured_sweep(folder, out / "sweeps" / f"{folder.name}.csv", close_up_box, threads)
        (tiles, close_up), threshold = choose_layout(sweep)
        chosen = sweep[(sweep["tiles"] == tiles) & (sweep["close_up"] == close_up) & np.isclose(sweep["min_score"], threshold)].iloc[0]
        rows.append(
            {
                "size": size,
                "seed": seed,
                **{key: int(chosen[key]) for key in COUNTS},
                "tiles": tiles,
                "close_up": close_up,
                "min_score": threshold,
                **{key: float(chosen[key]) for key in ("missed_share", "invented_per_image", "cost")},
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The detector set's layout and threshold choice across generator seeds and set sizes.")
    parser.add_argument("--out", required=True, type=Path, help="folder for the sets, their sweeps and choices.csv")
    parser.add_argument("--sizes", nargs="+", type=int, default=[50, 200], help="test counts the detector sets are sized by (200: the default profile's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--settings", type=Path, help="a package's settings.json: its close-up box map")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the sets")
    parser.add_argument("--threads", type=int, default=2, help="detector threads")
    args = parser.parse_args(argv)
    try:
        close_up_box = PackageSettings.read(args.settings).close_up_box if args.settings else NO_BOX_MAP
    except BadInput as error:
        print(f"threshold_seeds: {error}", file=sys.stderr)
        return 2
    choices = measure_seeds(args.out, args.sizes, args.seeds, close_up_box, args.workers, args.threads)
    atomic_save_csv(choices, args.out / "choices.csv", index=False)
    print(choices.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for size, rows in choices.groupby("size"):
        print(
            f"size {size}: thresholds {rows['min_score'].min():.2f}-{rows['min_score'].max():.2f} over {len(rows)} seeds, layouts {sorted(set(zip(rows['tiles'], rows['close_up'], strict=True)))}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
