"""``python -m lib.pipeline [--profile P] [--data FOLDER] [--only STEP ...] [--from STEP] [--set key=value ...] [--dataset-only]``

Runs the notebooks of pipeline.yaml with papermill into ``runs/<id>/``: each executed notebook
is saved there as it runs, and each step writes its products under ``runs/<id>/<step>/``.
A failing step stops the run and is named with its notebook and cell; ``--run-dir`` with
``--from`` continues an earlier run.
"""

from __future__ import annotations

import argparse
import sys

from lib.cli import add_set_option, parse_overrides
from lib.pipeline.runner import StepFailed, generate_dataset, run_pipeline
from lib.settings import load_pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.pipeline", description="Run the notebook pipeline.")
    parser.add_argument("--config", default="pipeline.yaml")
    parser.add_argument("--profile", default="default", help="smoke | default | finetune | paper (see pipeline.yaml)")
    parser.add_argument("--only", nargs="+", metavar="STEP", help="run just these steps")
    parser.add_argument("--from", dest="start", metavar="STEP", help="run this step and the ones after it")
    add_set_option(parser, "notebook parameters")
    parser.add_argument("--run-dir", help="run folder (default: runs/<timestamp>-<profile>)")
    parser.add_argument("--data", metavar="FOLDER", help="your labelled faces (a PAIR or 300-W tree), for a profile that trains on them (finetune)")
    parser.add_argument("--list", action="store_true", help="list the steps and profiles, then exit")
    parser.add_argument("--dataset-only", action="store_true", help="render the profile's synthetic set if absent, then exit (make data)")
    args = parser.parse_args(argv)
    pipeline = load_pipeline(args.config)
    if args.list:
        for step in pipeline.steps:
            print(f"{step.name:12s} {step.notebook}")
        print("profiles:", ", ".join(pipeline.profiles))
        return 0
    if args.dataset_only:
        try:
            print(f"dataset ready: {generate_dataset(pipeline, args.profile)}")
        except ValueError as error:
            parser.error(str(error))
        return 0
    try:
        run_dir = run_pipeline(pipeline, args.profile, args.only, args.start, parse_overrides(args.set), args.run_dir, args.data)
    except StepFailed as failure:
        print(f"pipeline failed: {failure}", file=sys.stderr)
        return 1
    print(f"run complete: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
