"""``python -m lib.video --input clip.mp4|frames/|0 --out annotated.mp4`` with
``--package final_package.zip`` (its model, detector and crop rule) or ``--model best.tflite|best.pt``
(``--detector``, ``--settings`` for the rest), and ``--video-settings`` (the video step's
``video_settings.json``: the tracker's confidence threshold and the One Euro filter).

Tracks the likeliest face from frame to frame (re-detecting when it is lost), smooths its
landmarks, and writes every frame with them drawn (green: tracked, orange: just detected).
A camera index reads a webcam where one exists; stop with Ctrl-C, the frames so far are written.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from lib.deploy.detector_files import CLOSE_UP_DETECTOR, DEFAULT_DETECTOR
from lib.deploy.run_model import BadInput
from lib.inference.landmarker import load_landmarker
from lib.progress import track
from lib.video.benchmark import VideoSettings
from lib.video.filters import OneEuroSettings
from lib.video.frames import draw_points, open_frames, write_video
from lib.video.tracker import FaceTracker

DEFAULT_MIN_CONFIDENCE = 0.3  # without --video-settings; the video step measures the model's own
TRACKED, DETECTED = (0, 255, 0), (255, 140, 0)


def build_tracker(args: argparse.Namespace) -> FaceTracker:
    if not (args.package or args.model):
        raise SystemExit("give --package or --model")
    if args.package:
        landmarker = load_landmarker(args.package, threads=args.threads)
    else:
        landmarker = load_landmarker(args.model, args.settings, args.detector, args.close_up_detector, args.threads)
    video = VideoSettings.read(args.video_settings) if args.video_settings else VideoSettings(DEFAULT_MIN_CONFIDENCE, OneEuroSettings())
    return FaceTracker(landmarker, video.min_confidence, None if args.no_smoothing else video.smoothing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.video", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="a video file, a folder of frames, or a camera index")
    parser.add_argument("--out", required=True, type=Path, help="the annotated video (.mp4)")
    parser.add_argument("--package", type=Path, help="a final_package.zip: model, detector and crop rule")
    parser.add_argument("--model", type=Path, help="a landmark .tflite file or a .pt checkpoint (without --package)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="the full-range BlazeFace .tflite file (without --package)")
    parser.add_argument(
        "--close-up-detector", default=CLOSE_UP_DETECTOR, help="the short-range BlazeFace .tflite file, if --settings use it (without --package)"
    )
    parser.add_argument("--settings", type=Path, help="the package's settings.json: crop rule and detector threshold (without --package)")
    parser.add_argument("--video-settings", type=Path, help="video_settings.json of the video step: confidence threshold and filter")
    parser.add_argument("--no-smoothing", action="store_true", help="draw the tracker's raw landmarks")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        tracker = build_tracker(args)
    except BadInput as error:  # a package, model or settings file that cannot be used: it names it
        print(f"lib.video: {error}", file=sys.stderr)
        return 2
    frames, fps = open_frames(args.input)
    frames = itertools.islice(frames, args.max_frames) if args.max_frames else frames

    def annotated():
        try:
            for t, frame in enumerate(track(frames, desc="frames")):
                result = tracker(frame, t / fps)
                yield draw_points(frame, result.points, DETECTED if result.detected else TRACKED)
        except KeyboardInterrupt:
            return

    count = write_video(annotated(), args.out, fps)
    print(f"wrote {count} frames to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
