"""Loudness normalisation (ITU-R BS.1770-4 / EBU R128) and a look-ahead true-peak limiter.

An access copy must meet a loudness norm (-16 LUFS for streaming/access, -23 LUFS for
broadcast) without overs. ``loudness`` measures the whole input first (the lead's streaming
:class:`~audio_restorer.analysis.LoudnessMeter`, identical to pyloudnorm) and applies one gain, or
in adaptive mode a slowly varying gain that follows the 3 s short-term loudness within a bounded
range around that gain. ``limiter`` then keeps the 4× oversampled (true) peak under a ceiling:
the gain needed at every sample is computed from the interpolated signal, held over the
interpolation filter's span, looked ahead and ramped so it is already down when the peak
arrives, then released at a fixed rate in dB. The look-ahead is compensated inside the stream,
so output frame n corresponds to input frame n and the total length is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from audio_restorer.analysis.loudness import LoudnessMeter, k_weighting_sos
from audio_restorer.analysis.truepeak import interpolation_filter
from audio_restorer.stages.base import Stage, Stream, empty
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

# ------------------------------------------------------------------------------------------------
# loudness


@dataclass(frozen=True)
class LoudnessParams(StageParams):
    target_lufs: float = param(
        -16.0,
        min=-40.0,
        max=-5.0,
        step=0.5,
        unit="LUFS",
        help="Integrated loudness target: -16 for access/streaming copies, -23 for broadcast.",
    )
    mode: str = param(
        "integrated",
        choices=("integrated", "adaptive"),
        help="'integrated': one gain for the file; 'adaptive': slow gain riding the 3 s loudness.",
    )
    max_gain_db: float = param(
        30.0,
        min=0.0,
        max=60.0,
        step=0.5,
        unit="dB",
        help="Largest boost applied (protects near-silent files).",
    )
    max_change_db: float = param(
        6.0,
        min=0.0,
        max=20.0,
        step=0.5,
        unit="dB",
        help="adaptive: largest deviation of the gain from the file's integrated gain.",
    )
    smoothing_s: float = param(
        10.0,
        min=1.0,
        max=60.0,
        step=0.5,
        unit="s",
        help="adaptive: length of the moving average applied to the gain curve.",
    )


@dataclass(frozen=True)
class LoudnessAnalysis:
    """What the analysis pass found: loudness, loudness range, and the gain curve."""

    integrated_lufs: float
    loudness_range_lu: float
    gain_db: float
    #: adaptive mode: gain (dB) at the centre of every 100 ms sub-block, else None
    curve_db: np.ndarray | None = None
    step: int = 0  # frames per curve point


class LoudnessAnalyzer:
    """Runs the BS.1770 meter and (adaptive mode) K-weighted 100 ms energies."""

    def __init__(self, stage: Loudness, rate: int, channels: int) -> None:
        self.stage = stage
        self.rate = rate
        self.meter = LoudnessMeter(rate, channels)
        self.adaptive = stage.params.mode == "adaptive"
        if self.adaptive:
            self.sos = k_weighting_sos(rate)
            self.zi = np.zeros((self.sos.shape[0], channels, 2))
            self.sub = rate // 10
            self.partial = np.zeros(0)
            self.sums: list[np.ndarray] = []
            self.frames = 0

    def update(self, block: np.ndarray) -> None:
        self.meter.update(block)
        if not self.adaptive or not block.shape[1]:
            return
        self.frames += block.shape[1]
        y, self.zi = signal.sosfilt(self.sos, block.astype(np.float64), axis=1, zi=self.zi)
        power = np.concatenate([self.partial, np.sum(y * y, axis=0)])
        full = power.size // self.sub * self.sub
        self.sums.append(power[:full].reshape(-1, self.sub).mean(axis=1))
        self.partial = power[full:]

    def result(self) -> LoudnessAnalysis:
        p = self.stage.params
        lufs = self.meter.integrated()
        lra = self.meter.loudness_range()
        gain = 0.0 if not math.isfinite(lufs) else min(p.target_lufs - lufs, p.max_gain_db)
        if not self.adaptive or not math.isfinite(lufs):
            return LoudnessAnalysis(lufs, lra, gain)
        energy = np.concatenate([*self.sums, [np.mean(self.partial)] if self.partial.size else []])
        curve = adaptive_curve(energy, gain, p, self.rate / self.sub)
        return LoudnessAnalysis(lufs, lra, gain, curve, self.sub)


def adaptive_curve(
    energy: np.ndarray, gain_db: float, p: LoudnessParams, points_per_s: float
) -> np.ndarray:
    """Gain curve (dB per 100 ms point) that rides the short-term loudness towards the target.

    The 3 s short-term loudness is compared with the target; the difference is limited to
    ``gain_db ± max_change_db``, quiet passages (more than 20 LU under the programme) keep the
    file gain, and the curve is smoothed with a ``smoothing_s`` moving average. A final offset
    makes the predicted integrated loudness of the result hit the target.
    """
    n = energy.size
    short = ndimage.uniform_filter1d(energy, size=30, mode="nearest")
    with np.errstate(divide="ignore"):
        st_lufs = -0.691 + 10.0 * np.log10(np.maximum(short, 1e-20))
    programme = p.target_lufs - gain_db
    want = np.clip(p.target_lufs - st_lufs, gain_db - p.max_change_db, gain_db + p.max_change_db)
    want = np.where(st_lufs < programme - 20.0, gain_db, want)
    size = max(1, round(p.smoothing_s * points_per_s))
    curve = ndimage.uniform_filter1d(want, size=size, mode="nearest") if n else want
    # correct the overall level: predict the gated loudness of the gained signal
    for _ in range(3):
        scaled = energy * 10.0 ** (curve / 10.0)
        predicted = _gated_lufs(scaled)
        if not math.isfinite(predicted):
            break
        curve = curve + (p.target_lufs - predicted)
    return np.minimum(curve, p.max_gain_db)


def _gated_lufs(energy: np.ndarray) -> float:
    """BS.1770 gated loudness from 100 ms mean-square energies (400 ms blocks, 75 % overlap)."""
    if energy.size < 4:
        return float("-inf")
    blocks = np.convolve(energy, np.ones(4) / 4, mode="valid")
    with np.errstate(divide="ignore"):
        lufs = -0.691 + 10.0 * np.log10(blocks)
    lufs = lufs[lufs > -70.0]
    if not lufs.size:
        return float("-inf")
    rel = 10.0 * np.log10(np.mean(10.0 ** (lufs / 10.0))) - 10.0
    lufs = lufs[lufs > rel]
    return float(-0.691 + 10.0 * np.log10(np.mean(10.0 ** ((lufs + 0.691) / 10.0))))


@register
class Loudness(Stage):
    name = "loudness"
    title = "Loudness normalise"
    summary = "Normalise integrated loudness (BS.1770 / EBU R128) to a target; reports LRA."
    Params = LoudnessParams

    def analyzer(self, rate: int, channels: int) -> LoudnessAnalyzer:
        return LoudnessAnalyzer(self, rate, channels)

    def findings(self, analysis: LoudnessAnalysis | None) -> dict[str, object]:
        if analysis is None:
            return {}
        lufs, lra = analysis.integrated_lufs, analysis.loudness_range_lu
        ok = bool(np.isfinite(lufs))
        if ok:
            spread = f", range {lra:.1f} LU" if np.isfinite(lra) else " (too short for a range)"
            measured = f"measured {lufs:.1f} LUFS{spread}; "
        else:
            measured = "no loudness measured (silent, or shorter than one 0.4 s block); "
        return {
            "integrated_lufs": round(float(lufs), 2) if ok else None,
            "loudness_range_lu": round(float(lra), 2) if np.isfinite(lra) else None,
            "gain_db": round(float(analysis.gain_db), 2),
            "summary": measured
            + (
                "gain follows the music"
                if analysis.curve_db is not None
                else f"gain {analysis.gain_db:+.2f} dB"
            ),
        }

    def process(
        self,
        audio: np.ndarray,
        rate: int,
        *,
        analysis: LoudnessAnalysis | None = None,
        offset: int = 0,
    ) -> np.ndarray:
        if analysis is None:
            analysis = self.analyze(audio, rate)
        if analysis.curve_db is None:
            factor = np.float32(10.0 ** (analysis.gain_db / 20.0))
            return (audio * factor).astype(np.float32)
        frames = np.arange(offset, offset + audio.shape[1])
        centres = (np.arange(analysis.curve_db.size) + 0.5) * analysis.step
        gain_db = np.interp(frames, centres, analysis.curve_db)
        return (audio * 10.0 ** (gain_db / 20.0)).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# limiter


@dataclass(frozen=True)
class LimiterParams(StageParams):
    ceiling_dbtp: float = param(
        -1.0,
        min=-20.0,
        max=0.0,
        step=0.1,
        unit="dBTP",
        help="Highest true peak (4x oversampled) allowed in the output.",
    )
    lookahead_ms: float = param(
        5.0,
        min=0.5,
        max=20.0,
        step=0.5,
        unit="ms",
        help="Look-ahead; the gain ramps down over this time before a peak (attack).",
    )
    release_ms: float = param(
        100.0,
        min=5.0,
        max=2000.0,
        step=5.0,
        unit="ms",
        help="Release: time for the gain to recover by 10 dB after a peak.",
    )


#: the peak is taken over the 4x points the BS.1770 meter reads (its own filter) and a finer 8x
#: grid whose filter reaches Nyquist (48 taps per phase), so the output also stays under the
#: ceiling, or very near it, when read with interpolators closer to ideal reconstruction
_FILTERS = {
    4: interpolation_filter(4),
    8: signal.firwin(8 * 48, 1.0 / 8, window=("kaiser", 8.0)) * 8,
}
_HALF = max(h.size // f for f, h in _FILTERS.items()) // 2  # filter half-span in frames (24)
#: internal head-room against the small interaction of gain changes with interpolation
SAFETY_DB = 0.02


def oversampled_peak(x: np.ndarray) -> np.ndarray:
    """Per frame k: the largest |x| over all channels of the interpolated signal in (k-1, k+1).

    Parameters
    ----------
    x : np.ndarray [shape=(channels, frames)]

    Returns
    -------
    np.ndarray [shape=(frames,)]
        The interpolated points use the same filter and positions as the true-peak meter; the
        first and last ``_HALF + 1`` frames are unreliable (missing neighbours) and are only used
        with margin by the caller.
    """
    frames = x.shape[1]
    per = np.max(np.abs(x), axis=0)
    for factor, h in _FILTERS.items():
        up = signal.upfirdn(h, x, up=factor, axis=1)
        delay = (h.size - 1) // 2  # up[delay + factor*k + j] is at time k + (j - 0.5) / factor
        up = np.abs(up[:, delay : delay + frames * factor])
        per = np.maximum(per, np.max(up, axis=0).reshape(frames, factor).max(axis=1))
    prev = np.concatenate([per[:1], per[:-1]])
    nxt = np.concatenate([per[1:], per[-1:]])
    return np.maximum(np.maximum(prev, per), nxt)


class LimiterStream:
    """Look-ahead true-peak limiter with internal delay compensation (zero net latency)."""

    def __init__(self, params: LimiterParams, rate: int, channels: int) -> None:
        self.channels = channels
        self.ceiling = 10.0 ** ((params.ceiling_dbtp - SAFETY_DB) / 20.0)
        self.L = max(1, round(params.lookahead_ms * 1e-3 * rate))
        self.W = _HALF + 1  # hold so the gain is flat over the interpolation span of a peak
        self.rho = 10.0 / max(1.0, params.release_ms * 1e-3 * rate)  # dB per frame
        self.back = self.W + _HALF + 2  # input history needed before the first output frame
        self.ahead = self.L + self.W + _HALF + 2  # input needed after the last output frame
        self.buf = np.zeros((channels, 0))  # input frames [self.buf_start, received)
        self.buf_start = 0
        self.received = 0
        # next gain frame; the L-1 virtual frames before the start feed the first attack ramp
        self.out = -(self.L - 1)
        self.r_prev = 0.0  # release state (dB) at frame out-1
        self.r_hist = np.zeros(0)  # linear gains r[out-L+1 .. out-1]

    def _emit(self, stop: int) -> np.ndarray:
        k0 = self.out
        if stop <= max(k0, 0):
            return empty(self.channels)
        L, W = self.L, self.W
        seg_start = k0 - self.back
        seg_stop = stop + self.ahead
        seg = np.zeros((self.channels, seg_stop - seg_start))
        lo = max(seg_start, self.buf_start)
        hi = min(seg_stop, self.received)
        seg[:, lo - seg_start : hi - seg_start] = self.buf[
            :, lo - self.buf_start : hi - self.buf_start
        ]
        pk = oversampled_peak(seg)
        with np.errstate(divide="ignore"):
            g_req = np.minimum(1.0, self.ceiling / np.maximum(pk, 1e-30))
        # q[j] = min g_req[j-W .. j+W] for j in [k0, stop + L - 1)
        q = ndimage.minimum_filter1d(g_req, size=2 * W + 1, mode="nearest")
        q = q[k0 - seg_start : stop + L - 1 - seg_start]
        # m[k] = min q[k .. k+L-1] (look-ahead), k in [k0, stop)
        m = _sliding_min(q, L)
        # release: r[k] = min(m[k], r[k-1] + rho), in dB, vectorised as a running minimum
        m_db = 20.0 * np.log10(m)
        idx = np.arange(1, m_db.size + 1)
        r_db = np.minimum(
            np.minimum.accumulate(m_db - self.rho * idx) + self.rho * idx,
            self.r_prev + self.rho * idx,
        )
        r_db = np.minimum(r_db, 0.0)
        self.r_prev = float(r_db[-1])
        r = 10.0 ** (r_db / 20.0)
        # attack ramp: mean of r over the last L frames (never above q at the peak)
        ext = np.concatenate([self.r_hist, r])
        csum = np.concatenate([[0.0], np.cumsum(ext)])
        gain = (csum[L:] - csum[:-L]) / L
        self.r_hist = ext[ext.size - (L - 1) :] if L > 1 else ext[:0]
        first = max(k0, 0)
        gain = gain[gain.size - (stop - first) :]
        x = seg[:, first - seg_start : stop - seg_start]
        self.out = stop
        keep = max(self.buf_start, stop - self.back)
        self.buf = self.buf[:, keep - self.buf_start :]
        self.buf_start = keep
        return (x * gain).astype(np.float32)

    def push(self, block: np.ndarray) -> np.ndarray:
        if not block.shape[1]:
            return empty(self.channels)
        self.buf = np.concatenate([self.buf, block.astype(np.float64)], axis=1)
        self.received += block.shape[1]
        return self._emit(self.received - self.ahead)

    def finish(self) -> np.ndarray:
        return self._emit(self.received)


def _sliding_min(a: np.ndarray, n: int) -> np.ndarray:
    """``out[k] = min(a[k : k+n])`` for every k with a full window (``a.size - n + 1`` values)."""
    # the centred filter's output i covers a[i - n//2 : i - n//2 + n]
    full = ndimage.minimum_filter1d(a, size=n, mode="nearest")
    shift = n // 2
    return full[shift : shift + a.size - n + 1]


@register
class Limiter(Stage):
    name = "limiter"
    title = "True-peak limiter"
    summary = "Look-ahead limiter keeping the 4x oversampled (true) peak under a ceiling."
    Params = LimiterParams

    def open(self, rate: int, channels: int, analysis: object = None) -> Stream:
        return LimiterStream(self.params, rate, channels)
