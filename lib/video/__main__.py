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
import tempfile
from pathlib import Path

from lib.deploy.detector_files import CLOSE_UP_DETECTOR, DEFAULT_DETECTOR
from lib.deploy.run_model import NO_BOX_MAP, BadInput, LandmarkCalibration, LandmarkModel, PackageSettings, build_detector
from lib.inference.torch_model import TorchLandmarkModel
from lib.models.checkpoint import load_model
from lib.paths import resolve
from lib.progress import track
from lib.submission.package import open_package
from lib.video.benchmark import VideoSettings
from lib.video.filters import OneEuroSettings
from lib.video.frames import draw_points, open_frames, write_video
from lib.video.tracker import FaceTracker

DEFAULT_MIN_CONFIDENCE = 0.3  # without --video-settings; the video step measures the model's own
TRACKED, DETECTED = (0, 255, 0), (255, 140, 0)


def build_tracker(args: argparse.Namespace, work_dir: Path) -> FaceTracker:
    if args.package:
        pipeline = open_package(args.package, work_dir, args.threads)
        model, detector, calibration = pipeline.model, pipeline.detector, pipeline.calibration
    else:
        if not args.model:
            raise SystemExit("give --package or --model")
        model = TorchLandmarkModel(load_model(args.model)) if args.model.suffix == ".pt" else LandmarkModel(args.model, args.threads)
        settings = PackageSettings.read(args.settings) if args.settings else None
        calibration = settings.calibration if settings else LandmarkCalibration()
        layout = (settings.detector_tiles, settings.close_up_detector) if settings else (1, False)
        box_map = settings.close_up_box if settings else NO_BOX_MAP
        detector = build_detector(
            resolve(args.detector), resolve(args.close_up_detector), settings.min_score if settings else None, *layout, args.threads, box_map
        )
    video = VideoSettings.read(args.video_settings) if args.video_settings else VideoSettings(DEFAULT_MIN_CONFIDENCE, OneEuroSettings())
    return FaceTracker(model, detector, calibration, video.min_confidence, None if args.no_smoothing else video.smoothing)


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
    with tempfile.TemporaryDirectory() as work_dir:
        try:
            tracker = build_tracker(args, Path(work_dir))
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
