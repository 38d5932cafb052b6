"""Measure the playback-speed curve of a recording from the recording itself (built-in engine).

A speed error moves every partial of every note by the same ratio at the same time; a note
change replaces partials instead of moving them. The engine therefore:

1. finds the strong spectral peaks of every 10 ms frame, with phase-vocoder frequencies
   (precise to a fraction of a cent for a clean partial);
2. links each peak to the nearest peak of the next frame (small pitch and level change, one
   successor per peak) into *partial tracks*; a note change simply ends tracks and starts
   new ones. The first and last frames of a track (a window straddling an onset or a
   release) are dropped, very long tracks are cut into overlapping pieces;
3. weights each track by the inverse of its own measurement noise: the RMS of its
   frame-to-frame pitch changes around the weighted median change of all partials in the
   same frames. Partials that move on their own (vibrato of one voice, a glide, a beat
   between two close partials) get little or no weight;
4. fits one common curve to all tracks, each with its own constant (:mod:`.fit`): a
   least-squares fit, not an integration, so there is no cumulative drift.

Tracks are dealt alternately into two halves fitted separately, which gives two independent
estimates of the same curve: their disagreement is the tracker's own noise floor, used by the
consumer to decide which parts of the curve are real. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_restorer.pitch.fit import CurveFit
from audio_restorer.pitch.framing import Framer
from audio_restorer.pitch.peaks import spectral_peaks

#: 1200 / ln 2: natural-log ratio to cents
CENTS = 1200.0 / np.log(2.0)
#: frames dropped at each end of a track (half the 70 ms window, at a 10 ms hop)
TRIM = 3
#: shortest usable track after trimming, frames
MIN_FRAMES = 8
#: longest track piece, frames; longer tracks are cut into pieces overlapping by half
MAX_FRAMES = 300
#: largest pitch change between consecutive frames of one partial, cents
MAX_STEP_CENTS = 25.0
#: largest level change between consecutive frames of one partial, dB
MAX_LEVEL_DB = 6.0
#: a track's frame-to-frame noise is taken as at least this (caps any one track's weight)
NOISE_FLOOR_CENTS = 0.3
#: tracks noisier than this (RMS of their own pitch steps around the common one) are dropped
REJECT_CENTS = 5.0


@dataclass(frozen=True)
class SpeedTrack:
    """Measured playback-speed deviation of a whole file.

    Attributes
    ----------
    hop_s : float
        Frame spacing in seconds; frame ``m`` is centred at ``m * hop_s``.
    curves : np.ndarray [shape=(2, frames)]
        Two independent estimates of the log-speed deviation in cents (mean 0 each), from
        disjoint halves of the data: their mean is the estimate, their half-difference a
        realisation of its measurement noise.
    window_s : float
        Length of the Hann analysis window whose smoothing of fast speed changes the consumer
        may undo (0: unknown, no compensation).
    """

    hop_s: float
    curves: np.ndarray
    window_s: float = 0.0

    @property
    def cents(self) -> np.ndarray:
        """The estimate (mean of the two), shape ``(frames,)``."""
        return self.curves.mean(axis=0)

    @property
    def noise(self) -> np.ndarray:
        """Half-difference of the two halves' estimates, shape ``(frames,)``."""
        return 0.5 * (self.curves[0] - self.curves[1])


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


def link_peaks(frame: np.ndarray, cents: np.ndarray, level_db: np.ndarray) -> np.ndarray:
    """Predecessor of every peak in the previous frame (index into the arrays, or -1).

    Peaks are sorted by frame. Each peak of frame ``m`` proposes the nearest peak (in pitch)
    of frame ``m + 1``; the proposal stands when the pitch step is under
    ``MAX_STEP_CENTS`` and the level step under ``MAX_LEVEL_DB``, and a peak accepts only the
    closest of several proposals.
    """
    n = frame.size
    parent = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return parent
    key = frame * 1.0e6 + cents  # cents < 1e5 for any audible frequency
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    target = key + 1.0e6  # same pitch, next frame
    pos = np.searchsorted(key_sorted, target)
    left = np.clip(pos - 1, 0, n - 1)
    right = np.clip(pos, 0, n - 1)
    pick = np.where(
        np.abs(key_sorted[right] - target) < np.abs(key_sorted[left] - target), right, left
    )
    child = order[pick]
    step = np.abs(cents[child] - cents)
    ok = (
        (frame[child] == frame + 1)
        & (step < MAX_STEP_CENTS)
        & (np.abs(level_db[child] - level_db) < MAX_LEVEL_DB)
    )
    src = np.nonzero(ok)[0]
    dst = child[src]
    by_closeness = np.lexsort((step[src], dst))
    src, dst = src[by_closeness], dst[by_closeness]
    first = np.ones(dst.size, dtype=bool)
    first[1:] = dst[1:] != dst[:-1]
    parent[dst[first]] = src[first]
    return parent


def roots(parent: np.ndarray) -> np.ndarray:
    """First peak of the chain each peak belongs to (pointer jumping, vectorised)."""
    root = np.where(parent >= 0, parent, np.arange(parent.size))
    while True:
        nxt = np.where(parent[root] >= 0, parent[root], root)
        if np.array_equal(nxt, root):
            return root
        root = nxt


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
        self.fit = CurveFit()
        self.frames_done = 0  # absolute index of the next frame
        self.next_id = 0
        # observations of the tracks still open: absolute frame, cents, level (dB), track id,
        # pitch step minus the common step (nan for a track's first frame)
        self.pool = {k: np.zeros(0) for k in ("frame", "cents", "db", "tid", "dev")}
        self.pool["frame"] = self.pool["frame"].astype(np.int64)
        self.pool["tid"] = self.pool["tid"].astype(np.int64)

    def _consume(self, frames: np.ndarray) -> None:
        if frames.shape[0] == 0:
            return
        peaks = spectral_peaks(frames, self.rate, lag=self.lag)
        f0 = self.frames_done
        self.frames_done += frames.shape[0]
        new_frame = peaks.frame + f0
        new_cents = CENTS * np.log(np.maximum(peaks.freq_hz, 1.0))
        new_db = 20.0 * np.log10(np.maximum(peaks.mag, 1e-12))
        # the previous frame's open peaks take part in the linking
        last = self.pool["frame"] == f0 - 1
        n_old = int(last.sum())
        frame = np.concatenate([self.pool["frame"][last], new_frame])
        cents = np.concatenate([self.pool["cents"][last], new_cents])
        db = np.concatenate([self.pool["db"][last], new_db])
        mag = 10.0 ** (db / 20.0)
        parent = link_peaks(frame, cents, db)
        root = roots(parent)
        tid = np.empty(frame.size, dtype=np.int64)
        tid[:n_old] = self.pool["tid"][last]
        fresh = root >= n_old
        is_root = fresh & (root == np.arange(frame.size))
        tid[is_root] = self.next_id + np.arange(int(is_root.sum()))
        self.next_id += int(is_root.sum())
        tid = tid[root]
        # pitch step of each linked peak relative to the magnitude-weighted median step
        linked = np.nonzero(parent >= 0)[0]
        step = cents[linked] - cents[parent[linked]]
        rel = frame[linked] - f0
        w = np.sqrt(mag[linked] * mag[parent[linked]])
        common = weighted_group_median(rel, step, w, frames.shape[0])
        dev = np.full(frame.size, np.nan)
        dev[linked] = step - common[rel]
        for key, arr in (
            ("frame", frame[n_old:]),
            ("cents", cents[n_old:]),
            ("db", db[n_old:]),
            ("tid", tid[n_old:]),
            ("dev", dev[n_old:]),
        ):
            self.pool[key] = np.concatenate([self.pool[key], arr])
        self._close(open_frame=self.frames_done - 1)

    def _close(self, open_frame: int | None) -> None:
        """Hand finished tracks (and the first part of over-long ones) to the fit."""
        p = self.pool
        tid = p["tid"]
        if tid.size == 0:
            return
        ids, inverse = np.unique(tid, return_inverse=True)
        last_frame = np.full(ids.size, -1, dtype=np.int64)
        np.maximum.at(last_frame, inverse, p["frame"])
        first_frame = np.full(ids.size, np.iinfo(np.int64).max)
        np.minimum.at(first_frame, inverse, p["frame"])
        done = np.ones(ids.size, dtype=bool) if open_frame is None else last_frame < open_frame
        too_long = ~done & (last_frame - first_frame + 1 >= MAX_FRAMES)
        finish = done[inverse] | too_long[inverse]
        self._finish(
            {k: v[finish] for k, v in p.items()},
        )
        keep = ~finish
        if np.any(too_long):
            # continue an over-long track as a new one from half its length on
            cut = first_frame + MAX_FRAMES // 2
            tail = too_long[inverse] & (p["frame"] >= cut[inverse])
            new_id = np.full(ids.size, -1, dtype=np.int64)
            new_id[too_long] = self.next_id + np.arange(int(too_long.sum()))
            self.next_id += int(too_long.sum())
            tid = np.where(tail, new_id[inverse], tid)
            keep = keep | tail
            dev = np.where(tail & (p["frame"] == cut[inverse]), np.nan, p["dev"])
            p = dict(p, tid=tid, dev=dev)
        self.pool = {k: v[keep] for k, v in p.items()}

    def _finish(self, obs: dict[str, np.ndarray]) -> None:
        """Trim, weigh and add complete tracks to the fit."""
        if obs["tid"].size == 0:
            return
        order = np.lexsort((obs["frame"], obs["tid"]))
        obs = {k: v[order] for k, v in obs.items()}
        ids, start, count = np.unique(obs["tid"], return_index=True, return_counts=True)
        group = np.repeat(np.arange(ids.size), count)
        pos = np.arange(group.size) - start[group]
        inner = (pos >= TRIM) & (pos < count[group] - TRIM)
        long_enough = (count - 2 * TRIM >= MIN_FRAMES)[group]
        sel = inner & long_enough
        if not np.any(sel):
            return
        _, g = np.unique(group[sel], return_inverse=True)
        k = int(g.max()) + 1
        dev = obs["dev"][sel]
        valid = np.isfinite(dev)
        n_dev = np.bincount(g[valid], minlength=k)
        ms = np.bincount(g[valid], weights=dev[valid] ** 2, minlength=k) / np.maximum(n_dev, 1)
        # a pitch step is the difference of two frames' errors: its noise is sqrt(2) x theirs
        noise2 = 0.5 * ms + NOISE_FLOOR_CENTS**2
        weight = np.where((n_dev > 0) & (ms < REJECT_CENTS**2), 1.0 / noise2, 0.0)
        tid_of = np.zeros(k, dtype=np.int64)
        tid_of[g] = obs["tid"][sel]
        half = (tid_of % 2).astype(np.int64)
        good = weight[g] > 0
        self.fit.add(g[good], obs["frame"][sel][good], obs["cents"][sel][good], weight, half)

    def push(self, block: np.ndarray) -> None:
        """Add mono samples, shape ``(n,)``."""
        self._consume(self.framer.push(block))

    def finish(self) -> SpeedTrack:
        self._consume(self.framer.finish())
        self._close(open_frame=None)
        curves = self.fit.solve(self.frames_done)
        return SpeedTrack(self.hop_s, curves, window_s=self.window_s)
