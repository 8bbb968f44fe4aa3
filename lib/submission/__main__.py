"""``python -m lib.submission {write,validate,score}``

write     --model M.pt|M.tflite --images DIR --data-root DIR --out submissions/<run-id> [--gt DIR] [--flip|--no-flip] [--detector-roll|--no-detector-roll] [--refine-passes N [--refine-beyond B]]
validate  SUBMISSION(.zip|folder) --images DIR       every problem, with file and line
score     SUBMISSION(.zip|folder) --gt DIR            NME, FR, AUC, missed and extra faces
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lib.deploy.detector_files import CLOSE_UP_DETECTOR, DEFAULT_DETECTOR
from lib.deploy.run_model import MAX_FACES, MIN_SCORE, BadInput
from lib.formats.errors import FormatError
from lib.formats.pair import list_test_images
from lib.schemes import load_scheme
from lib.submission.make import SubmissionSettings, make_submission
from lib.submission.score import read_ground_truth, score_submission
from lib.submission.validate import read_submission, validate_submission


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PAIR submission files: write, validate, score.")
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="predict the test images and write a submission folder")
    write.add_argument("--model", required=True, help="a .tflite file or a PyTorch checkpoint (.pt)")
    write.add_argument("--images", required=True, help="folder of test images")
    write.add_argument("--data-root", required=True, help="the labelled tree the model was trained on, any kind (its faces fit the detector-box rule)")
    write.add_argument("--out", required=True, help="submission folder, e.g. submissions/<run-id>")
    write.add_argument("--detector", default=DEFAULT_DETECTOR, help="the full-range BlazeFace file")
    write.add_argument("--close-up-detector", default=CLOSE_UP_DETECTOR, help="the short-range BlazeFace file (for close-ups)")
    write.add_argument("--min-score", type=float, default=None, help=f"detector score threshold (default: measured on --detector-set, else {MIN_SCORE})")
    write.add_argument(
        "--detector-tiles", type=int, default=None, help="1: the whole image; 2 or 3: a grid of tiles too (with --close-up/--no-close-up; default: measured)"
    )
    write.add_argument("--close-up", action=argparse.BooleanOptionalAction, default=None, help="run the short-range model beside the full-range one")
    write.add_argument(
        "--detector-set", default=None, help="images/ + gt/ in the test's layout, disjoint from it, with face-free images: the threshold is measured there"
    )
    write.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="horizontal-flip test-time augmentation: the mirrored crop too, averaged (default: measured with the passes on --detector-set, else off)",
    )
    write.add_argument(
        "--detector-roll",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="turn each face's first crop to level the eyes the detector found (default: measured with the passes on --detector-set, else off)",
    )
    write.add_argument("--max-faces", type=int, default=MAX_FACES, help="the most faces kept per image, the likeliest detections")
    write.add_argument(
        "--refine-passes",
        type=int,
        default=None,
        help="predict each face again from the crop around its own landmarks (default: measured on --detector-set, else 0)",
    )
    write.add_argument(
        "--refine-beyond",
        type=float,
        default=None,
        help="with --refine-passes: refine only the faces whose landmarks ask for a crop beyond this many crop sides from theirs (default: every face)",
    )
    write.add_argument(
        "--max-model-runs",
        type=float,
        default=None,
        help="choose only among (flip, detector roll, passes, bound) of at most this many network runs a face on average (default: no cap)",
    )
    write.add_argument("--level-eyes", action=argparse.BooleanOptionalAction, default=True, help="those crops turned to level the eyes")
    write.add_argument("--gt", default=None, help="ground-truth folder: also score the submission")
    validate = commands.add_parser("validate", help="check a submission zip or folder against the test images")
    validate.add_argument("submission", type=Path)
    validate.add_argument("--images", required=True, type=Path)
    score = commands.add_parser("score", help="score a submission against ground truth in the same format")
    score.add_argument("submission", type=Path)
    score.add_argument("--gt", required=True, type=Path)
    for command in (write, validate, score):
        command.add_argument("--scheme", default="ivslab51", help="the landmark scheme (decides the number of points)")
    args = parser.parse_args(argv)
    try:
        return run_command(parser, args)
    except (FormatError, BadInput) as error:  # bad input: it names the file
        print(f"lib.submission {args.command}: {error}", file=sys.stderr)
        return 2


def run_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """One subcommand; its exit status (0 fine, 1 its check failed)."""
    if args.command == "write":
        if (args.detector_tiles is None) != (args.close_up is None):
            parser.error("give --detector-tiles with --close-up or --no-close-up, or neither (both measured)")
        settings = SubmissionSettings(
            detector=args.detector,
            close_up_detector=args.close_up_detector,
            min_score=args.min_score,
            detector_layout=None if args.detector_tiles is None else (args.detector_tiles, args.close_up),
            flip=args.flip,
            detector_roll=args.detector_roll,
            refine_passes=args.refine_passes,
            refine_beyond=args.refine_beyond,
            max_faces=args.max_faces,
            level_eyes=args.level_eyes,
            max_model_runs=args.max_model_runs,
            scheme=args.scheme,
        )
        summary = make_submission(args.model, args.images, args.out, args.data_root, settings, args.detector_set, args.gt)
        print(json.dumps({k: v for k, v in summary.items() if k != "calibration"}, indent=2))
        return 1 if summary["problems"] else 0
    num_points = load_scheme(args.scheme).num_points
    if args.command == "validate":
        problems = validate_submission(args.submission, [p.stem for p in list_test_images(args.images)], num_points)
        for problem in problems:
            print(problem)
        print(f"{len(problems)} problem(s) in {args.submission}")
        return 1 if problems else 0
    summary, _ = score_submission(read_submission(args.submission, num_points), read_ground_truth(args.gt, num_points), load_scheme(args.scheme))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
