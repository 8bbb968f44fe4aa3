"""Video: the One Euro filter against its equations, jitter and lag on known signals, the
tracker's re-detection logic, the labelled clips, and the frame reader and writer."""

import cv2
import numpy as np
import pandas as pd
import pytest

from lib.data.synthetic.face_model import template_2d
from lib.data.synthetic.video import BLINK_FRAMES, blinks, fast_turn, generate_clips, read_clips, smooth_signal
from lib.deploy.run_model import LandmarkCalibration, Pipeline, landmark_crop
from lib.schemes import load_scheme
from lib.video.benchmark import MODES, TrackedClip, choose_min_confidence, smoothed, video_targets
from lib.video.filters import OneEuroFilter, OneEuroSettings, filter_sequence, smoothing_factor
from lib.video.frames import draw_points, open_frames, write_video
from lib.video.tracker import FaceTracker, face_size
from lib.video.tracking_metrics import clip_summary, jitter, lag

FPS = 30.0


def test_one_euro_without_beta_is_the_exponential_smoother_of_its_equations():
    """beta = 0: a fixed alpha = 1 / (1 + tau / T), tau = 1 / (2 pi f); a unit step reaches
    1 - (1 - alpha)^n after n samples, and a ramp of slope v settles v T (1 - alpha) / alpha behind."""
    settings = OneEuroSettings(min_cutoff=2.0, beta=0.0)
    alpha = 1 / (1 + (1 / (2 * np.pi * 2.0)) / (1 / FPS))
    assert smoothing_factor(2.0, 1 / FPS) == pytest.approx(alpha)
    one_euro = OneEuroFilter(settings)
    assert one_euro(np.zeros(3), 0.0) == pytest.approx(np.zeros(3))
    for n in range(1, 8):
        assert one_euro(np.ones(3), n / FPS) == pytest.approx(np.full(3, 1 - (1 - alpha) ** n))
    ramp = OneEuroFilter(settings)
    speed = 12.0  # units per second
    for n in range(300):
        out = ramp(np.array([speed * n / FPS]), n / FPS)
    assert speed * 299 / FPS - out[0] == pytest.approx(speed / FPS * (1 - alpha) / alpha, rel=1e-6)


def test_one_euro_speed_raises_the_cutoff_and_a_reset_passes_the_next_sample():
    slow, fast = OneEuroFilter(OneEuroSettings(1.0, 0.0)), OneEuroFilter(OneEuroSettings(1.0, 2.0))
    for n in range(60):
        value = np.array([5.0 * n / FPS])
        behind_slow, behind_fast = value - slow(value, n / FPS), value - fast(value, n / FPS)
    assert 0 < behind_fast[0] < 0.5 * behind_slow[0]
    # the speed is divided by the scale: twice the scale, the cutoff rises half as much
    scaled = OneEuroFilter(OneEuroSettings(1.0, 2.0))
    for n in range(60):
        scaled_out = scaled(np.array([10.0 * n / FPS]), n / FPS, scale=2.0)
    assert scaled_out[0] == pytest.approx(2 * (5.0 * 59 / FPS - behind_fast[0]))
    fast.reset()
    assert fast(np.array([42.0]), 10.0) == pytest.approx([42.0])
    with pytest.raises(ValueError, match="time must increase"):
        fast(np.array([1.0]), 10.0)


def test_filter_sequence_matches_the_online_filter_and_restarts_after_a_gap():
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(0, 1, (20, 4, 2)), axis=0)
    values[8] = np.nan
    settings = OneEuroSettings(1.5, 0.7)
    scales = rng.uniform(20, 40, 20)
    resets = np.zeros(20, bool)
    resets[14] = True
    out = filter_sequence(values, FPS, settings, scales, resets)
    online = OneEuroFilter(settings)
    for t in range(20):
        if t == 8:
            assert np.isnan(out[t]).all()
            online.reset()
            continue
        if t == 14:
            online.reset()
        expected = online(values[t], t / FPS, scales[t])
        assert out[t] == pytest.approx(expected)
    assert out[9] == pytest.approx(values[9])
    assert out[14] == pytest.approx(values[14])


def moving_face(frames: int = 60) -> np.ndarray:
    """(T, 51, 2) the synthetic faces' neutral template, 50 px between the eye centres (the
    template's unit), moving on a smooth path."""
    base = template_2d()[load_scheme("ivslab51").from_ibug68] * 50.0
    times = np.arange(frames) / FPS
    path = np.stack([200 + 60 * np.sin(2 * np.pi * 0.5 * times), 150 + 40 * np.cos(2 * np.pi * 0.3 * times)], axis=1)
    return base[None] + path[:, None]


def test_jitter_of_frame_noise_is_two_sigma_over_the_distance_and_ignores_offsets():
    truth = moving_face(400)
    rng = np.random.default_rng(2)
    distances = np.full(len(truth), 50.0)
    noisy = truth + rng.normal(0, 1.5, truth.shape)
    assert jitter(noisy, truth, distances) == pytest.approx(2 * 1.5 / 50, rel=0.03)
    assert jitter(truth + [3.0, -2.0], truth, distances) == pytest.approx(0.0, abs=1e-12)
    noisy[10:12] = np.nan  # frames without a face drop out of the pairs they are in
    assert jitter(noisy, truth, distances) == pytest.approx(2 * 1.5 / 50, rel=0.03)


def test_lag_finds_a_known_delay_and_none_in_the_truth():
    truth = moving_face(120)
    delayed = np.concatenate([np.repeat(truth[:1], 3, axis=0), truth[:-3]])
    assert lag(delayed, truth) == pytest.approx(3.0)
    assert lag(truth, truth) == pytest.approx(0.0)
    summary = clip_summary(delayed, truth, load_scheme("ivslab51"))
    assert summary["lag_frames"] == pytest.approx(3.0)
    assert summary["missed"] == 0


def test_the_confidence_threshold_minimises_both_errors_by_hand():
    held, lost = np.array([0.8, 0.9, 0.7]), np.array([0.1, 0.2, 0.75])
    assert choose_min_confidence(held, lost) == pytest.approx(0.45)  # one lost crop passes; 0.775 ties, the lower wins
    assert choose_min_confidence(np.array([0.9]), np.array([0.1])) == pytest.approx(0.5)


class OracleModel:
    """A stand-in landmark model that knows the truth of the current frame: a crop that holds
    the face centre in its middle half gives the truth at confidence 0.9, any other crop random
    points at 0.05."""

    def __init__(self, truth: np.ndarray):
        self.truth, self.frame, self.calls = truth, 0, 0

    def face_landmarks(self, image, centre, scale, rotation=0.0):
        self.calls += 1
        face = self.truth[self.frame]
        if np.abs(face.mean(axis=0) - centre).max() < 50.0 * scale:
            return face.copy(), 0.9
        return np.random.default_rng(self.calls).uniform(0, 400, face.shape), 0.05


class OracleDetector:
    def __init__(self, truth: np.ndarray, model: OracleModel):
        self.truth, self.model, self.calls = truth, model, 0

    def __call__(self, image):
        self.calls += 1
        face = self.truth[self.model.frame]
        return np.concatenate([face.min(axis=0), face.max(axis=0)])[None], np.array([0.9])


def track_oracle(tracker: FaceTracker, model: OracleModel, frames: int) -> list:
    """The tracker's result on each of ``frames`` frames of the oracle's truth."""
    results = []
    for t in range(frames):
        model.frame = t
        results.append(tracker(np.zeros((4, 4, 3), np.uint8), t / FPS))
    return results


def test_the_tracker_detects_once_tracks_and_redetects_after_a_cut():
    truth = moving_face(30)
    truth[15:] += [250.0, 120.0]  # a cut: the face jumps far outside the last crop
    model = OracleModel(truth)
    detector = OracleDetector(truth, model)
    tracker = FaceTracker(Pipeline(model, detector, LandmarkCalibration((0.0, 0.0), 1.4)), min_confidence=0.5, smoothing=OneEuroSettings(1.0, 0.5))
    frames = track_oracle(tracker, model, len(truth))
    assert all(frame.raw == pytest.approx(face) for frame, face in zip(frames, truth, strict=True))  # every frame found the face
    assert [t for t, frame in enumerate(frames) if frame.detected] == [0, 15]
    assert detector.calls == 2
    assert frames[15].points == pytest.approx(truth[15])  # the filter restarted at the re-detection
    assert not np.allclose(frames[5].points, truth[5])  # and smooths between detections
    every = FaceTracker(Pipeline(model, detector, LandmarkCalibration()), 0.5, detect_every_frame=True)
    model.frame = 3
    assert every(np.zeros((4, 4, 3), np.uint8), 0.0).detected
    assert every(np.zeros((4, 4, 3), np.uint8), 0.1).detected


def test_offline_smoothing_of_a_track_equals_the_online_tracker():
    truth = moving_face(25)
    noisy = truth + np.random.default_rng(3).normal(0, 1.0, truth.shape)
    model = OracleModel(noisy)
    settings = OneEuroSettings(0.8, 1.5)
    tracker = FaceTracker(Pipeline(model, OracleDetector(noisy, model), LandmarkCalibration()), 0.5, smoothing=settings)
    frames = track_oracle(tracker, model, len(noisy))
    online = np.array([frame.points for frame in frames])
    tracked = TrackedClip(online, noisy, np.ones(len(noisy)), np.array([frame.detected for frame in frames]), np.zeros(len(noisy)))
    assert smoothed(tracked, FPS, settings) == pytest.approx(online)


def test_crop_and_face_size_follow_the_training_rule():
    points = np.array([[10.0, 20.0], [110.0, 70.0]])
    centre, scale = landmark_crop(points)
    assert centre == pytest.approx([60.0, 45.0])
    assert scale * 200 == pytest.approx(1.4 * 100)
    assert face_size(points) == 100.0


def test_clip_motion_parts():
    rng = np.random.default_rng(0)
    times = np.arange(300) / FPS
    signal = smooth_signal(rng, times, 10.0)
    assert np.abs(signal).max() <= 10.0 + 1e-9
    assert np.abs(np.diff(signal)).max() < 10 * 2 * np.pi * 0.6 / FPS + 1e-9
    closure = blinks(rng, 300, FPS)
    starts = np.flatnonzero(np.diff((closure > 0).astype(int)) == 1) + 1
    assert len(starts) >= 2
    assert all((closure[s : s + BLINK_FRAMES - 2] > 0).all() for s in starts)
    turn = fast_turn(rng, 300, FPS)
    assert 30 <= abs(turn[-1]) <= 50
    assert turn[0] == 0
    assert np.all(np.diff(turn) * np.sign(turn[-1]) >= 0)  # one monotonic sweep
    assert (np.abs(np.diff(turn)) > 0).sum() <= 0.3 * FPS + 1


@pytest.fixture(scope="module")
def clips_root(tmp_path_factory):
    return generate_clips(tmp_path_factory.mktemp("video") / "clips", tune=1, test=1, frames=8)


def test_generated_clips_are_labelled_smooth_and_reproducible(clips_root, tmp_path):
    tune_set, test_set = read_clips(clips_root, "tune"), read_clips(clips_root, "test")
    assert [c.name for c in tune_set] == ["tune_00"]
    assert [c.name for c in test_set] == ["test_00"]
    clip = test_set[0]
    assert len(clip.frames) == 8
    assert clip.points.shape == (8, 51, 2)
    assert clip.fps == FPS
    image = cv2.imread(str(clip.frames[0]))
    assert image.shape == (480, 640, 3)
    assert (clip.points >= 0).all()
    assert (clip.points[..., 0] < 640).all()
    assert (clip.points[..., 1] < 480).all()
    size = face_size(clip.points[0])
    assert np.linalg.norm(np.diff(clip.points, axis=0), axis=-1).max() < 0.5 * size  # no jump between frames
    again = generate_clips(tmp_path / "again", tune=1, test=1, frames=8)
    assert (again / "test_00" / "labels" / "frame_0005.pts").read_text() == (clips_root / "test_00" / "labels" / "frame_0005.pts").read_text()
    assert (again / "test_00" / "frames" / "frame_0005.jpg").read_bytes() == (clips_root / "test_00" / "frames" / "frame_0005.jpg").read_bytes()
    with pytest.raises(FileNotFoundError, match="no generated clip set"):
        read_clips(tmp_path, "test")


def test_frames_round_trip_through_an_mp4_and_a_failed_write_leaves_nothing(clips_root, tmp_path):
    frames, fps = open_frames(clips_root / "test_00" / "frames")
    frames = list(frames)
    assert fps == 30.0
    assert len(frames) == 8
    marked = [draw_points(f, np.array([[100.0, 100.0]]), (255, 0, 0), radius=6) for f in frames]
    assert (marked[0][100, 100] == [255, 0, 0]).all()
    assert (frames[0] != marked[0]).any()
    out = tmp_path / "clip.mp4"
    assert write_video(marked, out, fps) == 8
    read_back, read_fps = open_frames(out)
    read_back = list(read_back)
    assert len(read_back) == 8
    assert read_fps == pytest.approx(30.0)
    assert np.abs(read_back[3].astype(float) - marked[3]).mean() < 12  # lossy, same picture

    def broken():
        yield frames[0]
        raise RuntimeError("camera unplugged")

    with pytest.raises(RuntimeError, match="camera unplugged"):
        write_video(broken(), tmp_path / "broken.mp4", fps)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    with pytest.raises(FileNotFoundError, match="no such video file"):
        open_frames(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        open_frames(tmp_path / "empty")


def test_the_video_targets_compare_the_filtered_track_with_the_detector_on_every_frame():
    def summary(jitter_ratio, nme_filtered, lag, tracking_ms):
        return pd.DataFrame(
            {
                "mode": list(MODES),
                "nme": [0.050, 0.051, nme_filtered],
                "jitter_vs_detector": [1.0, 0.9, jitter_ratio],
                "lag_frames": [0.0, 0.2, lag],
                "ms_vs_detector": [1.0, tracking_ms, tracking_ms],
            }
        )

    met = video_targets(summary(0.4, 0.0515, 0.8, 0.3))
    assert met == {"jitter_ratio": 0.4, "nme_change_points": pytest.approx(0.15), "lag_frames": 0.8, "tracking_ms_ratio": 0.3, "met": True}
    assert not video_targets(summary(0.6, 0.0515, 0.8, 0.3))["met"]  # jitter above half the detector's
    assert not video_targets(summary(0.4, 0.0525, 0.8, 0.3))["met"]  # 0.25 points worse than the detector
    assert not video_targets(summary(0.4, 0.0515, 1.5, 0.3))["met"]  # a frame and a half behind
    assert not video_targets(summary(0.4, 0.0515, 0.8, 1.2))["met"]  # tracking slower than detecting
    without_filter = video_targets(summary(0.4, 0.0515, 0.8, 0.3).iloc[:2])
    assert without_filter["jitter_ratio"] is None
    assert not without_filter["met"]
