"""Click and crackle removal by autoregressive detection and least-squares AR interpolation.

Scratches and dust on 78s and LPs add short impulses (a sample to a few milliseconds) to the
music. The music is locally predictable by an autoregressive model; the impulses are not. So:

1. estimate an AR model per 20 ms frame (autocorrelation method, Levinson–Durbin);
2. compute the forward and the backward prediction errors and divide them by a robust local
   scale (median absolute deviation over ~6 ms segments, median-smoothed over ~50 ms): a fixed
   level would miss clicks in quiet passages and flag loud ones;
3. flag samples above a threshold set by ``sensitivity``, fuse nearby flags into bursts and
   keep a burst only if the forward error starts it and the backward error ends it, no wider
   than ``max_click_ms``: an impulse excites both errors on the damaged samples;
4. reject musical onsets and pitch pulses, which are as unpredictable as clicks: a burst is
   an onset if the music after it is more than 5 dB louder than before it (over 12 ms, and
   already over the first 6 ms: the rise must start at the burst), or
   if an AR model fitted on the 12 ms before it predicts the music after it more than 3x
   worse than its own samples (a new note, stroke or consonant brings components the old
   model does not know; a click leaves the music as it was); it is a pitch pulse (glottal
   closures of voiced speech) if comparable error peaks lie one period before and after it;
5. grow each kept burst over the whole click by hysteresis (a lower threshold; forward error
   backwards, backward error forwards) and bridge the middle of a wide click whose two edges
   were found as separate bursts: a click left partly in place pins the interpolation (the
   onset tests of step 4 look past the grown burst);
6. rebuild the flagged samples by least-squares AR interpolation (Janssen / LSAR), all bursts
   of a pass in a few batched solves;
7. repeat with the model re-estimated on the repaired signal and a wider fusion gap;
8. (declick with ``wide_bumps``; off by default, it costs ~40 % more time) a bump pass for
   wide smooth one-sided clicks, whose energy lies below ~2 kHz where an order-32 prediction
   error is nearly blind: a matched filter (GLRT) of a smooth bump against frame models of
   order up to 256 chosen by AIC (the partials of steady music notched out), in tonal frames
   only, with the same onset and pitch-pulse tests (:func:`_bump_pass`).

Stereo: each channel is detected and repaired on its own (a click in one groove wall is
repaired there only), and a click seen in both channels at once is accepted at a lower per-
channel level (joint detection). ``decrackle`` is the same engine tuned for dense, small
impulses: a lower threshold and a short maximum width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as sp_fft
from scipy.ndimage import maximum_filter1d

from audio_restorer.stages import _ar
from audio_restorer.stages import _declip_lsar as _hi
from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

#: power ratio after/before a cluster above which it is a musical onset, not a click (5 dB)
ONSET_RATIO = 10**0.5

#: hysteresis: a burst grows over neighbouring samples above this fraction of the threshold
LOW = 0.3

#: ... but never below 3 robust standard deviations, which music alone exceeds on ~0.3 % of
#: samples (a lower level would let every burst grow at random)
LOW_MIN = 3.0

#: a burst whose following 12 ms carry less than this fraction of its own mean power, times
#: ``ONSET_RATIO`` (-12 dB in all), is an impulse whatever came before it: a stroke or a note
#: is not 12 dB louder in its first millisecond than over the next twelve (measured: clean
#: mixes and the 52 single-instrument stems of the benchmark set, congas, claves and cowbell
#: among them, come out bit-identical up to -10 dB; at -5 dB the drum kit does not)
ONSET_FLOOR = 2e-2
#: typical prediction error after a burst / before it above which it is an onset (9.5 dB; a
#: model fitted on 12 ms predicts the next few ms of speech, which changes quickly, up to ~2x
#: worse than its own samples without any onset)
ONSET_ERROR = 3.0


#: per-channel level, relative to the threshold, of an impulse seen in all channels at once
JOINT = 0.8

#: bump pass: level of the matched-filter output, in its own robust standard deviations,
#: relative to the per-sample threshold (9 -> 7 at the default sensitivity). The matched
#: filter sums 8-88 samples, so its output is much closer to Gaussian than the per-sample
#: error; 7 sigma is a two-sided tail of 3e-12 per position and width for Gaussian output,
#: and measured 0.1-0.2 runs a second on clean tonal music after the onset tests.
BUMP_LEVEL = 7.0 / 9.0

#: bump pass: power ratio after/before above which a candidate is an onset (3 dB instead of
#: 5): the pass looks for bumps about as loud as the music, where a note's soft attack (a
#: smooth one-sided rise over a millisecond) matches the bump template as well as a bump does
BUMP_ONSET_RATIO = 10**0.3

#: bump pass: smallest bump amplitude kept, relative to the music's RMS level before it
BUMP_MIN_LEVEL = 0.25

#: bump pass: the frame models' longest order at 44.1 kHz (5.8 ms: ~128 partials), scaled
#: with the rate; the order is chosen per frame among 1/8, 1/4, 1/2 and all of it by AIC
BUMP_ORDER_S = 256 / 44100


@dataclass(frozen=True)
class _ImpulseParams(StageParams):
    sensitivity: float = param(
        0.5,
        min=0.0,
        max=1.0,
        step=0.05,
        help="Higher finds weaker clicks; each +0.25 lowers the detection threshold by 1.41x.",
    )
    max_click_ms: float = param(
        2.0, min=0.05, max=10.0, step=0.05, unit="ms", help="Widest impulse treated as a click."
    )
    passes: int = param(
        3, min=1, max=5, step=1, help="Detection passes, each with a wider fusion gap."
    )
    ar_order: int = param(
        32, min=8, max=64, step=1, help="Order of the autoregressive model of the music."
    )
    window_ms: float = param(
        40.0, min=10.0, max=100.0, step=1.0, unit="ms", help="AR analysis window length."
    )
    link_channels: bool = param(
        True, help="Detect clicks present in all channels jointly (at a lower level each)."
    )


@dataclass(frozen=True)
class DeclickParams(_ImpulseParams):
    # off by default: it costs ~40 % more time (declick then runs at ~20-25x real time instead
    # of ~40x, below ffmpeg's adeclick) for +0.6 dB median SI-SDR on the 21-clip harness
    wide_bumps: bool = param(
        False,
        help="Also search for wide smooth clicks (dust bumps, 0.2-1 ms) against high-order "
        "models of the music; slower.",
    )


@dataclass(frozen=True)
class DecrackleParams(_ImpulseParams):
    sensitivity: float = param(
        0.5,
        min=0.0,
        max=1.0,
        step=0.05,
        help="Higher finds weaker crackle; each +0.25 lowers the detection threshold by 1.41x.",
    )
    # crackle impulses last a few samples; at 0.5 ms two or three neighbouring impulses of
    # dense crackle were rebuilt as one run, and interpolating 15-22 samples of loud music with
    # a model estimated on crackled audio did more harm than the crackle (bench: SI-SDR
    # improvement +1.6 -> +4.4 dB median over 21 clips at 0.2 ms with the fixed fusion gap)
    max_click_ms: float = param(
        0.2, min=0.05, max=2.0, step=0.05, unit="ms", help="Widest impulse treated as crackle."
    )
    passes: int = param(2, min=1, max=5, step=1, help="Detection passes.")
    ar_order: int = param(
        24, min=8, max=64, step=1, help="Order of the autoregressive model of the music."
    )


@dataclass(frozen=True)
class _Geometry:
    """Sample counts derived from the parameters and the rate."""

    order: int
    hop: int
    win: int
    seg: int
    radius: int
    max_width: int
    guard: int
    gaps: tuple[int, ...]
    pitch: tuple[int, int]
    onset_fit: int
    third_pulse: bool = False
    #: bump pass (0 = off): frame hop of the high-order models, their top order, the widths
    bump_hop: int = 0
    bump_order: int = 0
    bump_widths: tuple[int, ...] = ()

    @property
    def max_unknown(self) -> int:
        return 2 * self.max_width + 2 * self.guard

    def context(self) -> int:
        p = self.order
        per_pass = (
            2 * self.win
            + 8 * p
            + (2 * self.pitch[1] + 8 if self.third_pulse else self.pitch[1])
            + self.onset_fit
            + (self.radius + 2) * self.seg
            + 2 * self.max_width
            + max(self.gaps)
            + 6 * p
            + int(_ar._bucket(np.array([self.max_unknown]))[0])
        )
        bump = 0
        if self.bump_hop:
            # model window (2 hops) and the cross-faded error (one more hop, 2 orders), the
            # robust scale of the filter output, the widest template, then the onset and
            # pitch-pulse tests around the detection and the LSAR segment of the repair
            bump = (
                3 * self.bump_hop
                + 4 * self.bump_order
                + (self.radius + 2) * self.seg
                + 2 * max(self.bump_widths)
                + self.onset_fit
                + 8 * p
                + self.pitch[1]
                + 3 * self.bump_order
                + int(_ar._bucket(np.array([self.max_unknown]))[0])
            )
        return len(self.gaps) * per_pass + bump


def geometry(params: _ImpulseParams, rate: int, *, dense: bool = False) -> _Geometry:
    """Sample counts for ``params`` at ``rate``.

    ``dense`` (crackle): the fusion gap stays at 0.1 ms in every pass instead of widening to
    ``max_click_ms`` (impulses ~2 ms apart must stay separate bursts, or they are rebuilt as
    one long run or rejected as too wide), and bursts get no guard sample on each side
    (a crackle impulse is localised exactly by where the forward error starts and the
    backward error ends; with hundreds of impulses a second, each needless unknown costs).
    """
    hop = max(64, round(params.window_ms * 1e-3 * rate / 2))
    max_width = max(1, round(params.max_click_ms * 1e-3 * rate))
    gap_min = max(2, round(1e-4 * rate))
    gap_max = gap_min if dense else max(gap_min, max_width)
    n = params.passes
    gaps = tuple(
        round(gap_min * (gap_max / gap_min) ** (i / (n - 1))) if n > 1 else gap_min
        for i in range(n)
    )
    return _Geometry(
        order=params.ar_order,
        hop=hop,
        win=2 * hop,
        seg=max(32, round(0.006 * rate)),
        radius=4,
        max_width=max_width,
        guard=0 if dense else max(1, round(rate / 44100)),
        gaps=gaps,
        pitch=(round(0.0025 * rate), round(0.0125 * rate)),
        onset_fit=max(4 * params.ar_order, round(0.012 * rate)),
        third_pulse=dense,
        **(
            _bump_geometry(rate, max_width)
            if getattr(params, "wide_bumps", False) and not dense
            else {}
        ),
    )


def _bump_geometry(rate: int, max_width: int) -> dict[str, Any]:
    """Sizes of the bump pass: 40 ms model hop (even, for the cross-fade), top order, widths.

    Widths from ~0.18 ms (8 samples at 44.1 kHz: narrower bumps excite the ordinary errors)
    to ``max_width`` in octaves: a template within a factor sqrt(2) of the bump's width keeps
    about 90 % of the matched-filter output (half-sine shapes), and each width costs a pass.
    """
    lo = max(4, round(8 * rate / 44100))
    if max_width < lo:
        return {}
    count = int(np.floor(np.log2(max_width / lo))) + 1
    widths = tuple(sorted({round(lo * 2.0**k) for k in range(count)}))
    return {
        "bump_hop": 2 * round(0.02 * rate),
        "bump_order": max(32, round(BUMP_ORDER_S * rate / 8.0) * 8),
        "bump_widths": widths,
    }


def _events(
    fwd: np.ndarray,
    bwd: np.ndarray,
    power: np.ndarray,
    signal: np.ndarray,
    zsum: np.ndarray,
    low_f: np.ndarray,
    low_b: np.ndarray,
    gap: int,
    geo: _Geometry,
) -> np.ndarray:
    """Mask of accepted bursts from forward/backward exceedance masks (one channel).

    Exceedances closer than ``gap`` form a cluster. Its click is ``[s, e]`` from the first
    forward to the last backward exceedance when those are in order (else the whole cluster,
    which must hold both kinds: a click edge excites both errors). It is accepted if no
    wider than ``max_width``, if the whole cluster is no longer than a click's footprint in
    the errors (``max_width + 2 * order``: longer unpredictable stretches are noisy
    transients such as a castanet's impact or a consonant), and if the signal power over
    ``onset_fit`` samples (12 ms, longer than a bass period, so the waveform's phase does not
    matter) one order after the grown burst is at most 5 dB above the power before it, or
    the (doubled) power over the first half of that window is: a click leaves the music after
    it as loud as before, a stroke or a note that starts *at the burst* makes it louder at
    once. Then the model-change (:func:`_onsets`) and pitch-pulse (:func:`_periodic`)
    tests, and the burst grows over its whole click (:func:`_grow`). ``power`` is the
    squared signal.
    """
    n, max_width, guard, order = signal.shape[0], geo.max_width, geo.guard, geo.order
    idx = np.flatnonzero(fwd | bwd)
    out = np.zeros(n, dtype=bool)
    if idx.size == 0:
        return out
    brk = np.flatnonzero(np.diff(idx) > gap + 1) + 1
    first = np.concatenate([[0], brk])
    big = np.iinfo(np.int64).max
    s_f = np.minimum.reduceat(np.where(fwd[idx], idx, big), first)
    e_b = np.maximum.reduceat(np.where(bwd[idx], idx, -1), first)
    last = np.concatenate([brk - 1, [idx.size - 1]])
    lo_all, hi_all = idx[first], idx[last]
    span = hi_all - lo_all + 1
    # "forward error starts it, backward error ends it" localises a click tightly; a smooth
    # wide click may show only its leading edge, then the whole cluster is taken
    both = (s_f != big) & (e_b >= 0)
    tight = both & (e_b >= s_f)
    s_f = np.where(tight, s_f, lo_all)
    e_b = np.where(tight, e_b, hi_all)
    # an edge excites both errors (the backward one just before it); one alone is music
    ok = (e_b - s_f + 1 <= max_width) & both
    ok &= span <= max_width + 2 * order
    # the onset tests look past the whole (grown) click
    s_f, e_b = _grow(s_f, e_b, low_f, low_b, max_width)
    win = geo.onset_fit
    pad = order + win
    windows = sliding_window_view(np.pad(power, pad, mode="edge"), win)
    after = windows[e_b + order + 1 + pad]
    p_before = np.sum(windows[s_f - order - win + pad], axis=1)
    p_after = np.sum(after, axis=1)
    # ... and the rise must start at the burst: music that gets louder only in the second
    # half of the window (a note 6-12 ms after a click) does not make the click an onset
    p_near = 2.0 * np.sum(after[:, : win // 2], axis=1)
    limit = ONSET_RATIO * p_before + 1e-12
    # a burst that leaves the signal after it 12 dB quieter than itself is an impulse whatever
    # came before (in digital silence the power before is zero, and a faint word or note
    # 10 ms later would otherwise make the click an "onset"): no onset test for it
    cs = np.concatenate([[0.0], np.cumsum(power)])
    burst = (cs[e_b + 1] - cs[s_f]) / (e_b - s_f + 1)  # the burst's mean power
    impulse = p_after <= ONSET_RATIO * ONSET_FLOOR * win * burst
    ok &= (p_after <= limit) | (p_near <= limit) | impulse
    cand = np.flatnonzero(ok)
    if cand.size:
        # the pitch-pulse test is the cheaper one: the model-change test only for the rest
        bad = _periodic(zsum, s_f[cand], e_b[cand], geo)
        rest = np.flatnonzero(~bad & ~impulse[cand])
        if rest.size:
            bad[rest] = _onsets(signal, s_f[cand[rest]], e_b[cand[rest]], geo)
        ok[cand[bad]] = False
    lo, hi = s_f[ok], e_b[ok]
    lo = np.maximum(lo - guard, 0)
    hi = np.minimum(hi + guard + 1, n)
    d = np.zeros(n + 1, dtype=np.int32)
    np.add.at(d, lo, 1)
    np.add.at(d, hi, -1)
    return np.cumsum(d[:n]) > 0


def _runs_bridged(low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of ``low`` with gaps of up to 2 samples bridged."""
    starts, stops = _ar.runs(low)
    if starts.size == 0:
        return starts, stops
    join = np.flatnonzero(starts[1:] - stops[:-1] > 2)
    return starts[np.concatenate([[0], join + 1])], stops[np.concatenate([join, [stops.size - 1]])]


def _grow(
    lo: np.ndarray, hi: np.ndarray, low_f: np.ndarray, low_b: np.ndarray, max_width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Extend bursts ``[lo, hi]`` to the whole click by hysteresis.

    A wide smooth click excites the errors mostly where it bends, and its flanks may stay
    below the detection threshold; a partly repaired click is barely better than none (the
    kept part pins the interpolation). So the start moves back over the run of forward-error
    samples above the lower threshold that holds it, and the end forward over the run of
    backward-error samples (the forward error of a click spreads *after* it and the backward
    one *before* it, so each is used on the side where it does not spread), unless the burst
    would get wider than ``max_width``.
    """
    new_lo, new_hi = lo, hi
    starts, stops = _runs_bridged(low_f)
    if starts.size:
        i = np.minimum(np.searchsorted(stops, lo, side="right"), starts.size - 1)
        new_lo = np.where(starts[i] <= lo, np.minimum(starts[i], lo), lo)
    starts, stops = _runs_bridged(low_b)
    if starts.size:
        j = np.minimum(np.searchsorted(stops, hi, side="right"), starts.size - 1)
        new_hi = np.where(starts[j] <= hi, np.maximum(stops[j] - 1, hi), hi)
    fits = new_hi - new_lo + 1 <= max_width
    return np.where(fits, new_lo, lo), np.where(fits, new_hi, hi)


def _close(mask: np.ndarray, hole: int, width: int) -> np.ndarray:
    """Fill the gaps of at most ``hole`` samples between bursts, if the result is at most
    ``width`` wide.

    A smooth wide click excites the prediction errors at its two edges, which can be found
    as two bursts with the click's middle between them; kept, those samples pin the
    interpolation to the click's level and the repair is worse than none. Music samples
    bridged this way by mistake are interpolated well.
    """
    starts, stops = _ar.runs(mask)
    out = mask.copy()
    if starts.size < 2:
        return out
    merge = (starts[1:] - stops[:-1] <= hole) & (stops[1:] - starts[:-1] <= width)
    for k in np.flatnonzero(merge):
        out[stops[k] : starts[k + 1]] = True
    return out


def _onsets(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Which bursts ``[lo, hi]`` of ``x`` are musical onsets rather than clicks.

    An AR model is fitted to the ``onset_fit`` samples just before the burst and used to
    predict the ``8 * order`` samples one order after it (so that neither the fit nor the
    predictions touch the burst). A click leaves the music after it as it was before, so the
    typical (median) error there is about the in-sample one; a new note, a stroke or a
    consonant brings components the old model does not know, and the error grows. Ratio above
    ``ONSET_ERROR`` means onset.
    """
    p, g, L = geo.order, geo.guard + 1, geo.onset_fit
    la = 8 * p
    # edge padding = clipping the indices to the signal, without the index arithmetic
    pad = L + g + 1
    # single precision: a ratio test on medians needs no more, and it halves the memory traffic
    # of the thousands of bursts a crackled recording has (the model itself is solved in double)
    xp = np.pad(x.astype(np.float32), (pad, la + p + g + 2), mode="edge")
    seg_b = sliding_window_view(xp, L)[lo - g - L + pad]
    seg_a = sliding_window_view(xp, la + p)[hi + 1 + g + pad]
    nfft = sp_fft.next_fast_len(L + p + 1, real=True)
    spec = sp_fft.rfft(seg_b * np.hanning(L + 2)[1:-1].astype(np.float32), nfft, axis=1)
    r = sp_fft.irfft(spec.real**2 + spec.imag**2, nfft, axis=1)[:, : p + 1].astype(np.float64)
    r[:, 0] = r[:, 0] * (1.0 + 1e-5) + 1e-10 * L
    c = _ar.levinson(r)[:, ::-1, None].astype(np.float32)
    # the in-sample error level from every other sample: a median of ~250 values is as good
    e_b = np.matmul(sliding_window_view(seg_b, p + 1, axis=1)[:, ::2], c)[..., 0]
    e_a = np.matmul(sliding_window_view(seg_a, p + 1, axis=1), c)[..., 0]
    m_b = np.median(np.abs(e_b), axis=1)
    m_a = np.median(np.abs(e_a), axis=1)
    return m_a > ONSET_ERROR * m_b + _ar.SCALE_FLOOR


def _periodic(z: np.ndarray, lo: np.ndarray, hi: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Which bursts ``[lo, hi]`` are pitch pulses rather than clicks.

    In voiced speech (and bowed or blown notes with a strong excitation) the prediction error
    peaks once per period, at each glottal closure. A burst whose peak statistic ``z`` has
    peaks of comparable height (a third to three times) one period (2.5-12.5 ms, 80-400 Hz)
    before *and* after it, within 2 samples of jitter, is such a pulse and is left alone.
    Random clicks almost never have partners at matching lags on both sides; dense crackle
    does by chance, so with ``geo.third_pulse`` a third pulse two periods away is required.
    """
    n = z.shape[0]
    k = np.arange(int((hi - lo).max()) + 1)
    pos = np.minimum(lo[:, None] + k, hi[:, None])
    zz = z[np.clip(pos, 0, n - 1)]
    argpk = pos[np.arange(lo.size), np.argmax(zz, axis=1)]
    peak = zz.max(axis=1)[:, None]
    lags = np.arange(geo.pitch[0], geo.pitch[1] + 1)
    # padded with zeros (never "comparable") so that lag indices need no clipping
    pad = 2 * geo.pitch[1] + 8
    # 5-sample running maximum (same values as scipy's maximum_filter1d, a few times faster)
    zp = np.pad(z, 2, mode="edge")
    zm = np.pad(
        np.maximum(
            np.maximum(zp[:-4], zp[1:-3]), np.maximum(zp[2:-2], np.maximum(zp[3:-1], zp[4:]))
        ),
        pad,
    )
    at = argpk + pad

    def near(v: np.ndarray, ref: np.ndarray) -> np.ndarray:
        return (v > ref / 3.0) & (v < 3.0 * ref)

    # one period before first; the other tests only for the bursts that pass it
    hit = near(zm[at[:, None] - lags], peak)
    rows = np.flatnonzero(hit.any(axis=1))
    out = np.zeros(lo.size, dtype=bool)
    if rows.size == 0:
        return out
    sub = hit[rows] & near(zm[at[rows, None] + lags], peak[rows])
    if geo.third_pulse:
        # Dense crackle (hundreds of impulses a second) puts comparable peaks one period
        # before and after an impulse by chance for a large share of them; a voiced
        # excitation keeps repeating. So the dense stage also asks for a third pulse two
        # periods away on either side (+-8 samples: the period drifts over two cycles).
        keep = np.flatnonzero(sub.any(axis=1))
        rows, sub = rows[keep], sub[keep]
        if rows.size:
            zw = np.pad(maximum_filter1d(z, 17, mode="nearest"), pad)
            ref = peak[rows]
            two = near(zw[at[rows, None] - 2 * lags], ref) | near(
                zw[at[rows, None] + 2 * lags], ref
            )
            sub &= two
    out[rows] = sub.any(axis=1)
    return out


def _bump_template(w: int) -> np.ndarray:
    """A smooth one-sided excursion of ``w`` samples (half-sine to the power 1.5)."""
    return np.sin(np.pi * (np.arange(w) + 0.5) / w) ** 1.5


def _smooth_scale(v: np.ndarray, *, offset: int, seg: int, radius: int) -> np.ndarray:
    """:func:`_ar.robust_scale` for a lowpass signal, from every fourth sample.

    The matched-filter outputs change little from one sample to the next (the templates are
    8 or more samples long), so a quarter of each segment's samples give the same median at
    a quarter of the cost of the partial sorts.
    """
    n = v.shape[0]
    lead = offset % seg
    ns = -(-(lead + n) // seg)
    a = np.pad(np.abs(v), (lead, ns * seg - lead - n), mode="edge")
    med = np.median(a.reshape(ns, seg)[:, ::4], axis=1).astype(np.float64) / 0.6745
    padded = np.pad(med, radius, mode="edge")
    smooth = np.median(sliding_window_view(padded, 2 * radius + 1), axis=1)
    near = np.median(sliding_window_view(padded[radius - 1 : padded.size - radius + 1], 3), axis=1)
    smooth = np.maximum(np.maximum(smooth, near), 1e-30)
    return np.repeat(smooth.astype(v.dtype), seg)[lead : lead + n]


def _normal_error(x: np.ndarray, c: np.ndarray, hop: int, lead: int) -> np.ndarray:
    """``A^T A x`` per frame with that frame's filter, cross-faded between frames.

    ``c`` [shape=(frames, order + 1)]: filters of the frames of ``hop`` samples, local frame
    ``k`` covering samples ``[k * hop - lead, (k + 1) * hop - lead)``. Each frame's doubly
    filtered signal is computed over two hops centred on the frame (with that filter
    throughout) and the frames are overlap-added under a periodic Hann window (which sums to
    one). Switching filters at frame boundaries instead leaves a step in the low-frequency
    part of the error wherever two frames' models differ there; the matched filter of a smooth
    bump answers that step (measured: nearly all of the false detections on clean music sat
    in the last 15 % of a frame, 2-35 a second; cross-faded, 0.1-1).
    """
    n = x.shape[0]
    frames, p1 = c.shape
    p = p1 - 1
    half = hop // 2
    span = 2 * hop
    pad = lead + half + 2 * p
    xp = np.zeros(frames * hop + span + 4 * p + 1)
    xp[pad : pad + n] = x[: xp.size - pad]
    # frame k needs samples [k*hop - lead - half - 2p, ... + span + 4p)
    seg = sliding_window_view(xp, span + 4 * p)[::hop][:frames]
    # A^T A is the zero-phase filter |C|^2 (the filter's autocorrelation, lags -p..p): one
    # product of spectra; the circular wrap only reaches the 2p samples at each end, dropped
    nfft = sp_fft.next_fast_len(span + 4 * p, real=True)
    power = np.abs(sp_fft.rfft(c, nfft, axis=1)) ** 2
    g = sp_fft.irfft(sp_fft.rfft(seg, nfft, axis=1) * power, nfft, axis=1)[:, 2 * p : 2 * p + span]
    g *= np.hanning(span + 1)[:-1]
    out = np.zeros(frames * hop + span)
    for k in range(2):
        blk = g[k::2].ravel()
        out[k * hop : k * hop + blk.size] += blk
    # out[j] is local sample j - lead - half
    return out[lead + half : lead + half + n]


def _bump_pass(
    y: np.ndarray, threshold: float, geo: _Geometry, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mask of smooth one-sided clicks ("bumps") the per-sample detector cannot see (one channel).

    A dust bump of 8-40 samples has its energy below ~2 kHz, where the music is loud and
    an order-32 prediction-error filter has little gain (-30 dB on organ-like music), so its
    prediction errors stay below the threshold. Long frame models (orders up to
    ``bump_order`` by AIC over 80 ms, as in declipping) notch the partials and pass the
    rest, so a bump stands out from the music's residual. For a bump ``a * b_w`` of unknown
    amplitude starting at ``n``, the least-squares (GLRT) statistic is the correlation of
    ``b_w`` with ``g = A^T A y`` (:func:`_normal_error`); it is measured in robust standard
    deviations of its own (6 ms segments, as the errors), which absorbs the residual's
    remaining colour. Maximum over positions and widths; above ``BUMP_LEVEL * threshold``
    a run is a candidate, placed at its peak with its width.

    Applied only in frames whose AIC order is the longest (tonal, steady music: speech and
    noise-like frames choose short models, and their residual has glottal and consonant
    pulses that a bump template matches), and subject to the loudness, model-change and
    pitch-pulse tests of the ordinary passes.

    Returns
    -------
    mask : np.ndarray [shape=(frames,), dtype=bool]
        The bumps found (with guard samples).
    filters : np.ndarray [shape=(n_frames, bump_order + 1)]
        The frame models (for the repair), or None where none were needed.
    """
    n = y.shape[0]
    hop, top = geo.bump_hop, geo.bump_order
    out = np.zeros(n, dtype=bool)
    if n < 4 * top:
        return out, None
    cand = (top // 8, top // 4, top // 2, top)
    c = _hi.frame_models(y[None], offset=offset, hop=hop, win=2 * hop, candidates=cand)[0]
    lead = offset % hop
    frame = (np.arange(n) + lead) // hop
    tonal = (np.count_nonzero(c, axis=1) - 1 == top)[frame]
    if not tonal.any():
        return out, c
    # single precision for the matched filters: a detection statistic needs no more
    g = _normal_error(y, c, hop, lead).astype(np.float32)
    best = np.zeros(n, dtype=np.float32)
    width = np.zeros(n, dtype=np.int64)
    amp = np.zeros(n)
    rc = _hi.filter_acf(c)
    for w in geo.bump_widths:
        b = _bump_template(w)
        # at even absolute positions only (each value held for two samples): the output of a
        # template of 8 or more samples changes little from one sample to the next
        first = offset % 2
        gp = np.pad(g, (0, w + 2))
        corr = np.zeros(n + 2, dtype=np.float32)
        corr[first:n:2] = sliding_window_view(gp, w)[first:n:2] @ b.astype(np.float32)
        corr[first + 1 : n + 1 : 2] = corr[first:n:2]
        if first:
            corr[0] = corr[-1] = 0.0
        corr = corr[:n]
        corr[n - w + 1 :] = 0.0
        z = np.abs(corr) / _smooth_scale(corr, offset=offset, seg=geo.seg, radius=geo.radius)
        better = np.flatnonzero(z > best)
        best[better] = z[better]
        width[better] = w
        # least-squares amplitude: corr / ||A b||^2, ||A b||^2 = b^T R_c b (frame's model)
        k = min(w, rc.shape[1])
        ab = np.correlate(b, b, mode="full")[w - 1 : w - 1 + k]
        energy = (rc[:, 0] * ab[0] + 2.0 * rc[:, 1:k] @ ab[1:])[frame[better]]
        amp[better] = np.abs(corr[better]) / np.maximum(energy, 1e-30)
    best *= tonal
    starts, _ = _ar.runs(best > BUMP_LEVEL * threshold)
    if starts.size == 0:
        return out, c
    # peak of each run: its start and width
    peak = np.maximum.reduceat(best, starts)
    idx = np.flatnonzero(best > BUMP_LEVEL * threshold)
    run_of = np.searchsorted(starts, idx, side="right") - 1
    at = np.zeros(starts.size, dtype=np.int64)
    hit = best[idx] == peak[run_of]
    at[run_of[hit][::-1]] = idx[hit][::-1]  # first sample reaching the run's peak
    lo = at
    hi = np.minimum(at + width[at] - 1, n - 1)
    ok = np.ones(lo.size, dtype=bool)
    # a bump leaves the music as loud after it as before it (see :func:`_events`), and it
    # matters: one below a quarter of the music's RMS level (-12 dB) before it is masked by
    # the music, and rebuilding 8-88 samples of music costs more than it gains there
    power = y * y
    win = geo.onset_fit
    pad = geo.order + win
    windows = sliding_window_view(np.pad(power, pad + top, mode="edge"), win)
    p_before = np.sum(windows[lo - geo.order - win + pad + top], axis=1)
    ok &= amp[lo] >= BUMP_MIN_LEVEL * np.sqrt(p_before / win)
    # ``g`` spreads a step (a note's onset) over the ``top`` samples before it, so the
    # onset tests look past the bump at three places up to ``top`` samples after it
    for shift in (0, top // 2, top):
        after = windows[np.minimum(hi + shift, n - 1) + geo.order + 1 + pad + top]
        p_after = np.sum(after, axis=1)
        p_near = 2.0 * np.sum(after[:, : win // 2], axis=1)
        limit = BUMP_ONSET_RATIO * p_before + 1e-12
        ok &= (p_after <= limit) | (p_near <= limit)
        keep = np.flatnonzero(ok)
        if keep.size == 0:
            break
        bad = _periodic(best, lo[keep], hi[keep], geo) if shift == 0 else np.zeros(keep.size, bool)
        rest = np.flatnonzero(~bad)
        if rest.size:
            far = np.minimum(hi[keep[rest]] + shift, n - 1)
            bad[rest] = _onsets(y, lo[keep[rest]], far, geo)
        ok[keep[bad]] = False
    lo = np.maximum(lo[ok] - geo.guard, 0)
    hi = np.minimum(hi[ok] + geo.guard + 1, n)
    d = np.zeros(n + 1, dtype=np.int32)
    np.add.at(d, lo, 1)
    np.add.at(d, hi, -1)
    return np.cumsum(d[:n]) > 0, c


def repair_impulses(
    audio: np.ndarray,
    rate: int,
    *,
    threshold: float,
    geo: _Geometry,
    link: bool,
    offset: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Detect and rebuild impulses in every channel.

    Parameters
    ----------
    audio : np.ndarray [shape=(channels, frames)]
    threshold : float
        Detection level in robust standard deviations of the prediction error.
    geo : _Geometry
        Frame, segment and width sizes in samples (see :func:`geometry`).
    link : bool
        Joint detection across channels.
    offset : int
        Absolute index of the first frame (keeps the analysis grid fixed in the file).

    Returns
    -------
    repaired : np.ndarray [shape=(channels, frames), dtype=float64]
        Samples outside the detected bursts are exactly the input samples.
    mask : np.ndarray [shape=(channels, frames), dtype=bool]
        The rebuilt samples.
    """
    x = np.asarray(audio, dtype=np.float64)
    ch, n = x.shape
    mask = np.zeros((ch, n), dtype=bool)
    y = x
    if n < 4 * geo.order:
        return x.copy(), mask
    hop, p = geo.hop, geo.order
    frame0 = offset // hop
    lead = offset - frame0 * hop
    for gap in geo.gaps:
        filters = []
        zf = np.empty((ch, n))
        zb = np.empty((ch, n))
        for c in range(ch):
            filt = _ar.frame_ar(y[c], offset=offset, hop=hop, win=geo.win, order=p)
            ef, eb = _ar.residuals(y[c], filt, offset=offset, hop=hop)
            zf[c] = np.abs(ef) / _ar.robust_scale(ef, offset=offset, seg=geo.seg, radius=geo.radius)
            zb[c] = np.abs(eb) / _ar.robust_scale(eb, offset=offset, seg=geo.seg, radius=geo.radius)
            filters.append(filt)
        hf, hb = zf > threshold, zb > threshold
        if link and ch > 1:
            # an impulse in every channel at once is accepted at a lower level in each
            hf |= np.min(zf, axis=0) > JOINT * threshold
            hb |= np.min(zb, axis=0) > JOINT * threshold
        power = y * y
        for c in range(ch):
            zsum = zf[c] + zb[c]
            level = max(LOW * threshold, LOW_MIN)
            low_f, low_b = zf[c] > level, zb[c] > level
            mask[c] |= _events(hf[c], hb[c], power[c], y[c], zsum, low_f, low_b, gap, geo)
        out = np.empty_like(x)
        for c in range(ch):
            mask[c] = _close(mask[c], geo.max_width // 2, geo.max_width + 2 * geo.guard)
            # bursts of successive passes that chain into a run wider than any click are
            # an unpredictable stretch of music, not a click: leave it
            starts, stops = _ar.runs(mask[c])
            for a, b in zip(starts, stops, strict=True):
                if b - a > geo.max_width + 2 * geo.guard:
                    mask[c, a:b] = False
            starts, stops = _ar.runs(mask[c])
            centre = (starts + stops) // 2
            fidx = np.minimum((centre + lead) // hop, filters[c].shape[0] - 1)
            out[c] = _ar.lsar_fill(
                x[c], mask[c], starts, stops, filters[c][fidx], max_unknown=geo.max_unknown
            )
        y = out
    if geo.bump_hop:
        y = y.copy()
        for c in range(ch):
            found, filt = _bump_pass(y[c], threshold, geo, offset)
            new = found & ~mask[c]
            starts, stops = _ar.runs(new)
            if starts.size == 0:
                continue
            fidx = np.minimum(
                ((starts + stops) // 2 + offset % geo.bump_hop) // geo.bump_hop, filt.shape[0] - 1
            )
            y[c] = _ar.lsar_fill(y[c], new, starts, stops, filt[fidx], max_unknown=geo.max_unknown)
            mask[c] |= new
    return y, mask


class _ImpulsiveStage(Stage):
    offers_removed = True
    #: detection threshold (robust standard deviations) at sensitivity 0.5
    threshold_mid: ClassVar[float]
    #: dense small impulses (crackle): see :func:`geometry`
    dense: ClassVar[bool] = False

    def threshold(self) -> float:
        return self.threshold_mid * 2.0 ** (2.0 * (0.5 - self.params.sensitivity))

    def context_frames(self, rate: int) -> int:
        return geometry(self.params, rate, dense=self.dense).context()

    def preferred_block_frames(self, rate: int) -> int:
        return max(65536, 2 * self.context_frames(rate))

    def process(
        self, audio: np.ndarray, rate: int, *, analysis: Any = None, offset: int = 0
    ) -> np.ndarray:
        geo = geometry(self.params, rate, dense=self.dense)
        y, _ = repair_impulses(
            audio,
            rate,
            threshold=self.threshold(),
            geo=geo,
            link=self.params.link_channels,
            offset=offset,
        )
        return y.astype(np.float32)

    def detect(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """Boolean mask [shape=(channels, frames)] of the samples the stage rebuilds."""
        geo = geometry(self.params, rate, dense=self.dense)
        _, mask = repair_impulses(
            audio, rate, threshold=self.threshold(), geo=geo, link=self.params.link_channels
        )
        return mask


@register
class Declick(_ImpulsiveStage):
    name = "declick"
    title = "De-click"
    summary = "Find clicks with an AR model of the music and rebuild them by AR interpolation."
    Params = DeclickParams
    threshold_mid = 9.0


@register
class Decrackle(_ImpulsiveStage):
    name = "decrackle"
    title = "De-crackle"
    summary = "Remove dense small impulses (crackle) without dulling transients."
    Params = DecrackleParams
    threshold_mid = 5.0
    dense = True
