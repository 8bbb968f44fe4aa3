"""``python -m lib.training --stage teacher|student [--config pipeline.yaml] [--profile P] [--set key=value ...] [--member key=value ... ...]``

Trains one stage with the profile's ``train`` settings; ``--set`` overrides any of them
(e.g. ``--set epochs=3 out_dir=runs/x/teacher``). Each ``--member`` adds a network trained
together with the others on one stream of batches, its settings over ``--set``'s (e.g.
``--member seed=1 out_dir=runs/x/s1 --member seed=2 out_dir=runs/x/s2``; they may differ only in
seed, out_dir, loss and init_from: :func:`lib.training.engine.train_together`). Under
``torchrun --nproc_per_node K`` the same command trains with DistributedDataParallel. An
interrupted run resumes from its ``last.pt``.
"""

from __future__ import annotations

import argparse
import json
import sys

from lib.cli import add_set_option, parse_overrides
from lib.training.config import STAGES, train_config
from lib.training.engine import train_together


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.training", description="Train the teacher or the distilled student.")
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--config", default="pipeline.yaml")
    parser.add_argument("--profile", default="default")
    add_set_option(parser, "training settings")
    parser.add_argument(
        "--member", nargs="+", action="append", default=[], metavar="KEY=VALUE", help="a network trained together with the others (its settings over --set)"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    shared = parse_overrides(args.set)
    members = [parse_overrides(items) for items in args.member] or [{}]
    cfgs = [train_config(args.stage, args.config, args.profile, {**shared, **member}) for member in members]
    results = train_together(cfgs, progress=not args.no_progress)
    print(json.dumps(results if args.member else results[0], indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
