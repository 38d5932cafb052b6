"""Mains hum removal by tracking, plus optional DC and sub-sonic rumble removal.

Hum from 50 or 60 Hz mains is a set of harmonics whose fundamental drifts by a few tenths of a
hertz (grid frequency, tape and turntable speed). A static notch comb either misses the drifting
lines or, made wide enough, cuts the music at the same frequencies. This stage instead:

1. **analyses** the whole file (:class:`HumAnalyzer`): every second, a 2 s Hann-windowed,
   zero-padded spectrum is searched around each harmonic of 50 and 60 Hz; the peak position is
   refined by parabolic interpolation of the log power and its prominence over the local median
   is measured. Hum is stationary, so the decision (50 or 60 Hz, which harmonics carry hum) uses
   the prominence reached in 70 % of the windows: music that touches a harmonic now and then
   does not count.
   The fundamental of each second is the inverse-variance weighted mean of the harmonics' peak
   frequencies divided by their numbers, median-filtered over three seconds.
   Under loud bass (kick drum, tuba, bass guitar) the hum lines never stand out in those
   spectra, though between the beats the hum is alone and audible. When the spectra find
   nothing, a second opinion (:class:`_WeakHum`) looks for a line that keeps its phase: power-
   normalised 0.1 s block values at the first three harmonics, a tracked drift, coherence
   over up to 32 s; it must lead the other mains family and the same search at non-mains
   frequencies by a factor of 1.5, and then supplies the track.
2. **removes** each hum harmonic by heterodyning: the signal is demodulated with the tracked
   phase of harmonic ``h`` and averaged over 10 ms blocks. At that block rate the phase is
   refined by a weighted least-squares fit over all harmonics (a frequency error turns
   harmonic ``h`` by ``h`` times the fundamental's phase error), then each harmonic's complex
   amplitude is averaged over ~20 s (``bandwidth_hz`` = 0.05 Hz: mains hum is steady, and
   the music taken with it is proportional to that bandwidth), with robust weights that
   discount the moments when a partial or a syllable passes through the line; where a faster
   (0.3 Hz) average departs from it by more than the music explains (the hum's level changed),
   the faster one is used. The line is
   removed where its power exceeds twice what the music lends the average (then the hum
   outweighs it), left where the music dominates, linearly in between. The re-modulated
   estimate is subtracted.

DC offset and rumble are removed by a zero-phase Butterworth high-pass when asked. Given the
analysis, processing is local (context = two averaging windows plus the high-pass settling
time), so block-wise output equals whole-file output; given also the phase correction, the
weights and the removal decisions (measured on a steering signal), it is linear, which lets a
benchmark split its effect on hum and on music exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import linalg, ndimage, signal

from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

#: search range around each nominal harmonic, as a fraction of its frequency (grids hold
#: +-0.5 %; the rest allows for a transfer at a slightly wrong speed). Equal-tempered notes
#: near 2x and 3x the mains (G2 = 98 Hz, D3 = 146.8 Hz, B2 = 123.5 Hz) lie outside it.
SEARCH_FRACTION = 0.01
#: half-width of the neighbourhood whose median is the background level of a harmonic, Hz
BACKGROUND_HZ = 20.0
#: a hum line must be the highest point within this distance, Hz (the 2 s Hann window's main
#: lobe is +-1 Hz, so a partial farther away than this has a lobe of its own)
LINE_GAP_HZ = 2.0
#: highest harmonic frequency considered, Hz
MAX_HUM_HZ = 4000.0
#: largest change of the fundamental from one second to the next that the tracker follows, Hz
TRACK_HZ = 0.4
#: percentage of the analysis windows in which a hum line must stand out
PRESENCE = 70
#: lowest prominence (dB) at which a harmonic is included once hum is detected
HARMONIC_MIN_DB = 6.0
#: fastest drift (Hz per second) of the fundamental that the per-second track alone follows;
#: beyond it the removal also refines the phase on the signal (which costs some music)
STEER_RATE = 0.1
#: a harmonic this prominent (median, dB) steers the fine phase correction ...
REFINE_DB = 20.0
#: ... measured with this bandwidth, Hz
REFINE_HZ = 2.0
#: weight of the tracked frequency against the measured phase advances (see _fit_advances)
FIT_PRIOR = 0.05
#: a harmonic joins the removed set when at least this fraction of its power is phase-locked
#: to the hum series: then the hum it carries outweighs the music that its removal takes
COHERENCE_MIN = 0.5
#: ... and that fraction is this many times its chance level (1 / number of windows)
COHERENCE_CHANCE = 2.5
#: ... and it is at most this many harmonics above the highest one found by prominence
COHERENCE_REACH = 4
#: harmonics always considered for removal when the set is automatic; each is removed or not
#: by the hum-versus-music rule of :func:`_robust_amplitude` (weak hum harmonics under music
#: are too faint for the prominence rule, yet nearly all hum energy lies in the first six;
#: higher up a held note is likelier: F4 = 349.2 Hz is 0.8 Hz from 7 x 50 Hz)
CANDIDATES = 6
#: bandwidth of the short-term look at each line that refines the phase, Hz (the per-second
#: track is good to about 0.02 Hz; what remains varies over a second or so, most near the
#: file's ends where the track is held constant)
PHASE_HZ = 1.0
#: bandwidth of the faster level average used where the hum's level or phase moves, Hz
LEVEL_HZ = 0.3
#: bandwidth of the look at each line that the robust weights and the removal rule use, Hz:
#: narrow enough to keep partials 3 Hz away out, short enough (0.5 s) to resolve in time a
#: syllable or a note's partial passing through the line
NOISE_HZ = 2.0
#: corner of the DC-removal high-pass, Hz (first order, applied forwards and backwards)
DC_HZ = 5.0
#: second opinion for hum buried under bass (see :class:`_WeakHum`): harmonics it looks at,
WEAK_HARMONICS = 3
#: ... its block length (s), the span over which it normalises the local power (blocks), the
#: length and hop of its frequency-search segments (blocks: 3 s, 1 s), its grid step (Hz) ...
WEAK_BLOCK_S = 0.1
WEAK_NORM_BLOCKS = 5
WEAK_SEGMENT = 30
WEAK_HOP = 10
WEAK_GRID_HZ = 0.02
#: ... the cost (in units of the segment score) of a one-step change of the track per hop ...
WEAK_STEP_COST = 2.5
#: ... the longest span (blocks) over which it adds the blocks up coherently ...
WEAK_WINDOW = 320
#: ... and what it needs to call hum: a tracked coherence score per channel (each harmonic
#: adds about 1 when the blocks' phases are random) and a lead of this factor over the other
#: mains family and over the same search at frequencies where no mains is (held notes and
#: steady drums also keep their phase; the best of these says how far this music goes)
WEAK_SCORE = 20.0
WEAK_LEAD = 1.5
#: those reference fundamentals, Hz: their first three harmonics lie at least 2 Hz from those
#: of 50 and 60 Hz (beyond the reach of the frequency search, +-1 % of the harmonic)
WEAK_NULLS = (44.0, 46.0, 48.0, 53.0, 55.0, 57.0, 63.0, 65.0, 67.0)


@dataclass(frozen=True)
class DehumParams(StageParams):
    mains: str = param(
        "auto",
        choices=("auto", "50", "60"),
        help="Mains frequency: detect it, or force 50 or 60 Hz.",
    )
    harmonics: int | None = param(
        None,
        min=1,
        max=40,
        step=1,
        help="Remove harmonics 1..N (None: those that the analysis finds carrying hum).",
    )
    threshold_db: float = param(
        12.0,
        min=3.0,
        max=40.0,
        step=0.5,
        unit="dB",
        help="How far a harmonic must stand above its neighbourhood, typically, to count as hum.",
    )
    bandwidth_hz: float = param(
        0.05,
        min=0.02,
        max=5.0,
        step=0.01,
        unit="Hz",
        help="Width of the average that measures each hum line's level (narrower spares more "
        "music, wider follows faster level changes of the hum; its phase is tracked apart).",
    )
    remove_dc: bool = param(False, help="Remove DC offset (zero-phase high-pass at 5 Hz).")
    rumble_hz: float | None = param(
        None,
        min=10.0,
        max=200.0,
        step=1.0,
        unit="Hz",
        help="Corner of a zero-phase rumble high-pass (None: off).",
    )


@dataclass(frozen=True)
class HumAnalysis:
    """Result of the analysis pass.

    Attributes
    ----------
    mains_hz : float | None
        50.0, 60.0, or None when no hum was found.
    harmonics : tuple[int, ...]
        Harmonic numbers that carry hum (1 = the fundamental).
    knots : np.ndarray [shape=(k,)]
        Sample positions (in the file) where the fundamental was measured.
    f0 : np.ndarray [shape=(k,)]
        Tracked fundamental at the knots, Hz; linear in between, constant outside.
    phase : np.ndarray [shape=(k,)]
        Phase of the fundamental at the knots (radians, modulo 2 pi), the integral of ``f0``.
    prominence_db : np.ndarray [shape=(max_harmonic,)]
        Prominence that each harmonic of the chosen mains frequency reaches in ``PRESENCE``
        percent of the analysis windows.
    coherence : np.ndarray [shape=(max_harmonic,)] or None
        Fraction of each harmonic's power that is phase-locked to the hum series (0..1, see
        :func:`_coherence`); None without hum.
    steer : bool
        The fundamental moves fast enough (more than ``STEER_RATE`` Hz per second somewhere)
        that the removal refines the tracked phase on the signal itself.
    weak : bool
        The hum was found by the phase-tracking second opinion (:class:`_WeakHum`), not in
        the spectra: it lies under louder music at its own frequencies.
    """

    mains_hz: float | None
    harmonics: tuple[int, ...]
    knots: np.ndarray
    f0: np.ndarray
    phase: np.ndarray
    prominence_db: np.ndarray
    steer: bool = False
    coherence: np.ndarray | None = None
    weak: bool = False

    def phase_at(self, positions: np.ndarray, rate: int) -> np.ndarray:
        """Phase of the tracked fundamental at integer sample ``positions`` (float64, radians)."""
        p = positions.astype(np.float64)
        knots, f0, phase = self.knots, self.f0, self.phase
        w = 2.0 * np.pi / rate
        i = np.clip(np.searchsorted(knots, p, side="right") - 1, 0, knots.size - 1)
        d = p - knots[i]
        slope = np.zeros_like(f0)
        if knots.size > 1:
            slope[:-1] = np.diff(f0) / np.diff(knots)
        # the frequency is linear inside a piece and constant beyond the end knots (a slope
        # measured over one second says little about the next)
        s = np.where(d < 0, 0.0, slope[i])
        return np.mod(phase[i] + w * (f0[i] * d + 0.5 * s * d * d), 2.0 * np.pi)

    def f0_at(self, positions: np.ndarray) -> np.ndarray:
        """Tracked fundamental at ``positions``, Hz (linear; constant beyond the end knots)."""
        p = np.asarray(positions, dtype=np.float64)
        if self.knots.size == 1:
            return np.full(p.shape, self.f0[0])
        i = np.clip(np.searchsorted(self.knots, p, side="right") - 1, 0, self.knots.size - 2)
        slope = (self.f0[i + 1] - self.f0[i]) / (self.knots[i + 1] - self.knots[i])
        return self.f0[i] + slope * np.clip(p - self.knots[i], 0.0, np.diff(self.knots)[i])

    def track_error(self, f0_true: np.ndarray, rate: int) -> np.ndarray:
        """Tracked minus true fundamental at the knots, Hz.

        Parameters
        ----------
        f0_true : np.ndarray [shape=(frames,)]
            True instantaneous fundamental at every sample of the file, Hz.
        """
        idx = np.clip(np.round(self.knots).astype(np.int64), 0, f0_true.size - 1)
        return self.f0 - f0_true[idx]


def _tolerance(hs: np.ndarray) -> np.ndarray:
    """How far (Hz) a hum harmonic's measured peak may sit from ``h * f0``: the estimation
    error of a 2 s window plus the smearing of a drifting fundamental, which grows with h."""
    return 0.15 + 0.01 * hs


def _sieve(
    freqs: np.ndarray, proms: np.ndarray, hs: np.ndarray, base: float, span: float
) -> float | None:
    """Fundamental within ``base +- span`` Hz that best explains the peaks as harmonics.

    Each peak votes, with its prominence above 6 dB divided by its harmonic number, for every
    candidate fundamental that puts one of its multiples within :func:`_tolerance` of it (a
    music partial lands near *some* high harmonic by chance far more easily than near a low
    one, whose tolerance is also tighter). The candidate with most votes wins and is refined by
    a weighted mean of the agreeing peaks' ``f / h``, weighted by SNR times ``h`` (the error of
    ``f / h`` falls with both). None if no peak stands out.
    """
    weight = np.where(np.isfinite(freqs), np.maximum(proms - 6.0, 0.0), 0.0)
    if not weight.any():
        return None
    cands = base + np.linspace(-span, span, 301)
    f = np.nan_to_num(freqs)
    near = np.abs(f[None, :] - hs[None, :] * cands[:, None]) <= _tolerance(hs)[None, :]
    score = (near * (weight / hs)[None, :]).sum(axis=1)
    if not score.max() > 0.0:
        return None  # prominent peaks, but none near a multiple of any candidate
    best = np.flatnonzero(score == score.max())
    agree = near[best[best.size // 2]] & (weight > 0)
    w = hs[agree] * 10.0 ** (np.minimum(proms[agree], 60.0) / 10.0)
    return float(np.sum(w * f[agree] / hs[agree]) / np.sum(w))


def _series(harmonics: tuple[int, ...]) -> tuple[int, ...]:
    """Drop lone lines above the first ``CANDIDATES`` harmonics (no other harmonic within two).

    Far up, hum comes as a series (rectifier or dimmer buzz); a single steady line there is
    likelier a held note that sits on a harmonic (E5 = 659.3 Hz lies 0.7 Hz from 11 x 60 Hz):
    on a song with 60 Hz hum, taking such a line for the 11th harmonic cost 12 dB SI-SDR.
    """
    found = set(harmonics)
    return tuple(
        h
        for h in harmonics
        if h <= CANDIDATES or any(n in found for n in (h - 2, h - 1, h + 1, h + 2))
    )


def _coherence(
    coefs: np.ndarray, knots: np.ndarray, f0: np.ndarray, rate: int, ref: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of each harmonic's power that keeps the phase of a hum harmonic, 0..1.

    Hum harmonics are phase-locked to the fundamental: from one analysis window to the next,
    harmonic ``h`` advances by ``h`` times the fundamental's phase advance. Music near a
    harmonic does not. The fundamental's advance is predicted from the tracked frequency and
    locked to the measured advance of the reference harmonic ``ref`` (the strongest line),
    so the prediction error does not grow with ``h``. Each harmonic's window values are
    turned back by the accumulated phase; what stays (their mean) is the hum, what averages
    out is music.

    Needs K >= 2 windows.

    Parameters
    ----------
    coefs : np.ndarray [shape=(K, channels, H), dtype=complex]
        Window spectra at the harmonics, phase referred to the window centres ``knots``.
    f0 : np.ndarray [shape=(K,)]
        Tracked fundamental at the knots, Hz.

    Returns
    -------
    coherence : np.ndarray [shape=(H,)]
        ``|mean|^2 / mean(|.|^2)`` of the turned-back values, summed over channels: near 1
        for a line that is all hum, about ``1 / K`` for one that is all music.
    advance : np.ndarray [shape=(K - 1,)]
        The locked phase advance of the fundamental from knot to knot, radians.
    """
    n_h = coefs.shape[2]
    hs = np.arange(1, n_h + 1, dtype=np.float64)
    pred = 2.0 * np.pi * 0.5 * (f0[1:] + f0[:-1]) * np.diff(knots) / rate  # (K-1,)
    z = coefs[:, :, ref - 1]
    cross = np.sum(z[1:] * np.conj(z[:-1]), axis=1)  # polarity-free over channels
    miss = np.angle(np.exp(1j * (np.angle(cross) - ref * pred)))
    adv = pred + miss / ref
    phi = np.concatenate([[0.0], np.cumsum(adv)])  # (K,)
    u = coefs * np.exp(-1j * np.mod(hs[None, :] * phi[:, None], 2.0 * np.pi))[:, None, :]
    kept = np.sum(np.abs(u.mean(axis=0)) ** 2, axis=0)
    total = np.sum(np.mean(np.abs(u) ** 2, axis=0), axis=0) + 1e-30
    return kept / total, adv


def _fit_advances(f0: np.ndarray, knots: np.ndarray, adv: np.ndarray, rate: int) -> np.ndarray:
    """Piecewise-linear fundamental (Hz at the knots) whose phase advances match ``adv``.

    Least squares: each piece's advance ``2 pi (f_k + f_k+1) / 2 * d_k / rate`` should equal the
    measured ``adv[k]`` (radians), and each ``f_k`` stays near the tracked ``f0[k]`` with a small
    weight (``FIT_PRIOR`` radians per hertz-second), which fixes the alternating component that
    the advances alone leave free. Tridiagonal normal equations, O(K).
    """
    d = np.diff(knots) / rate  # seconds
    c = np.pi * d  # d advance / d f_k for each end of a piece
    lam = np.full(f0.size, (FIT_PRIOR * 2.0 * np.pi) ** 2)
    diag = lam.copy()
    diag[:-1] += c * c
    diag[1:] += c * c
    off = c * c
    r = adv - c * (f0[:-1] + f0[1:])  # solve for the change from f0
    rhs = np.zeros(f0.size)
    rhs[:-1] += c * r
    rhs[1:] += c * r
    bands = np.zeros((2, f0.size))
    bands[0, 1:] = off
    bands[1] = diag
    return f0 + linalg.solveh_banded(bands, rhs)


class _WeakHum:
    """Second opinion for hum that the spectra cannot show: under bass, a kick drum or a tuba.

    The 2 s spectra of :class:`HumAnalyzer` see the hum line against the music's power in the
    same window; under loud bass that power is far above the hum most of the time, yet between
    the beats and notes the hum is alone. Here the signal is low-passed and decimated to about
    1 kHz, demodulated at the first ``WEAK_HARMONICS`` harmonics of 50 and 60 Hz into 0.1 s
    block means, and every block is divided by the root of its local power (a weighted
    least-squares view of a steady line in noise whose level changes: loud moments count
    little, quiet ones much). Hum keeps its phase from block to block; music does not.
    The drift is followed by a search: each 3 s segment (hop 1 s) is scored over a grid of
    frequency offsets (all harmonics, all channels, ``h`` times the offset at harmonic ``h``),
    and a smooth path through the segments is chosen by dynamic programming. The phase of that
    path turns every block back, and the coherence over windows of up to 32 s (their median)
    is the score: with random phases each harmonic and channel adds about 1, hum adds in
    proportion to the window's length. Keeps 10 complex numbers per second, harmonic, channel
    and searched fundamental (11: 50, 60 Hz and the references of ``WEAK_NULLS``).
    """

    def __init__(self, rate: int, channels: int, bases: tuple[float, ...]) -> None:
        self.rate, self.bases = rate, bases
        self.q = max(1, rate // 1000)
        self.fd = rate / self.q
        self.sos = (
            signal.ellip(8, 0.5, 80.0, 0.42 * self.fd, btype="lowpass", fs=rate, output="sos")
            if self.q > 1
            else None
        )
        self.zi = None if self.sos is None else np.zeros((self.sos.shape[0], channels, 2))
        self.block = max(1, round(WEAK_BLOCK_S * self.fd))
        self.pos = 0  # input samples seen
        self.dec = 0  # decimated samples turned into blocks
        self.buf = np.zeros((channels, 0))
        self.hs = np.arange(1, WEAK_HARMONICS + 1, dtype=np.float64)
        self.z: dict[float, list[np.ndarray]] = {b: [] for b in bases}

    def update(self, block: np.ndarray) -> None:
        x = block.astype(np.float64)
        if self.sos is not None:
            x, self.zi = signal.sosfilt(self.sos, x, axis=1, zi=self.zi)
        first = (-self.pos) % self.q
        self.pos += block.shape[1]
        self.buf = np.concatenate([self.buf, x[:, first :: self.q]], axis=1)
        n = (self.buf.shape[1] // self.block) * self.block
        if not n:
            return
        y, self.buf = self.buf[:, :n], self.buf[:, n:]
        idx = self.dec + np.arange(n, dtype=np.float64)
        self.dec += n
        for b in self.bases:
            cycles = np.mod(self.hs[:, None] * (b / self.fd) * idx[None, :], 1.0)
            c = np.exp(-2j * np.pi * cycles)  # (H, n)
            z = (y[None, :, :] * c[:, None, :]).reshape(c.shape[0], y.shape[0], -1, self.block)
            self.z[b].append(z.mean(axis=-1).astype(np.complex64))  # (H, channels, blocks)

    def result(self, base: float) -> tuple[float, np.ndarray, np.ndarray]:
        """Score, and the tracked fundamental (knot positions in samples, Hz) for ``base``."""
        if not self.z[base]:
            return 0.0, np.zeros(1), np.full(1, base)
        z = np.concatenate(self.z[base], axis=-1).astype(np.complex128)  # (H, C, N)
        _, channels, n = z.shape
        power = ndimage.uniform_filter1d(
            (np.abs(z) ** 2).sum(axis=1), WEAK_NORM_BLOCKS, axis=-1, mode="nearest"
        )
        power = np.maximum(power, 1e-12 * power.max(initial=0.0) + 1e-30)
        u = z / np.sqrt(power)[:, None, :]
        dt = self.block / self.fd
        t = (np.arange(n) + 0.5) * dt
        span = SEARCH_FRACTION * base
        grid = np.arange(-span, span + 1e-9, WEAK_GRID_HZ)
        seg = min(WEAK_SEGMENT, n)
        starts = np.arange(0, max(n - seg, 0) + 1, WEAK_HOP)
        scores = np.zeros((starts.size, grid.size))
        tt = (np.arange(seg) - (seg - 1) / 2.0) * dt
        turn = np.exp(-2j * np.pi * grid[:, None, None] * self.hs[None, :, None] * tt)  # (G,H,T)
        for k, s0 in enumerate(starts):
            part = u[:, :, s0 : s0 + seg]
            norm = (np.abs(part) ** 2).sum(axis=-1) + 1e-30  # (H, C)
            sums = np.einsum("hct,ght->ghc", part, turn)
            scores[k] = (np.abs(sums) ** 2 / norm[None]).sum(axis=(1, 2))
        # smoothest good path: Viterbi with a cost per grid step of change
        steps = np.abs(np.arange(grid.size)[:, None] - np.arange(grid.size)[None, :])
        cost = WEAK_STEP_COST * steps
        acc = scores[0].copy()
        back = []
        for k in range(1, starts.size):
            m = acc[:, None] - cost
            arg = np.argmax(m, axis=0)
            back.append(arg)
            acc = m[arg, np.arange(grid.size)] + scores[k]
        path = [int(np.argmax(acc))]
        for arg in reversed(back):
            path.append(int(arg[path[-1]]))
        path = np.array(path[::-1])
        # sub-grid refinement: parabola through the chosen point and its neighbours
        inner = np.clip(path, 1, grid.size - 2)
        rows = np.arange(starts.size)
        a, c, e = (scores[rows, inner + d] for d in (-1, 0, 1))
        den = a - 2.0 * c + e
        frac = np.where(den < 0, 0.5 * (a - e) / np.where(den < 0, den, -1.0), 0.0)
        offset = grid[path] + np.where(path == inner, np.clip(frac, -0.5, 0.5), 0.0) * WEAK_GRID_HZ
        centres = (starts + seg / 2.0) * dt
        f0 = base + offset
        # coherence along the path's phase, over windows of at most WEAK_WINDOW blocks (a
        # steady line's score grows with the span, so a long file must not make a held note
        # or a loop look like hum); hum is there all the time: the median window counts
        phase = 2.0 * np.pi * np.cumsum(np.interp(t, centres, offset)) * dt
        v = u * np.exp(-1j * self.hs[:, None] * phase[None, :])[:, None, :]
        span = min(WEAK_WINDOW, n)
        scores = []
        for s0 in range(0, max(n - span, 0) + 1, max(1, span // 2)):
            w = v[:, :, s0 : s0 + span]
            kept = np.abs(w.sum(axis=-1)) ** 2 / ((np.abs(w) ** 2).sum(axis=-1) + 1e-30)
            scores.append(kept.sum() / channels)
        return float(np.median(scores)), centres * self.rate, f0


class HumAnalyzer:
    """Measures hum once per second from 2 s windows; keeps ~100 numbers per second."""

    def __init__(self, rate: int, channels: int, params: DehumParams) -> None:
        self.rate, self.channels, self.params = rate, channels, params
        self.seg = rate
        self.win = 2 * rate
        self.n_fft = sfft.next_fast_len(4 * self.win)
        self.buf = np.zeros((channels, 0), dtype=np.float32)
        self.buf_start = 0
        self.length = 0
        self.bases = (50.0, 60.0)
        nyq = 0.45 * rate
        self.max_h = {
            b: int(min(MAX_HUM_HZ, nyq) / (b * (1 + SEARCH_FRACTION))) for b in self.bases
        }
        self.centres: list[float] = []
        self.freqs: dict[float, list[np.ndarray]] = {b: [] for b in self.bases}
        self.proms: dict[float, list[np.ndarray]] = {b: [] for b in self.bases}
        #: complex spectrum at h * (the window's own fundamental), phase referred to the
        #: window centre, per channel: (channels, H) per window
        self.coefs: dict[float, list[np.ndarray]] = {b: [] for b in self.bases}
        self.prev_f0: dict[float, float | None] = {b: None for b in self.bases}
        self.windows: dict[int, np.ndarray] = {}
        self.weak = _WeakHum(rate, channels, self.bases + WEAK_NULLS)

    def update(self, block: np.ndarray) -> None:
        if not block.shape[1]:
            return
        self.length += block.shape[1]
        self.weak.update(block)
        self.buf = np.concatenate([self.buf, block.astype(np.float32, copy=False)], axis=1)
        while self.buf.shape[1] >= self.win:
            self._measure(self.buf[:, : self.win], self.buf_start)
            self.buf = self.buf[:, self.seg :]
            self.buf_start += self.seg

    def _measure(self, x: np.ndarray, start: int) -> None:
        n = x.shape[1]
        window = self.windows.get(n)
        if window is None:
            window = self.windows[n] = signal.windows.hann(n, sym=False)
        spec = sfft.rfft((x - x.mean(axis=1, keepdims=True)) * window, n=self.n_fft, axis=1)
        power = (spec.real**2 + spec.imag**2).sum(axis=0) + 1e-30
        self.centres.append(start + n / 2.0)
        for b in self.bases:
            hs = np.arange(1, self.max_h[b] + 1, dtype=np.float64)
            f0 = None
            prev = self.prev_f0[b]
            if prev is not None:
                # hum drifts slowly: first look near last second's fundamental
                half = TRACK_HZ * hs + _tolerance(hs)
                freqs, proms = self._peaks(power, hs * prev, half)
                f0 = _sieve(freqs, proms, hs, prev, TRACK_HZ)
            if f0 is None:
                # 1) the strongest peak near every nominal harmonic
                wide = np.maximum(0.6, SEARCH_FRACTION * hs * b)
                freqs, proms = self._peaks(power, hs * b, wide)
                # 2) harmonic sieve: the fundamental that puts most prominent peaks on h * f0
                f0 = _sieve(freqs, proms, hs, b, SEARCH_FRACTION * b)
            self.prev_f0[b] = f0
            # 3) re-measure every harmonic in a narrow window at h * f0: only a line that sits
            #    on the harmonic series (hum) scores there, music partials nearby do not
            fh = hs * (b if f0 is None else f0)
            freqs, proms = self._peaks(power, fh, _tolerance(hs))
            self.freqs[b].append(freqs)
            self.proms[b].append(proms)
            # the complex value at the nearest bin of the zero-padded spectrum, referred to the
            # window centre: a symmetric window's response to a sinusoid is then real (and
            # positive within the main lobe), so its phase is the sinusoid's phase at the
            # centre even when the frequency is a little off
            j = np.rint(fh * self.n_fft / self.rate).astype(np.int64)
            shift = np.exp(1j * np.pi * j * n / self.n_fft)
            self.coefs[b].append(spec[:, j] * shift[None, :])

    def _peaks(
        self, power: np.ndarray, centres: np.ndarray, half: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated peak frequency and prominence (dB) in ``centres +- half`` Hz."""
        df = self.rate / self.n_fft
        gap, reach = int(np.ceil(LINE_GAP_HZ / df)), int(BACKGROUND_HZ / df)
        freqs = np.full(centres.size, np.nan)
        proms = np.zeros(centres.size)
        # lines 80 dB below the window's total power are window leakage or rounding noise
        floor = 1e-8 * power.sum()
        for j, (f, w) in enumerate(zip(centres, half, strict=True)):
            lo = int(np.floor((f - w) / df))
            hi = max(int(np.ceil((f + w) / df)) + 1, lo + 3)
            k = lo + int(np.argmax(power[lo:hi]))
            if k - reach < 1 or k + reach >= power.size:
                continue
            # a line of its own: the highest point within LINE_GAP_HZ (not a slope, not the
            # side lobe of a stronger partial close by)
            if power[k] < power[k - gap : k + gap + 1].max() or power[k] < floor:
                continue
            # background: geometric mean of the two flanks' medians (exact on a dB slope)
            left = np.median(power[k - reach : k - gap])
            right = np.median(power[k + gap + 1 : k + reach + 1])
            proms[j] = 10.0 * np.log10(power[k] / np.sqrt(left * right))
            a, c, e = np.log(power[k - 1 : k + 2])
            den = a - 2.0 * c + e
            delta = 0.5 * (a - e) / den if den < 0 else 0.0
            freqs[j] = (k + np.clip(delta, -0.5, 0.5)) * df
        return freqs, proms

    def result(self) -> HumAnalysis:
        tail = self.length - (self.buf_start + self.seg) if self.centres else self.length
        if not self.centres or tail > self.seg // 4:
            # the end of the file (or all of a short one) in one last window
            take = min(self.win, self.length, self.buf.shape[1])
            if take >= self.rate // 4:
                self._measure(self.buf[:, -take:], self.buf_start + self.buf.shape[1] - take)
        return self._decide()

    def _decide(self) -> HumAnalysis:
        p = self.params
        none = HumAnalysis(None, (), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(0))
        if not self.centres:
            return none
        scores = {}
        medians = {}
        typical = {}
        for b in self.bases:
            # hum is there all the time: a line must stand out in 70 % of the windows (a
            # held note that happens to sit on a harmonic rarely lasts that long)
            stacked = np.stack(self.proms[b])
            med = np.percentile(stacked, 100 - PRESENCE, axis=0)
            medians[b] = med
            typical[b] = np.median(stacked, axis=0)
            strong = np.flatnonzero(med >= p.threshold_db) + 1
            # hum always carries one of its three lowest harmonics (the mains itself, the
            # rectifier's 100/120 Hz, the transformer's third). A note whose pitch is k times
            # a frequency near the mains (k >= 4, e.g. F4 = 7 x 49.9 Hz) mimics the upper series,
            # and a steady 1 kHz test tone is 20 x 50 Hz; neither has those low lines.
            series = bool(np.isin(strong, (1, 2, 3)).any())
            scores[b] = float(np.sum(np.maximum(med - p.threshold_db, 0.0))) if series else 0.0
        if p.mains == "auto":
            best = max(self.bases, key=lambda b: scores[b])
            if scores[best] <= 0.0:
                weak = self._weak(self.bases)
                if weak is None:
                    return HumAnalysis(None, (), none.knots, none.f0, none.phase, medians[best])
                return weak
        else:
            best = float(p.mains)
            if scores[best] <= 0.0:
                weak = self._weak((best,))
                if weak is not None:
                    return weak
        med = medians[best]
        if p.harmonics is not None:
            harmonics = tuple(range(1, min(p.harmonics, med.size) + 1))
        else:
            # once the mains is established by the strong lines, weaker harmonics count when
            # they stand out on the tracked series half of the time (6 dB lower threshold:
            # the narrow on-series measurement rarely lets a music partial score), but only
            # just above the strong ones (hum spectra fall off; far up, a held note is likelier)
            keep = max(HARMONIC_MIN_DB, p.threshold_db - 6.0)
            strong_top = int(np.flatnonzero(med >= p.threshold_db).max(initial=-1)) + 1
            weak = typical[best] >= keep
            harmonics = tuple(
                int(h)
                for h in range(1, med.size + 1)
                if med[h - 1] >= p.threshold_db or (weak[h - 1] and h <= strong_top + 2)
            )
            harmonics = _series(harmonics)
            if not harmonics:  # forced mains without visible hum: the fundamental only
                harmonics = (1,)
        freqs = np.stack(self.freqs[best])  # (K, H)
        proms = np.stack(self.proms[best])
        # the track follows the strong lines only (weak ones are removed, not trusted)
        strong = [h for h in harmonics if med[h - 1] >= p.threshold_db] or list(harmonics)
        idx = np.array(strong) - 1
        hs = np.array(strong, dtype=np.float64)
        f = freqs[:, idx]
        # weights as in the sieve: the error of f / h falls with the line's SNR and with h
        snr = 10.0 ** (np.minimum(proms[:, idx], 60.0) / 10.0)
        w = np.where(np.isfinite(f) & (proms[:, idx] >= p.threshold_db / 2), hs * snr, 0.0)
        num = np.nansum(np.where(w > 0, w * f / hs, 0.0), axis=1)
        den = w.sum(axis=1)
        f0 = np.full(den.size, np.nan)
        ok = den > 0
        f0[ok] = num[ok] / den[ok]
        lo, hi = best * (1 - SEARCH_FRACTION), best * (1 + SEARCH_FRACTION)
        f0 = np.where((f0 >= lo) & (f0 <= hi), f0, np.nan)
        knots = np.array(self.centres)
        good = np.isfinite(f0)
        if not good.any():
            f0 = np.full(knots.size, best)
        else:
            f0 = np.interp(np.arange(f0.size), np.flatnonzero(good), f0[good])
        if f0.size >= 3:
            # replace isolated outliers only: a median filter would flatten real drift
            smooth = ndimage.median_filter(f0, size=3, mode="nearest")
            f0 = np.where(np.abs(f0 - smooth) > 0.1, smooth, f0)
        # phase at the knots: integral of the piecewise-linear frequency
        w2 = 2.0 * np.pi / self.rate
        steps = w2 * 0.5 * (f0[1:] + f0[:-1]) * np.diff(knots)
        phase = np.mod(np.concatenate([[0.0], np.cumsum(steps)]), 2.0 * np.pi)
        rate_hz = np.abs(np.diff(f0)) / (np.diff(knots) / self.rate) if f0.size > 1 else [0.0]
        steer = bool(np.max(rate_hz) > STEER_RATE)
        coherence = np.zeros(med.size)
        if knots.size >= 2:
            ref = max(strong, key=lambda h: med[h - 1])
            coherence, adv = _coherence(np.stack(self.coefs[best]), knots, f0, self.rate, ref)
            if med[ref - 1] >= REFINE_DB:
                # a clear line: its measured phase steps pin the track down (a frequency
                # error of 0.02 Hz is 0.75 rad a second at the 6th harmonic)
                f0 = _fit_advances(f0, knots, adv, self.rate)
                steps = w2 * 0.5 * (f0[1:] + f0[:-1]) * np.diff(knots)
                phase = np.mod(np.concatenate([[0.0], np.cumsum(steps)]), 2.0 * np.pi)
            if p.harmonics is None:
                # a harmonic whose power is mostly phase-locked to the hum series is hum:
                # removing it gains more than the music taken with it (and vice versa)
                need = max(COHERENCE_MIN, COHERENCE_CHANCE / knots.size)
                top = max(harmonics) + COHERENCE_REACH
                extra = np.flatnonzero(coherence[:top] >= need) + 1
                harmonics = _series(tuple(sorted(set(harmonics) | {int(h) for h in extra})))
        return HumAnalysis(best, harmonics, knots, f0, phase, med, steer, coherence)

    def _weak(self, bases: tuple[float, ...]) -> HumAnalysis | None:
        """Hum that only :class:`_WeakHum` finds (forced ``bases`` has one entry): the
        analysis of its family, or None. The track is the weak tracker's; the harmonics to
        remove are left to the removal rule (the candidates, or 1..N when N is given)."""
        found = {b: self.weak.result(b) for b in self.bases}
        best = max(bases, key=lambda b: found[b][0])
        score = found[best][0]
        if score < WEAK_SCORE:
            return None
        others = [found[b][0] for b in self.bases if b != best]
        others += [self.weak.result(b)[0] for b in WEAK_NULLS]
        if score < WEAK_LEAD * max(others):
            return None
        _, knots, f0 = found[best]
        if self.params.harmonics is not None:
            harmonics = tuple(range(1, self.params.harmonics + 1))
        else:
            harmonics = tuple(range(1, WEAK_HARMONICS + 1))
        steps = 2.0 * np.pi / self.rate * 0.5 * (f0[1:] + f0[:-1]) * np.diff(knots)
        phase = np.mod(np.concatenate([[0.0], np.cumsum(steps)]), 2.0 * np.pi)
        prominence = np.percentile(np.stack(self.proms[best]), 100 - PRESENCE, axis=0)
        return HumAnalysis(best, harmonics, knots, f0, phase, prominence, weak=True)


def _highpass_sos(rate: int, remove_dc: bool, rumble_hz: float | None) -> np.ndarray | None:
    sections = []
    if remove_dc:
        sections.append(signal.butter(1, DC_HZ, btype="highpass", fs=rate, output="sos"))
    if rumble_hz is not None:
        corner = min(rumble_hz, 0.45 * rate)
        sections.append(signal.butter(2, corner, btype="highpass", fs=rate, output="sos"))
    return np.concatenate(sections) if sections else None


@register
class Dehum(Stage):
    name = "dehum"
    title = "Hum removal"
    summary = "Track and remove 50/60 Hz mains hum and its harmonics; optional DC/rumble filter."
    Params = DehumParams
    offers_removed = True

    def _block(self, rate: int) -> int:
        """Samples per demodulation block (10 ms)."""
        return max(1, rate // 100)

    def _kernel(self, rate: int) -> np.ndarray:
        return _hann_kernel(rate / self._block(rate), self.params.bandwidth_hz)

    def alignment_frames(self, rate: int) -> int:
        return self._block(rate)

    def context_frames(self, rate: int) -> int:
        # the weights, the gain and the phase correction are themselves smoothed: the estimate
        # depends on the signal up to two long kernels plus a short one away
        block_rate = rate / self._block(rate)
        short = _hann_kernel(block_rate, PHASE_HZ).size
        half = (2 * self._kernel(rate).size + short + 4) * self._block(rate)
        settle = int(0.6 * rate) if (self.params.remove_dc or self.params.rumble_hz) else 0
        return half + settle

    def preferred_block_frames(self, rate: int) -> int:
        # the context is long (tens of seconds); four times that keeps the windows' memory
        # moderate (~250 s at 44.1 kHz) while the context costs a third of the work. At high
        # rates the block is held near 2^23 frames (87 s at 96 kHz, where the working arrays of
        # a 250 s stereo window need ~1.5 GB), at least twice the context
        context = self.context_frames(rate)
        return max(2 * context, min(4 * context, 1 << 23))

    def analyzer(self, rate: int, channels: int) -> HumAnalyzer:
        return HumAnalyzer(rate, channels, self.params)

    def findings(self, analysis: HumAnalysis | None) -> dict[str, object]:
        if analysis is None:
            return {}
        if analysis.mains_hz is None:
            return {"mains_hz": None, "summary": "no mains hum found (left as it is)"}
        harmonics = list(analysis.harmonics)
        if self.params.harmonics is None:
            # the removal also weighs the first CANDIDATES harmonics, each by hum vs music
            harmonics = sorted(set(harmonics) | set(range(1, CANDIDATES + 1)))
        lo, hi = float(np.min(analysis.f0)), float(np.max(analysis.f0))
        how = "under the music, by its phase" if analysis.weak else "in the spectrum"
        return {
            "mains_hz": analysis.mains_hz,
            "found_by": "phase" if analysis.weak else "spectrum",
            "harmonics": harmonics,
            "fundamental_hz": [round(lo, 3), round(hi, 3)],
            "summary": f"{analysis.mains_hz:g} Hz hum found {how}; fundamental "
            f"{lo:.2f}-{hi:.2f} Hz; removal weighs harmonics {', '.join(map(str, harmonics))}",
        }

    def process(
        self,
        audio: np.ndarray,
        rate: int,
        *,
        analysis: HumAnalysis | None = None,
        offset: int = 0,
    ) -> np.ndarray:
        if analysis is None:
            analysis = self.analyze(audio, rate)
        out = audio.astype(np.float64)
        frames = audio.shape[1]
        if analysis.mains_hz is not None and frames:
            out -= self.hum(out, rate, analysis, offset)
        sos = _highpass_sos(rate, self.params.remove_dc, self.params.rumble_hz)
        if sos is not None and frames > 3 * (2 * sos.shape[0] + 1):
            out = signal.sosfiltfilt(sos, out, axis=1)
        return out.astype(np.float32)

    def hum(
        self,
        audio: np.ndarray,
        rate: int,
        analysis: HumAnalysis,
        offset: int = 0,
        *,
        steer: np.ndarray | None = None,
    ) -> np.ndarray:
        """Estimate of the hum in ``audio`` (a window starting at file frame ``offset``).

        Every candidate harmonic (those of the analysis and, with the automatic set, the first
        ``CANDIDATES``) is demodulated with the tracked phase to 10 ms block means. At that
        block rate (i) the fundamental's phase is refined on all harmonics together
        (:func:`_refine_phase`), (ii) each harmonic's complex amplitude is a robust average
        over a Hann window of about ``1 / bandwidth_hz`` seconds, and (iii) it is removed
        where the hum outweighs the music left in that average (:func:`_robust_amplitude`).

        Parameters
        ----------
        audio : np.ndarray [shape=(channels, frames)]
        steer : np.ndarray [shape=(channels, frames)], optional
            Signal the phase correction and the gains are measured on (default: ``audio``).
            Given them, the estimate is linear in ``audio``; a benchmark can thus apply the
            very same operator to the parts of a mixture.

        Returns
        -------
        np.ndarray [shape=(channels, frames), dtype=float64]
        """
        frames = audio.shape[1]
        r = self._block(rate)
        if offset % r:
            raise ValueError(f"dehum offset must be a multiple of {r}, got {offset}")
        if analysis.mains_hz is None or not frames:
            return np.zeros_like(audio, dtype=np.float64)
        phase = _phase_track(analysis, offset, frames, rate, r)
        top = float(np.max(analysis.f0))
        limit = 0.48 * rate / top
        wanted = set(analysis.harmonics)
        if self.params.harmonics is None:
            wanted |= set(range(1, CANDIDATES + 1))
        harmonics = sorted(h for h in wanted if h < limit)
        if not harmonics:
            return np.zeros_like(audio, dtype=np.float64)
        block_rate = rate / r
        demod = _Demodulator(frames, r, block_rate)
        source = audio if steer is None else steer
        # refine the phase with the strongest harmonic: the per-second track cannot follow
        # faster frequency wobble (wow of the carrier), a 2 Hz wide look at one line can
        ref = max(analysis.harmonics, key=lambda h: analysis.prominence_db[h - 1])
        if analysis.steer and analysis.prominence_db[ref - 1] >= REFINE_DB:
            carrier = np.exp(1j * np.mod(ref * phase, 2.0 * np.pi))
            amp = demod.smooth(source * np.conj(carrier), _hann_kernel(block_rate, REFINE_HZ))
            # the line's phase relative to the tracked one, divided back to the fundamental;
            # a constant offset is irrelevant (it is absorbed into each harmonic's amplitude)
            theta = np.unwrap(np.angle(amp.sum(axis=0))) / ref
            phase = phase + demod.upsample(theta[None, :])[0]
        hs = np.array(harmonics, dtype=np.float64)
        z = _demodulate(source, phase, harmonics, r)
        long = _hann_kernel(block_rate, self.params.bandwidth_hz)
        delta = _refine_phase(demod, z, hs, long, _hann_kernel(block_rate, PHASE_HZ))
        turn = np.exp(-1j * hs[:, None] * delta[None, :])[:, None, :]  # (H, 1, chunks)
        zs = z * turn
        za = zs if steer is None else _demodulate(audio, phase, harmonics, r) * turn
        amp = _robust_amplitude(demod, zs, za, long, _hann_kernel(block_rate, NOISE_HZ))
        return _remodulate(amp / turn, phase, harmonics, r)


#: frames demodulated or re-modulated at once (bounds the memory of long windows)
PIECE = 1 << 17


def _phase_track(analysis: HumAnalysis, offset: int, frames: int, rate: int, r: int) -> np.ndarray:
    """Tracked phase of the fundamental at every frame (radians, float64).

    Exact (:meth:`HumAnalysis.phase_at`) at the start of every ``r``-frame block, advancing at
    the block's starting frequency inside it: the frequency changes by at most ~1e-3 Hz within a
    block, a phase error below 1e-5 rad. Computed on the block grid of the file, so a window
    gets the same values as the whole file.
    """
    chunks = -(-frames // r)
    starts = offset + r * np.arange(chunks)
    base = analysis.phase_at(starts, rate)
    step = (2.0 * np.pi / rate) * analysis.f0_at(starts)
    return (base[:, None] + step[:, None] * np.arange(r)[None, :]).ravel()[:frames]


def _carriers(phase: np.ndarray, harmonics: list[int]):
    """Yield ``(index, exp(i h phase))`` (complex64) for the wanted harmonics, by repeated
    multiplication of the fundamental's carrier (one cosine and one sine in all; the rounding
    error grows like ``h * 1e-7``, far below the hum that is left)."""
    wrapped = np.mod(phase, 2.0 * np.pi).astype(np.float32)
    base = np.empty(phase.size, dtype=np.complex64)
    base.real = np.cos(wrapped)
    base.imag = np.sin(wrapped)
    c = base
    wanted = {h: i for i, h in enumerate(harmonics)}
    for h in range(1, harmonics[-1] + 1):
        if h > 1:
            c = c * base
        if h in wanted:
            yield wanted[h], c


def _demodulate(audio: np.ndarray, phase: np.ndarray, harmonics: list[int], r: int) -> np.ndarray:
    """Block means (``r`` frames) of ``audio * exp(-i h phase)`` for each harmonic ``h``.

    Returns
    -------
    np.ndarray [shape=(H, channels, chunks), dtype=complex128]
    """
    channels, frames = audio.shape
    chunks = -(-frames // r)
    z = np.zeros((len(harmonics), channels, chunks), dtype=np.complex128)
    step = max(r, PIECE // r * r)
    for start in range(0, frames, step):
        stop = min(frames, start + step)
        x = audio[:, start:stop].astype(np.float32)
        n = stop - start
        pad = -n % r
        c0 = start // r
        for i, c in _carriers(phase[start:stop], harmonics):
            y = x * np.conj(c)
            if pad:
                y = np.concatenate([y, np.zeros((channels, pad), dtype=y.dtype)], axis=1)
            z[i, :, c0 : c0 + y.shape[1] // r] = y.reshape(channels, -1, r).sum(axis=2)
    counts = np.full(chunks, float(r))
    counts[-1] = frames - (chunks - 1) * r
    return z / counts


def _remodulate(amp: np.ndarray, phase: np.ndarray, harmonics: list[int], r: int) -> np.ndarray:
    """``sum_h 2 Re(amp_h(t) exp(i h phase))`` with the block amplitudes [shape=(H, channels,
    chunks)] held over each block, summed in float32; returns (channels, frames) float64.

    Holding instead of interpolating is exact enough: the amplitudes vary at most at
    ``PHASE_HZ``, so the step from one 10 ms block to the next is ~60 dB below the line.
    """
    channels, chunks = amp.shape[1:]
    frames = phase.size
    amp = (2.0 * amp).astype(np.complex64)
    out = np.zeros((channels, chunks * r), dtype=np.float32)
    step = max(1, PIECE // r)
    for c0 in range(0, chunks, step):
        c1 = min(chunks, c0 + step)
        start, stop = c0 * r, min(frames, c1 * r)
        view = out[:, c0 * r : c1 * r].reshape(channels, c1 - c0, r)
        for i, c in _carriers(phase[start:stop], harmonics):
            if stop - start < (c1 - c0) * r:
                c = np.concatenate([c, np.zeros((c1 - c0) * r - (stop - start), c.dtype)])
            c = c.reshape(c1 - c0, r)
            a = amp[i, :, c0:c1, None]
            view += a.real * c.real - a.imag * c.imag
    return out[:, :frames].astype(np.float64)


def _hann_kernel(block_rate: float, bandwidth_hz: float) -> np.ndarray:
    """Hann smoothing kernel at ``block_rate`` whose -6 dB point is at ``bandwidth_hz``."""
    length = max(3, round(block_rate / bandwidth_hz) | 1)
    return signal.windows.hann(length + 2)[1:-1]


class _Demodulator:
    """Block averaging, smoothing and linear re-interpolation on a 10 ms block grid.

    Block ``c`` of a window covers samples ``[c*r, (c+1)*r)``; since windows start on the
    block grid, the blocks are the same in a block-wise run as in a whole-file run.
    """

    def __init__(self, frames: int, r: int, block_rate: float = 100.0) -> None:
        self.frames, self.r, self.block_rate = frames, r, block_rate
        self.chunks = -(-frames // r)
        self.pad = self.chunks * r - frames
        self.counts = np.full(self.chunks, float(r))
        self.counts[-1] = r - self.pad

    def means(self, z: np.ndarray) -> np.ndarray:
        """Block means of ``z`` [shape=(channels, frames)], shape (channels, chunks)."""
        channels = z.shape[0]
        if self.pad:
            z = np.concatenate([z, np.zeros((channels, self.pad), dtype=z.dtype)], axis=1)
        return z.reshape(channels, self.chunks, self.r).sum(axis=2) / self.counts

    def convolve(self, blocks: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """Block values [shape=(..., chunks)] smoothed by ``kernel`` (normalised convolution,
        so the estimate stays unbiased near the ends of the window)."""
        support = signal.oaconvolve(np.ones(self.chunks), kernel, mode="same")
        shape = (1,) * (blocks.ndim - 1) + (kernel.size,)
        return signal.oaconvolve(blocks, kernel.reshape(shape), mode="same", axes=-1) / support

    def smooth(self, z: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """Block means of ``z`` [shape=(channels, frames)] smoothed by ``kernel``."""
        return self.convolve(self.means(z), kernel)

    def upsample(self, blocks: np.ndarray) -> np.ndarray:
        """Linear interpolation of block values [shape=(channels, chunks)] to every sample."""
        centre = (np.arange(self.frames) - (self.r - 1) / 2.0) / self.r  # in block units
        i0 = np.clip(np.floor(centre).astype(np.int64), 0, self.chunks - 1)
        i1 = np.minimum(i0 + 1, self.chunks - 1)
        frac = np.clip(centre - i0, 0.0, 1.0)
        return blocks[:, i0] * (1.0 - frac) + blocks[:, i1] * frac


def _refine_phase(
    demod: _Demodulator, z: np.ndarray, hs: np.ndarray, long: np.ndarray, short: np.ndarray
) -> np.ndarray:
    """Correction (radians, per block) to the fundamental's tracked phase, from all harmonics.

    A frequency error of the track turns harmonic ``h`` by ``h`` times the fundamental's phase
    error ``delta``. Each harmonic's short-term amplitude ``a`` (``short`` kernel) is compared
    with its long-term amplitude ``b`` (``long`` kernel): ``Im(conj(b) a) = h |b|^2 delta``
    plus music. The weighted least-squares solution over harmonics and channels, each harmonic
    weighted by the inverse of its local music power (the variance of ``a - b``), is linear
    in the data and as precise as the strongest, cleanest lines allow.

    Parameters
    ----------
    z : np.ndarray [shape=(H, channels, chunks), dtype=complex]
        Block means of the signal demodulated at each harmonic of the tracked phase.
    hs : np.ndarray [shape=(H,)]
        The harmonic numbers.

    Returns
    -------
    np.ndarray [shape=(chunks,)]
    """
    b = demod.convolve(z, long)
    a = demod.convolve(z, short)
    noise = demod.convolve(np.sum(np.abs(a - b) ** 2, axis=1), short) + 1e-30  # (H, chunks)
    num = np.sum(hs[:, None] * np.sum((np.conj(b) * a).imag, axis=1) / noise, axis=0)
    den = np.sum(hs[:, None] ** 2 * np.sum(np.abs(b) ** 2, axis=1) / noise, axis=0)
    return num / np.maximum(den, 1e-30)


def _robust_amplitude(
    demod: _Demodulator, zs: np.ndarray, za: np.ndarray, long: np.ndarray, mid: np.ndarray
) -> np.ndarray:
    """Hum amplitude of each harmonic: a robust long-term mean, kept where hum outweighs music.

    ``a``, the line seen through the ``mid`` kernel, is steady where only hum is there; music
    passing near the line (a sung or bowed partial sweeping through, a note's attack) makes it
    swing away for a while. Each block is weighted by ``1 / (1 + |a - b|^2 / s)^2`` (``b`` the
    plain mean over the ``long`` kernel, ``s`` the mean of ``|a - b|^2`` there: blocks that
    deviate by more than the typical amount count little), so the mean rests on the moments
    where the line is steady. The music that still passes has the power ``noise`` (from the
    weighted residuals and the ratio of the two kernels' noise bandwidths). A faster
    (``LEVEL_HZ``) weighted average replaces the slow one where the two differ by more than
    four times the fast one's music noise (the hum's level or phase changed). The line is
    removed whole when its power is twice the noise (then the hum outweighs the music in it),
    not at all below the music's, linearly in between.

    Parameters
    ----------
    zs, za : np.ndarray [shape=(H, channels, chunks), dtype=complex]
        Phase-corrected block means of the steering signal and of the signal to estimate.

    Returns
    -------
    np.ndarray [shape=(H, channels, chunks), dtype=complex]
    """
    a = demod.convolve(zs, mid)
    e = np.sum(np.abs(a - demod.convolve(zs, long)) ** 2, axis=1)  # (H, chunks)
    scale = demod.convolve(e, long) + 1e-30
    w = 1.0 / (1.0 + e / scale) ** 2
    fast = _hann_kernel(demod.block_rate, LEVEL_HZ)

    def estimate(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # the music left in the weighted average: the weighted power of the look's deviation
        # from this kernel's own plain average (not the slow one's: a level change is not
        # music), scaled by the kernels' noise bandwidths
        dev = np.sum(np.abs(a - demod.convolve(zs, kernel)) ** 2, axis=1)
        norm = demod.convolve(w, kernel)
        b = demod.convolve(w[:, None, :] * a, kernel) / norm[:, None, :]
        noise = _noise_ratio(kernel, mid) * demod.convolve(w * w * dev, kernel) / norm**2
        return norm, b, noise

    norm_l, b_l, noise_l = estimate(long)
    norm_f, b_f, noise_f = estimate(fast)
    # the hum's level or phase has moved when the fast average departs from the slow one by
    # more than its own music noise explains (4x its variance: by chance 2 % of the time)
    change = np.sum(np.abs(b_f - b_l) ** 2, axis=1)
    lam = np.clip(change / (4.0 * noise_f + 1e-30) - 1.0, 0.0, 1.0)
    b = b_l + lam[:, None, :] * (b_f - b_l)
    noise = noise_l + lam * (noise_f - noise_l)
    power = np.sum(np.abs(b) ** 2, axis=1)
    gain = np.clip(power / (noise + 1e-30) - 1.0, 0.0, 1.0)
    if za is not zs:
        a = demod.convolve(za, mid)
        b_l = demod.convolve(w[:, None, :] * a, long) / norm_l[:, None, :]
        b_f = demod.convolve(w[:, None, :] * a, fast) / norm_f[:, None, :]
        b = b_l + lam[:, None, :] * (b_f - b_l)
    return b * gain[:, None, :]


def _noise_ratio(kernel: np.ndarray, mid: np.ndarray) -> float:
    """Noise bandwidth of the normalised ``kernel`` over that of ``mid - kernel``."""
    size = max(kernel.size, mid.size)
    kl = np.zeros(size)
    km = np.zeros(size)
    kl[(size - kernel.size) // 2 :][: kernel.size] = kernel / kernel.sum()
    km[(size - mid.size) // 2 :][: mid.size] = mid / mid.sum()
    return float(np.sum(kl**2) / np.sum((km - kl) ** 2))
