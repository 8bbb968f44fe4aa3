"""Accuracy, jitter and lag of landmarks on a labelled clip.

Arrays are (T, N, 2) pixels, NaN on frames without a prediction. ``distances`` are each
frame's normalising distance in pixels (the scheme's, e.g. between the eye centroids).

- **NME per frame**: :func:`lib.metrics.nme` on every predicted frame.
- **Jitter** (normalised mean flicker): the frame-to-frame change of the error vector
  ``e_t = pred_t - truth_t``, ``|e_t - e_(t-1)| / d_t``, root mean square over landmarks and
  consecutive predicted frames. True motion cancels, so a prediction that follows the face
  exactly, or with a constant offset, has none; frame-to-frame noise of standard deviation
  ``s`` per coordinate gives ``2 s / d``.
- **Lag**: the time shift (frames, in steps of 0.1) that best aligns the prediction with the
  truth, ``argmin_k mean |pred_t - truth(t - k)|`` (the truth linearly interpolated between
  frames): 0 for an unfiltered tracker, about the delay a filter adds.
"""

from __future__ import annotations

import numpy as np

from lib.metrics import nme, normalising_distance
from lib.schemes import Scheme


def frame_nme(predicted: np.ndarray, truth: np.ndarray, scheme: Scheme) -> np.ndarray:
    """(T,) NME of each frame; NaN where nothing was predicted."""
    found = np.isfinite(predicted).all(axis=(1, 2))
    errors = np.full(len(truth), np.nan)
    if found.any():
        errors[found] = nme(predicted[found], truth[found], scheme)
    return errors


def jitter(predicted: np.ndarray, truth: np.ndarray, distances: np.ndarray) -> float:
    """Normalised mean flicker (a fraction of ``distances``); NaN with no two consecutive
    predicted frames."""
    change = np.diff(predicted - truth, axis=0)  # (T - 1, N, 2)
    lengths = np.linalg.norm(change, axis=-1) / distances[1:, None]
    valid = np.isfinite(lengths).all(axis=1)
    return float(np.sqrt(np.mean(lengths[valid] ** 2))) if valid.any() else float("nan")


def lag(predicted: np.ndarray, truth: np.ndarray, max_frames: float = 5.0, step: float = 0.1) -> float:
    """The shift in frames (positive: the prediction is late) that minimises the mean distance
    between the prediction and the shifted truth, over frames where both exist."""
    frames = np.arange(len(truth), dtype=np.float64)
    flat_truth = truth.reshape(len(truth), -1)
    found = np.isfinite(predicted).all(axis=(1, 2))
    shifts = np.arange(-max_frames, max_frames + step / 2, step)
    costs = []
    for shift in shifts:
        times = frames - shift
        inside = found & (times >= 0) & (times <= frames[-1])
        shifted = np.stack([np.interp(times[inside], frames, column) for column in flat_truth.T], axis=1).reshape(-1, *truth.shape[1:])
        costs.append(np.linalg.norm(predicted[inside] - shifted, axis=-1).mean() if inside.any() else np.inf)
    return float(shifts[int(np.argmin(costs))])


def clip_summary(predicted: np.ndarray, truth: np.ndarray, scheme: Scheme) -> dict:
    """Mean NME, share of frames without a prediction, jitter and lag of one clip."""
    errors = frame_nme(predicted, truth, scheme)
    distances = normalising_distance(truth, scheme)
    return {
        "nme": float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan"),
        "missed": float(np.isnan(errors).mean()),
        "jitter": jitter(predicted, truth, distances),
        "lag_frames": lag(predicted, truth),
    }
