"""``python -m lib.data.synthetic --out DIR --train N --test M --seed S [--levers NAME ...] [--workers K] [--force]``"""

from __future__ import annotations

import argparse
import json
import sys

from lib.data.synthetic.generate import generate
from lib.data.synthetic.levers import LEVERS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.data.synthetic", description="Generate a synthetic 51-point face dataset in the PAIR layout.")
    parser.add_argument("--out", default="data/synthetic", help="output folder (default: data/synthetic)")
    parser.add_argument("--train", type=int, default=2000, help="training images, one face each")
    parser.add_argument("--test", type=int, default=200, help="test images, 1-3 faces each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levers", nargs="*", default=[], choices=LEVERS, help="renderer levers to switch on (lib.data.synthetic.levers)")
    parser.add_argument("--workers", type=int, default=1, help="processes (output is identical for any value)")
    parser.add_argument("--force", action="store_true", help="regenerate even if a complete dataset exists")
    args = parser.parse_args(argv)
    out = generate(args.out, args.train, args.test, args.seed, args.workers, args.force, args.levers)
    print(json.dumps({key: value for key, value in json.loads((out / "manifest.json").read_text()).items() if key != "files"}, indent=2))

    return 0


if __name__ == "__main__":
    sys.exit(main())
