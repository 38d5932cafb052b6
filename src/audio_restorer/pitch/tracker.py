"""Track the playback-speed ratio of a recording from the recording itself (built-in engine).

A speed error moves every partial of every note by the same ratio at the same time; a note
change replaces partials instead of moving them. So the engine follows the strong spectral
peaks from one 10 ms frame to the next, takes the log-frequency change of each peak that
continues (within a tolerance, with similar magnitude), and keeps the magnitude-weighted
median over peaks (refined by the weighted mean of the peaks that agree with it): the common
motion of all sounding partials. Integrating those per-frame changes gives the log-speed curve
up to a constant; peaks that start, stop or glide alone do not move the median. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_restorer.pitch.framing import Framer
from audio_restorer.pitch.peaks import Peaks, spectral_peaks


@dataclass(frozen=True)
class SpeedTrack:
    """Frame-to-frame log-speed changes of a whole file.

    Attributes
    ----------
    hop_s : float
        Frame spacing in seconds; frame ``m`` is centred at ``m * hop_s``.
    delta : np.ndarray [shape=(frames - 1,)]
        ``log(speed[m + 1] / speed[m])`` (natural log); 0 where nothing could be measured.
    weight : np.ndarray [shape=(frames - 1,)]
        Confidence of each change (0 = none), for diagnostics and smoothing.
    window_s : float
        Length of the Hann analysis window whose smoothing of fast speed changes the consumer
        may undo (0: unknown, no compensation).
    """

    hop_s: float
    delta: np.ndarray
    weight: np.ndarray
    window_s: float = 0.0

    @property
    def log_speed(self) -> np.ndarray:
        """Integrated log-speed at the frame centres, shape ``(frames,)``, starting at 0."""
        return np.concatenate([[0.0], np.cumsum(self.delta)])


def weighted_group_median(
    group: np.ndarray, value: np.ndarray, weight: np.ndarray, n_groups: int
) -> np.ndarray:
    """Weighted median of ``value`` within each group (``nan`` for empty groups)."""
    out = np.full(n_groups, np.nan)
    if group.size == 0:
        return out
    order = np.lexsort((value, group))
    g, v, w = group[order], value[order], weight[order]
    cum = np.cumsum(w)
    starts = np.searchsorted(g, np.arange(n_groups), side="left")
    ends = np.searchsorted(g, np.arange(n_groups), side="right")
    present = ends > starts
    base = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    total = cum[np.maximum(ends - 1, 0)] - base
    half = base + 0.5 * total
    idx = np.searchsorted(cum, half, side="left")
    idx = np.clip(idx, starts, np.maximum(ends - 1, starts))
    out[present] = v[idx[present]]
    return out


def match_changes(
    prev: Peaks,
    cur: Peaks,
    n_frames: int,
    *,
    max_change: float = 0.02,
    max_level_db: float = 6.0,
    agree: float = 0.003,
    min_share: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Common log-frequency change from frame ``m`` to ``m + 1`` for ``m < n_frames``.

    ``prev`` holds the peaks of frames ``0..n_frames-1`` and ``cur`` those of frames
    ``1..n_frames`` (re-indexed so that ``cur.frame == m`` means frame ``m + 1``). Returns
    ``(delta, weight)`` of shape ``(n_frames,)``.
    """
    delta = np.zeros(n_frames)
    weight = np.zeros(n_frames)
    if prev.frame.size == 0 or cur.frame.size == 0:
        return delta, weight
    # one sorted key per peak: frame number plus log2 frequency (< 64)
    key_cur = cur.frame * 64.0 + np.log2(np.maximum(cur.freq_hz, 1.0))
    key_prev = prev.frame * 64.0 + np.log2(np.maximum(prev.freq_hz, 1.0))
    order = np.argsort(key_cur, kind="stable")
    key_sorted = key_cur[order]
    pos = np.searchsorted(key_sorted, key_prev)
    left = np.clip(pos - 1, 0, key_sorted.size - 1)
    right = np.clip(pos, 0, key_sorted.size - 1)
    pick = np.where(
        np.abs(key_sorted[right] - key_prev) < np.abs(key_sorted[left] - key_prev), right, left
    )
    j = order[pick]
    change = (key_cur[j] - key_prev) * np.log(2.0)  # natural-log frequency ratio
    level = 20.0 * np.log10(np.maximum(cur.mag[j], 1e-12) / np.maximum(prev.mag, 1e-12))
    ok = (
        (cur.frame[j] == prev.frame)
        & (np.abs(change) < max_change)
        & (np.abs(level) < max_level_db)
        & (prev.freq_hz > 0)
    )
    frame = prev.frame[ok]
    change = change[ok]
    w = np.sqrt(prev.mag[ok] * cur.mag[j][ok])
    med = weighted_group_median(frame, change, w, n_frames)
    inlier = np.abs(change - med[frame]) < agree
    wi = np.where(inlier, w, 0.0)
    wsum = np.bincount(frame, weights=wi, minlength=n_frames)
    csum = np.bincount(frame, weights=wi * change, minlength=n_frames)
    count = np.bincount(frame, weights=inlier.astype(float), minlength=n_frames)
    # share of the peaks' weight (both frames) that moves together: low at note changes,
    # where a window straddling two notes biases every frequency it measures
    w_prev = np.bincount(prev.frame, weights=prev.mag, minlength=n_frames)[:n_frames]
    w_cur = np.bincount(cur.frame, weights=cur.mag, minlength=n_frames)[:n_frames]
    share = wsum / np.maximum(np.sqrt(w_prev * w_cur), 1e-12)
    good = (wsum > 0) & (count >= 2) & (share >= min_share)
    delta[good] = csum[good] / wsum[good]
    weight[good] = share[good]
    return delta, weight


def fill_gaps(
    delta: np.ndarray, weight: np.ndarray, *, guard: int = 3, spread: float = 8.0
) -> tuple[np.ndarray, np.ndarray]:
    """Replace unmeasured changes by a smooth estimate from the measured ones around them.

    Frames with ``weight == 0`` (note changes), widened by ``guard`` frames each side where
    windows still straddle the change, get the Gaussian-weighted mean (``spread`` frames) of
    the measured changes nearby: a speed error changes smoothly, so its slope across a short
    gap is predicted by its neighbourhood, while leaning on the few frames next to the gap
    would import their onset bias.
    """
    bad = weight <= 0
    if guard and bad.any():
        kernel = np.ones(2 * guard + 1)
        bad = np.convolve(bad.astype(float), kernel, mode="same") > 0
    good = (~bad).astype(float)
    if not good.any():
        return np.zeros_like(delta), np.zeros_like(weight)
    half = int(3 * spread)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / spread) ** 2)
    num = np.convolve(delta * good, kernel, mode="same")
    den = np.convolve(good, kernel, mode="same")
    smooth = np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)
    filled = np.where(good > 0, delta, smooth)
    return filled, np.where(good > 0, weight, 0.0)


class PeakSpeedTracker:
    """Built-in speed tracker: push mono blocks, then :meth:`finish` for the :class:`SpeedTrack`.

    Parameters
    ----------
    rate : int
        Sample rate in Hz.
    hop_s : float
        Frame spacing in seconds (10 ms resolves flutter up to 40 Hz).
    window_s : float
        Analysis window; longer resolves closer partials, shorter follows faster flutter.
    """

    def __init__(self, rate: int, *, hop_s: float = 0.01, window_s: float = 0.07) -> None:
        self.rate = rate
        self.hop = max(1, round(hop_s * rate))
        self.hop_s = self.hop / rate
        length = max(64, round(window_s * rate))
        self.window_s = length / rate
        self.lag = self.hop
        self.framer = Framer(length + self.lag, self.hop, (length + self.lag) // 2)
        self.last: Peaks | None = None
        self.deltas: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []

    def _consume(self, frames: np.ndarray) -> None:
        if frames.shape[0] == 0:
            return
        peaks = spectral_peaks(frames, self.rate, lag=self.lag)
        if self.last is not None:
            # prepend the previous batch's last frame as frame -1 -> index 0
            prev = Peaks(
                np.concatenate([np.zeros(self.last.frame.size, np.int64), peaks.frame + 1]),
                np.concatenate([self.last.freq_hz, peaks.freq_hz]),
                np.concatenate([self.last.mag, peaks.mag]),
            )
            n = frames.shape[0]
        else:
            prev = peaks
            n = frames.shape[0] - 1
        # frames 0..n-1 of `prev` are matched with frames 1..n
        src = prev.select(prev.frame < n)
        dst = prev.select(prev.frame >= 1)
        dst = Peaks(dst.frame - 1, dst.freq_hz, dst.mag)
        if n > 0:
            d, w = match_changes(src, dst, n)
            self.deltas.append(d)
            self.weights.append(w)
        last = frames.shape[0] - 1
        self.last = peaks.select(peaks.frame == last)

    def push(self, block: np.ndarray) -> None:
        """Add mono samples, shape ``(n,)``."""
        self._consume(self.framer.push(block))

    def finish(self) -> SpeedTrack:
        self._consume(self.framer.finish())
        if self.deltas:
            delta = np.concatenate(self.deltas)
            weight = np.concatenate(self.weights)
        else:
            delta = weight = np.zeros(0)
        return SpeedTrack(self.hop_s, *fill_gaps(delta, weight), window_s=self.window_s)
