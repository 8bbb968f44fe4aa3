"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), per coordinate.

An exponential low-pass whose cutoff rises with speed: slow motion (jitter) is smoothed
strongly, fast motion passes with little lag. For a sample ``x_i`` at period ``T_e``::

    alpha(f_c) = 1 / (1 + tau / T_e),   tau = 1 / (2 pi f_c)
    dx_i       = (x_i - xhat_{i-1}) / T_e,   dxhat_i = alpha(d_cutoff) dx_i + (1 - alpha(d_cutoff)) dxhat_{i-1}
    f_c        = min_cutoff + beta |dxhat_i|
    xhat_i     = alpha(f_c) x_i + (1 - alpha(f_c)) xhat_{i-1}

with ``xhat_0 = x_0``, ``dxhat_0 = 0``. Landmarks move in pixels, whose scale depends on the
face's size, so the speed in the cutoff is divided by ``scale`` (the face size in pixels, as
MediaPipe's landmark smoothing does): ``beta`` is then in units of face sizes per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def smoothing_factor(cutoff_hz: np.ndarray | float, period_s: float) -> np.ndarray | float:
    """``alpha = 1 / (1 + tau / T_e)`` with ``tau = 1 / (2 pi cutoff)``."""
    return 1.0 / (1.0 + 1.0 / (2 * np.pi * np.asarray(cutoff_hz) * period_s))


@dataclass(frozen=True)
class OneEuroSettings:
    """``min_cutoff`` (Hz): the smoothing at rest (lower: smoother, more lag when slow);
    ``beta`` (1 / face size): how fast the cutoff rises with speed (higher: less lag when fast);
    ``d_cutoff`` (Hz): the smoothing of the speed estimate."""

    min_cutoff: float = 1.0
    beta: float = 0.5
    d_cutoff: float = 1.0


class OneEuroFilter:
    """Filters arrays of any fixed shape (e.g. (N, 2) landmarks), every element on its own."""

    def __init__(self, settings: OneEuroSettings = OneEuroSettings()):
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes unchanged (after a re-detection)."""
        self.previous: np.ndarray | None = None
        self.speed: np.ndarray | None = None
        self.time: float | None = None

    def __call__(self, value: np.ndarray, time_s: float, scale: float = 1.0) -> np.ndarray:
        """The filtered ``value`` at ``time_s`` (s, increasing); ``scale`` divides the speed."""
        value = np.asarray(value, dtype=np.float64)
        if self.previous is None:
            self.previous, self.speed, self.time = value.copy(), np.zeros_like(value), time_s
            return value.copy()
        period = time_s - self.time
        if period <= 0:
            raise ValueError(f"time must increase: {time_s} after {self.time}")
        speed = (value - self.previous) / period
        self.speed = self.speed + smoothing_factor(self.settings.d_cutoff, period) * (speed - self.speed)
        cutoff = self.settings.min_cutoff + self.settings.beta * np.abs(self.speed) / scale
        self.previous = self.previous + smoothing_factor(cutoff, period) * (value - self.previous)
        self.time = time_s
        return self.previous.copy()


def filter_sequence(
    values: np.ndarray, fps: float, settings: OneEuroSettings, scales: np.ndarray | None = None, resets: np.ndarray | None = None
) -> np.ndarray:
    """Filter a (T, ...) sequence sampled at ``fps``; ``scales`` (T,) divide the speed per frame,
    ``resets`` (T,) bool restart the filter at those frames. NaN frames (no face) pass through
    as NaN and restart the filter after them."""
    one_euro = OneEuroFilter(settings)
    out = np.full(np.shape(values), np.nan)
    for t, value in enumerate(values):
        if not np.isfinite(value).all():
            one_euro.reset()
            continue
        if resets is not None and resets[t]:
            one_euro.reset()
        out[t] = one_euro(value, t / fps, 1.0 if scales is None else float(scales[t]))
    return out
