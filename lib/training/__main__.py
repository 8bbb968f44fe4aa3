"""``python -m lib.training --stage teacher|student [--config pipeline.yaml] [--profile P] [--set key=value ...]``

Trains one stage with the profile's ``train`` settings; ``--set`` overrides any of them
(e.g. ``--set epochs=3 out_dir=runs/x/teacher``). Under ``torchrun --nproc_per_node K`` the same
command trains with DistributedDataParallel. An interrupted run resumes from its ``last.pt``.
"""

from __future__ import annotations

import argparse
import json
import sys

from lib.cli import add_set_option, parse_overrides
from lib.training.config import STAGES, train_config
from lib.training.engine import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.training", description="Train the teacher or the distilled student.")
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--config", default="pipeline.yaml")
    parser.add_argument("--profile", default="default")
    add_set_option(parser, "training settings")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cfg = train_config(args.stage, args.config, args.profile, parse_overrides(args.set))
    results = train(cfg, progress=not args.no_progress)
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
