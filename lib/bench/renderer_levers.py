"""Each renderer lever's effect on real faces, over seeds.

    python -m lib.bench.renderer_levers --real DIR [--arms none scene hair skin camera all]
        [--seeds 1 2 3] [--train 3000] [--out runs/levers] [--parallel 2] [--package ZIP]
        [--set KEY=VALUE ...]

For each arm (``none``: the renderer as it is; a lever's name: that lever alone,
:mod:`lib.data.synthetic.levers`; ``all``: every renderer lever; ``randconv``: a lever of the
training, :data:`TRAINING_LEVERS`; names joined by ``+``) a synthetic set of ``train`` images is
generated with the same seed, so the arms hold the same faces in the same poses and differ only
in the lever's pixels; the profile's student is trained alone on each (no teacher: the lever is
what changes) on every seed, and every training runs on crops of the real faces of ``--real`` (a
300-W-layout folder) by the training crop rule (:func:`lib.bench.real_face_benchmark.score_checkpoints`).
With ``--package`` (a ``final_package.zip`` or its unpacked folder) every training is also
run end to end, as a package would run it (:func:`end_to_end_scores`): the package's detectors,
threshold, box-to-crop rule, flip, roll and passes, with the training's network in place of the
package's file; a face the detector misses counts as a failure. Per arm and measure, against
``none`` on the same seeds: the mean paired NME difference (outer eye corners; negative: the
lever helps) with its 95 % interval over the seeds (:func:`lib.training.ablation.seed_summary`).
The real faces only evaluate here; what a profile adopts is written in pipeline.yaml by hand, with
this table as its reason.

Writes ``<out>/levers.csv`` (one row per training and measure), ``<out>/levers_summary.csv`` and
``<out>/levers.md``; the sets go to ``<out>/data/<arm>``, the trainings to
``<out>/<arm>/seed_<s>``. A rerun reuses every finished set and training and resumes an
interrupted one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from lib.bench.real_face_benchmark import benchmark, score_checkpoints
from lib.cli import add_set_option, parse_overrides
from lib.data.real_faces import read_real_faces
from lib.data.synthetic.generate import generate
from lib.data.synthetic.levers import LEVERS, check_levers
from lib.deploy.run_model import PACKAGE_CLOSE_UP_DETECTOR, PACKAGE_DETECTOR, PACKAGE_SETTINGS, BadInput
from lib.inference.landmarker import load_landmarker
from lib.io import atomic_save_csv, atomic_write_text
from lib.paths import resolve
from lib.schemes import Scheme, load_scheme
from lib.training.ablation import seed_summary
from lib.training.config import profile_dataset, train_config
from lib.training.jobs import TrainJob, alone_loss, run_jobs

BASELINE, EVERY = "none", "all"
CROPS, END_TO_END = "crops from the labels", "end to end"  # the measures
TEST_IMAGES = 10  # each arm's own synthetic test set is not used: the smallest the generator writes
# Levers of the training rather than of the renderer: an arm naming one trains on the set of its
# renderer levers with these settings merged into the student's (``augment`` key by key).
TRAINING_LEVERS = {"randconv": {"augment": {"randconv_p": 0.5}}}


def arm_parts(arm: str) -> tuple[str, tuple[str, ...], dict]:
    """An arm's set name (the folder of its renderer levers: ``none``, ``all`` or their
    ``+``-joined names as written), the renderer levers it switches on, and its training
    settings. ``none``: no lever; ``all``: every renderer lever; else ``+``-joined names of
    renderer levers (:data:`lib.data.synthetic.levers.LEVERS`) and training levers
    (:data:`TRAINING_LEVERS`), e.g. ``scene+hair`` or ``skin+randconv``."""
    names = arm.split("+")
    training = [name for name in names if name in TRAINING_LEVERS]
    rendered = [name for name in names if name not in TRAINING_LEVERS and name != BASELINE]
    settings: dict = {}
    for name in training:
        for key, value in TRAINING_LEVERS[name].items():
            settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    if rendered == [EVERY]:
        return EVERY, LEVERS, settings
    return "+".join(rendered) or BASELINE, check_levers(rendered), settings


def lever_jobs(out: Path, arms: list[str], seeds: list[int], train: int, config: str, profile: str, overrides: dict) -> list[TrainJob]:
    """Generate each arm's set (``train`` images, the profile's dataset seed; arms with the same
    renderer levers share one) and return the student-alone trainings on it with the arm's
    training levers, one per seed, in ``out/<arm>/seed_<s>``."""
    student = train_config("student", config, profile, overrides)
    dataset_seed = profile_dataset(config, profile).seed
    jobs = []
    for arm in arms:
        set_name, levers, training = arm_parts(arm)
        data = generate(out / "data" / set_name, train, TEST_IMAGES, dataset_seed, workers=os.cpu_count() or 1, levers=levers)
        settings = {**overrides, "data_root": str(data), "loss": alone_loss(student.loss)}
        if "augment" in training:
            settings["augment"] = {**student.augment, **training.pop("augment")}
        settings.update(training)
        jobs += [TrainJob(arm, "student", {**settings, "seed": seed, "out_dir": str(out / arm / f"seed_{seed}")}) for seed in seeds]
    return jobs


def end_to_end_scores(trainings: Iterable[tuple[str, int, str | Path]], table: pd.DataFrame, scheme: Scheme, package: str | Path) -> pd.DataFrame:
    """Each training's ``best.pt`` run end to end on the images of ``table`` (labelled real
    faces, :func:`lib.data.real_faces.read_real_faces`) as ``package`` (a ``final_package.zip`` or
    its unpacked folder) runs its own file: its detectors, detector threshold and layout,
    box-to-crop rule, flip, roll and refinement passes. One row per (label, seed, training
    folder): ``model``, ``seed``, ``nme``, ``median`` and ``fr@0.10`` under the outer eye
    corners over every labelled face (a missed face failing,
    :func:`~lib.bench.real_face_benchmark.summarise_method`), ``missed``, ``faces``.
    :class:`~lib.deploy.run_model.BadInput` names a package that cannot be used."""
    package = resolve(package)
    with tempfile.TemporaryDirectory(prefix="lever-package-") as work:
        folder = package
        if package.is_file():
            try:
                with zipfile.ZipFile(package) as archive:
                    archive.extractall(work)
            except zipfile.BadZipFile as error:
                raise BadInput(f"{package}: not a package zip ({error})") from None
            folder = Path(work)
        if not (folder / PACKAGE_SETTINGS).is_file():
            raise BadInput(f"{package}: not a package (no {PACKAGE_SETTINGS})")
        rows = []
        for label, seed, training in trainings:
            pipeline = load_landmarker(
                Path(training) / "best.pt", folder / PACKAGE_SETTINGS, folder / PACKAGE_DETECTOR, folder / PACKAGE_CLOSE_UP_DETECTOR, threads=1
            )
            summary = benchmark({label: pipeline}, table, scheme)[0].iloc[0]
            rows.append(
                {
                    "model": label,
                    "seed": seed,
                    "nme": summary["nme_outer_eye_corners"],
                    "median": summary["median_outer_eye_corners"],
                    "fr@0.10": summary["fr_outer_eye_corners"],
                    "missed": summary["missed"],
                    "faces": summary["faces"],
                }
            )
    return pd.DataFrame(rows)


def markdown(summary: pd.DataFrame, real: str, faces: int, train: int) -> str:
    """The summary as Markdown tables, one per ``measure`` (NME in %, differences in points)."""
    lines = [f"# Renderer levers on real faces ({faces} faces of `{Path(real).name}`, the student alone on {train} synthetic images per arm)"]
    for measure, rows in summary.groupby("measure", sort=False):
        lines += [
            "",
            f"## {measure}",
            "",
            "| arm | seeds | NME (outer corners) | minus `none` | 95 % interval | better on |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        lines += [_markdown_row(row) for row in rows.itertuples()]
    return "\n".join(lines) + "\n"


def _markdown_row(row) -> str:
    """One arm's line of :func:`markdown`'s table."""
    paired = getattr(row, "nme_minus_baseline", float("nan"))
    if pd.isna(paired):
        difference = interval = better = ""
    else:
        difference = f"{100 * paired:+.2f}"
        interval = f"{100 * row.ci95_low:+.2f} to {100 * row.ci95_high:+.2f}"
        better = f"{round(row.better_share * row.paired_seeds)} of {int(row.paired_seeds)}"
    return f"| {row.model} | {row.seeds} | {100 * row.nme_mean:.2f} % +- {100 * row.nme_std:.2f} | {difference} | {interval} | {better} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.renderer_levers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", default=os.environ.get("REAL_FACES_300W"), help="a 300-W-layout folder of labelled real faces (default: $REAL_FACES_300W)")
    parser.add_argument("--arms", nargs="+", default=[BASELINE, *LEVERS, EVERY], help="none, a lever, levers joined by +, or all")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--train", type=int, default=3000, help="synthetic training images per arm")
    parser.add_argument("--out", default="runs/levers")
    parser.add_argument("--parallel", type=int, default=2, help="trainings side by side")
    parser.add_argument("--config", default="pipeline.yaml")
    parser.add_argument("--profile", default="default", help="whose student settings train")
    parser.add_argument("--package", help="a final_package.zip (or its folder) whose detector and settings also run every training end to end")
    add_set_option(parser, "the student's training settings")
    args = parser.parse_args(argv)
    if not args.real:
        parser.error("give --real (or set REAL_FACES_300W): a 300-W-layout folder of labelled faces")
    arms = list(dict.fromkeys([BASELINE, *args.arms]))
    try:
        for arm in arms:
            arm_parts(arm)  # unknown names stop here, before anything is generated
        package = resolve(args.package) if args.package else None
        if package is not None and not package.exists():
            raise BadInput(f"{package}: package not found")
        scheme_name = train_config("student", args.config, args.profile).scheme
        real = read_real_faces(args.real, scheme_name)
    except ValueError as error:  # FormatError and BadInput included: they name the file
        print(f"error: {error}", file=sys.stderr)
        return 2
    out, scheme = resolve(args.out), load_scheme(scheme_name)
    jobs = lever_jobs(out, arms, args.seeds, args.train, args.config, args.profile, parse_overrides(args.set))
    run_jobs(jobs, args.config, args.profile, parallel=args.parallel)
    trainings = [(job.label, job.overrides["seed"], job.overrides["out_dir"]) for job in jobs]
    measures = {CROPS: score_checkpoints(trainings, real, scheme)}
    if package is not None:
        try:
            measures[END_TO_END] = end_to_end_scores(trainings, real, scheme, package)
        except BadInput as error:  # the trainings stay: a rerun with a usable package reuses them
            print(f"error: {error}", file=sys.stderr)
            return 2
    per_training = pd.concat([table.assign(measure=measure) for measure, table in measures.items()], ignore_index=True)
    atomic_save_csv(per_training, out / "levers.csv", index=False)
    summary = pd.concat([seed_summary(table, baseline=BASELINE).assign(measure=measure) for measure, table in measures.items()], ignore_index=True)
    atomic_save_csv(summary, out / "levers_summary.csv", index=False)
    table = markdown(summary, args.real, len(real), args.train)
    atomic_write_text(out / "levers.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
