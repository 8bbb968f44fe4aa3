"""Each renderer lever's effect on real faces, over seeds.

    python -m lib.bench.renderer_levers --real DIR [--arms none scene hair skin camera all]
        [--seeds 1 2 3] [--train 3000] [--out runs/levers] [--parallel 2] [--set KEY=VALUE ...]

For each arm (``none``: the renderer as it is; a lever's name: that lever alone,
:mod:`lib.data.synthetic.levers`; ``all``: every renderer lever; ``randconv``: a lever of the
training, :data:`TRAINING_LEVERS`; names joined by ``+``) a synthetic set of ``train`` images is
generated with the same seed, so the arms hold the same faces in the same poses and differ only
in the lever's pixels; the profile's student is trained alone on each (no teacher: the lever is
what changes) on every seed, and every training runs on crops of the real faces of ``--real`` (a
300-W-layout folder) by the training crop rule (:func:`lib.bench.real_face_benchmark.score_checkpoints`).
Per arm, against ``none`` on the same seeds: the mean paired NME difference (outer eye corners;
negative: the lever helps) with its 95 % interval over the seeds
(:func:`lib.training.ablation.seed_summary`). The real faces only evaluate here; what a profile
adopts is written in pipeline.yaml by hand, with this table as its reason.

Writes ``<out>/levers.csv`` (one row per training), ``<out>/levers_summary.csv`` and
``<out>/levers.md``; the sets go to ``<out>/data/<arm>``, the trainings to
``<out>/<arm>/seed_<s>``. A rerun reuses every finished set and training and resumes an
interrupted one.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from lib.bench.real_face_benchmark import score_checkpoints
from lib.cli import add_set_option, parse_overrides
from lib.data.real_faces import read_real_faces
from lib.data.synthetic.generate import generate
from lib.data.synthetic.levers import LEVERS, check_levers
from lib.io import atomic_save_csv, atomic_write_text
from lib.paths import resolve
from lib.schemes import load_scheme
from lib.training.ablation import seed_summary
from lib.training.config import profile_dataset, train_config
from lib.training.jobs import TrainJob, alone_loss, run_jobs

BASELINE, EVERY = "none", "all"
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


def markdown(summary: pd.DataFrame, real: str, faces: int, train: int) -> str:
    """The summary as a Markdown table (NME in %, differences in points)."""
    lines = [
        f"# Renderer levers on real faces ({faces} faces of `{Path(real).name}`, the student alone on {train} synthetic images per arm)",
        "",
        "| arm | seeds | NME (outer corners) | minus `none` | 95 % interval | better on |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in summary.itertuples():
        paired = getattr(row, "nme_minus_baseline", float("nan"))
        if pd.isna(paired):
            difference = interval = better = ""
        else:
            difference = f"{100 * paired:+.2f}"
            interval = f"{100 * row.ci95_low:+.2f} to {100 * row.ci95_high:+.2f}"
            better = f"{round(row.better_share * row.paired_seeds)} of {int(row.paired_seeds)}"
        lines.append(f"| {row.model} | {row.seeds} | {100 * row.nme_mean:.2f} % +- {100 * row.nme_std:.2f} | {difference} | {interval} | {better} |")
    return "\n".join(lines) + "\n"


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
    add_set_option(parser, "the student's training settings")
    args = parser.parse_args(argv)
    if not args.real:
        parser.error("give --real (or set REAL_FACES_300W): a 300-W-layout folder of labelled faces")
    arms = list(dict.fromkeys([BASELINE, *args.arms]))
    try:
        for arm in arms:
            arm_parts(arm)  # unknown names stop here, before anything is generated
        scheme_name = train_config("student", args.config, args.profile).scheme
        real = read_real_faces(args.real, scheme_name)
    except ValueError as error:  # FormatError included: it names the file
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = resolve(args.out)
    jobs = lever_jobs(out, arms, args.seeds, args.train, args.config, args.profile, parse_overrides(args.set))
    run_jobs(jobs, args.config, args.profile, parallel=args.parallel)
    trainings = [(job.label, job.overrides["seed"], job.overrides["out_dir"]) for job in jobs]
    per_training = score_checkpoints(trainings, real, load_scheme(scheme_name))
    atomic_save_csv(per_training, out / "levers.csv", index=False)
    summary = seed_summary(per_training, baseline=BASELINE)
    atomic_save_csv(summary, out / "levers_summary.csv", index=False)
    table = markdown(summary, args.real, len(real), args.train)
    atomic_write_text(out / "levers.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
