"""Restore the top octave that a band-limited transfer lost ("air").

Many transfers stop at a bandwidth well below Nyquist: an acoustic 78 at 5-6 kHz, a broadcast
dub at 8-10 kHz, an MP3 at 16 kHz. Nothing of the original survives above that edge, but the
ear expects the harmonics the instruments had. This stage

1. finds the edge in an analysis pass: the long-term spectrum (Hann frames, all channels) is
   searched for the steepest fall of its smoothed level (at least 15 dB within about a sixth
   of an octave, with the level above staying down); the slope (dB/octave) of the octave below
   the edge is measured too;
2. generates harmonics: the octave just below the edge is isolated (STFT mask) and full-wave
   rectified, which creates its second harmonics and sum tones one octave up, i.e. exactly in
   the missing octave; this excitation is whitened (divided by its geometric mean over ~1/10
   octave) and shaped, frame by frame, to an envelope continued from below the edge: the
   geometric mean level (mean of the log power, which is what a log-spectral comparison
   matches, and what is robust to harmonic peaks) of the sixth-octaves under the edge,
   extended with the frame's own slope over that octave, never shallower than the file's
   long-term slope, made ``SLOPE_BIAS`` steeper and never rising. Only what the residue above
   the edge lacks is filled. ``amount`` scales it;
3. adds a high shelf (``shelf_db``) to whatever residue is left above the edge.

Both additions are masked to zero below the edge (plus a guard of a few bins), so the stage
never adds energy below the cutoff it detected; ``mix`` blends the addition into the dry signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from audio_restorer.stages._tone_stft import fft_size, istft, stft
from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

_GUARD_BINS = 3
#: the excitation is whitened over this many bins (~1/10 octave at 4 kHz, 2048 points)
WHITEN_BINS = 9
#: the continued slope is made this much steeper (dB/octave) than the one measured under the
#: edge: real spectra fall faster the higher they go (fitted on 10 clips x 3-11 kHz cutoffs,
#: best 4-12; 8 is the middle)
SLOPE_BIAS = 8.0
#: level offset of the continued envelope (dB): conservative, adding too much costs more
#: than adding too little on material that had little above the edge
OFFSET_DB = -3.0
#: how far above the edge the generated band reaches (octaves)
OCTAVES = 1.0  # Hann main-lobe half-width plus one: keeps leakage out of the band below


@dataclass(frozen=True)
class AirParams(StageParams):
    amount: float = param(
        0.7,
        min=0.0,
        max=1.0,
        step=0.05,
        help="Level of the generated top octave; 1 continues the spectral slope below the edge.",
    )
    shelf_db: float = param(
        3.0,
        min=0.0,
        max=12.0,
        step=0.5,
        unit="dB",
        help="Boost of the residue above the edge (a high shelf starting at the edge).",
    )
    mix: float = param(
        1.0, min=0.0, max=1.0, step=0.05, help="Dry/wet: 0 returns the input unchanged."
    )
    cutoff_hz: float | None = param(
        None,
        min=1000.0,
        max=48000.0,
        step=50.0,
        unit="Hz",
        help="Bandwidth edge; unset = detect it from the long-term spectrum.",
    )
    slope_db_per_oct: float | None = param(
        None,
        min=-30.0,
        max=0.0,
        step=0.5,
        unit="dB/oct",
        help="Spectral slope continued above the edge; unset = measure the octave below.",
    )


@dataclass(frozen=True)
class AirAnalysis:
    cutoff_hz: float | None  # None: no band limit found
    slope_db_per_oct: float
    drop_db: float  # how far the spectrum falls at the edge


class SpectrumAnalyzer:
    """Long-term power spectrum (mean over channels and 4096-sample-ish Hann frames)."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.n = fft_size(rate, 4096)
        self.window = np.hanning(self.n)
        self.partial = np.zeros((channels, 0))
        self.power = np.zeros(self.n // 2 + 1)
        self.count = 0

    def update(self, block: np.ndarray) -> None:
        data = np.concatenate([self.partial, block.astype(np.float64)], axis=1)
        full = data.shape[1] // self.n
        if full:
            frames = data[:, : full * self.n].reshape(data.shape[0], full, self.n)
            spec = np.fft.rfft(frames * self.window, axis=-1)
            self.power += np.sum(np.abs(spec) ** 2, axis=(0, 1))
            self.count += full * data.shape[0]
        self.partial = data[:, full * self.n :]

    def spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        power = self.power.copy()
        count = self.count
        if self.partial.shape[1] >= self.n // 4:  # a short file: use the zero-padded tail
            frame = np.zeros((self.partial.shape[0], self.n))
            frame[:, : self.partial.shape[1]] = self.partial
            power += np.sum(np.abs(np.fft.rfft(frame * self.window, axis=-1)) ** 2, axis=0)
            count += self.partial.shape[0]
        freqs = np.fft.rfftfreq(self.n, 1.0 / self.rate)
        return freqs, power / max(count, 1)


#: the roll-off above an edge must fall at least this fast (dB/octave)...
MIN_ROLLOFF_DB_PER_OCT = 30.0
#: ...and this much faster than the music's own slope in the octave below
MIN_CONTRAST_DB_PER_OCT = 24.0
#: the octave below an edge must fall no faster than this (music's own slope); a spectrum
#: already falling steeply there (a dark synthesised piano) is a natural roll-off
MIN_MUSIC_SLOPE_DB_PER_OCT = -18.0
#: edges above this fraction of Nyquist (renders and MP3s at 16+ kHz) are left alone
MAX_EDGE_NYQ = 0.7
#: points per octave of the log-frequency grid the edge is searched on
_PER_OCT = 48


def _mean_between(csum: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the values whose cumulative sum is ``csum`` over index ranges [lo, hi)."""
    return (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)


def detect_bandwidth(
    freqs: np.ndarray, power: np.ndarray, *, min_drop_db: float = 15.0
) -> AirAnalysis:
    """Find the band edge of a low-passed transfer in its long-term power spectrum.

    The level (dB, smoothed over ~1/12 octave so harmonic gaps do not count) is put on a
    log-frequency grid and described, around every candidate edge ``f``, by two segments: the
    music's own slope over the octave below (difference of the mean levels of its two
    half-octaves) and the roll-off over the third of an octave above (difference of its two
    sixth-octaves). An edge needs a roll-off of at least ``MIN_ROLLOFF_DB_PER_OCT`` that is
    ``MIN_CONTRAST_DB_PER_OCT`` steeper than the slope below, and the level further up (from
    half an octave above on, a noise floor included) must stay ``min_drop_db`` below the level
    at the edge. A zero-phase 4th-order Butterworth (48 dB/oct) and brick walls both pass;
    music's natural high-frequency fall (6-20 dB/oct) does not. Of the candidates the one with
    the largest contrast is the knee.

    Parameters
    ----------
    freqs : np.ndarray [shape=(bins,)]
        Bin frequencies in Hz.
    power : np.ndarray [shape=(bins,)]
        Long-term power per bin.

    Returns
    -------
    AirAnalysis
        ``cutoff_hz`` is the frequency where the level has fallen 6 dB below the level of the
        band under the edge, or None when no edge is found.
    """
    peak = np.max(power) if power.size else 0.0
    if peak <= 0 or freqs.size < 16:
        return AirAnalysis(None, -6.0, 0.0)
    level = 10.0 * np.log10(power / peak + 1e-14)
    nyq = freqs[-1]
    lo_hz = 500.0
    if nyq < 4 * lo_hz:
        return AirAnalysis(None, -6.0, 0.0)
    grid = lo_hz * 2.0 ** (np.arange(int(np.log2(nyq / lo_hz) * _PER_OCT) + 1) / _PER_OCT)
    # mean over ~1/12 octave of bins around every point of the log grid
    step = freqs[1] - freqs[0]
    bins = np.maximum(1, (grid * 0.06 / step).astype(int))  # 1/12 octave in bins, per point
    csum_lin = np.concatenate([[0.0], np.cumsum(level)])
    idx = np.searchsorted(freqs, grid)
    g_lo = np.clip(idx - bins // 2, 0, freqs.size - 1)
    g_hi = np.clip(idx + bins // 2 + 1, 1, freqs.size)
    g = _mean_between(csum_lin, g_lo, g_hi)
    n = g.size
    csum = np.concatenate([[0.0], np.cumsum(g)])
    k = np.arange(n)
    o, h, s6, t3 = _PER_OCT, _PER_OCT // 2, _PER_OCT // 6, _PER_OCT // 3
    valid = (k >= o) & (k + t3 < n)
    kk = k[valid]
    below = (_mean_between(csum, kk - h, kk) - _mean_between(csum, kk - o, kk - h)) / 0.5
    above = (_mean_between(csum, kk + s6, kk + t3) - _mean_between(csum, kk, kk + s6)) / (1 / 6)
    # the level from half an octave above the edge to Nyquist stays down (floor included)
    suffix_max = np.maximum.accumulate(g[::-1])[::-1]
    far = np.where(kk + h < n, suffix_max[np.minimum(kk + h, n - 1)], -np.inf)
    edge_level = _mean_between(csum, kk - s6, kk)
    drop = edge_level - far
    contrast = below - above
    ok = (
        (above <= -MIN_ROLLOFF_DB_PER_OCT)
        & (contrast >= MIN_CONTRAST_DB_PER_OCT)
        & (drop >= min_drop_db)
        & (grid[kk] >= 1500.0)
        & (grid[kk] <= MAX_EDGE_NYQ * nyq)
        & (below >= MIN_MUSIC_SLOPE_DB_PER_OCT)
    )
    if not np.any(ok):
        return AirAnalysis(None, -6.0, float(np.max(drop, initial=0.0)))
    best = int(np.argmax(np.where(ok, contrast, -np.inf)))
    best_k = int(kk[best])
    knee_hz = float(grid[best_k])
    # walk down the edge on the bins, median-smoothed over ~1/24 octave (harmonic gaps are
    # not the edge), from the reference level of the sixth of an octave under the knee
    kb = int(np.searchsorted(freqs, knee_hz))
    start = int(np.searchsorted(freqs, knee_hz * 2.0 ** (-1 / 3)))
    ref = float(
        np.median(
            level[start : max(start + 1, int(np.searchsorted(freqs, knee_hz * 2.0 ** (-1 / 6))))]
        )
    )
    smooth = ndimage.median_filter(level, size=max(3, int(kb * 0.06)), mode="nearest")
    j = int(np.searchsorted(freqs, knee_hz * 2.0 ** (-1 / 12)))
    while j < freqs.size - 1 and smooth[j] > ref - 6.0:
        j += 1
    cutoff = float(freqs[j])
    band = (freqs >= cutoff / 2) & (freqs <= 0.9 * cutoff)
    slope = -6.0
    if np.count_nonzero(band) >= 4:
        slope = float(np.polyfit(np.log2(freqs[band]), level[band], 1)[0])
    return AirAnalysis(cutoff, float(np.clip(slope, -30.0, -3.0)), float(drop[best]))


class AirAnalyzer(SpectrumAnalyzer):
    def result(self) -> AirAnalysis:
        freqs, power = self.spectrum()
        return detect_bandwidth(freqs, power)


def _ramp(freqs: np.ndarray, start: float, stop: float) -> np.ndarray:
    """0 below ``start``, raised cosine to 1 at ``stop``."""
    x = np.clip((freqs - start) / max(stop - start, 1e-9), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


@register
class Air(Stage):
    name = "air"
    title = "Air (bandwidth extension)"
    summary = "Restores the lost top octave above a detected bandwidth: harmonics plus a shelf."
    Params = AirParams

    def n_fft(self, rate: int) -> int:
        return fft_size(rate, 2048)

    def context_frames(self, rate: int) -> int:
        return 3 * self.n_fft(rate)

    def alignment_frames(self, rate: int) -> int:
        return self.n_fft(rate) // 4

    def analyzer(self, rate: int, channels: int) -> AirAnalyzer | None:
        p = self.params
        if p.cutoff_hz is not None and p.slope_db_per_oct is not None:
            return None
        return AirAnalyzer(rate, channels)

    def findings(self, analysis: AirAnalysis | None) -> dict[str, object]:
        if analysis is None:
            return {}
        if analysis.cutoff_hz is None:
            return {"cutoff_hz": None, "summary": "no band limit found (left as it is)"}
        return {
            "cutoff_hz": round(analysis.cutoff_hz, 1),
            "slope_db_per_oct": round(analysis.slope_db_per_oct, 1),
            "summary": f"band limit found at {analysis.cutoff_hz:.0f} Hz "
            f"(falling {analysis.slope_db_per_oct:.1f} dB/octave)",
        }

    def settings(self, analysis: AirAnalysis | None) -> tuple[float | None, float]:
        """The cutoff (Hz) and slope (dB/octave) used, from the parameters or the analysis."""
        p = self.params
        cutoff = p.cutoff_hz if p.cutoff_hz is not None else getattr(analysis, "cutoff_hz", None)
        slope = p.slope_db_per_oct
        if slope is None:
            slope = analysis.slope_db_per_oct if analysis is not None else -6.0
        return cutoff, slope

    def process(
        self,
        audio: np.ndarray,
        rate: int,
        *,
        analysis: AirAnalysis | None = None,
        offset: int = 0,
    ) -> np.ndarray:
        p = self.params
        cutoff, slope = self.settings(analysis)
        nyq = rate / 2
        if cutoff is None or cutoff > 0.92 * nyq or p.mix == 0 or not audio.shape[1]:
            return audio.copy()
        n = self.n_fft(rate)
        x = audio.astype(np.float64)
        freqs = np.fft.rfftfreq(n, 1.0 / rate)
        df = freqs[1]
        spec = stft(x, n)
        power = spec.real**2 + spec.imag**2

        # 1. excitation: the octave below the edge, full-wave rectified (its 2nd harmonics and
        #    sum tones fill the octave above), whitened over ~1/10 octave
        source_mask = _ramp(freqs, cutoff / 2, cutoff / 2 * 1.15) * (
            1 - _ramp(freqs, cutoff - 4 * df, cutoff - df)
        )
        source = istft(spec * source_mask, n, x.shape[1])
        generated = stft(np.abs(source), n)
        edge = cutoff
        top = min(cutoff * 2**OCTAVES, nyq)
        hi_mask = _ramp(freqs, edge, edge + 0.1 * cutoff) * (1 - _ramp(freqs, 0.9 * top, top))
        # work on the bins that receive energy only, with margin for the smoothing filters
        pad = WHITEN_BINS // 2
        k0 = max(int(np.searchsorted(freqs, edge)) - pad, 0)
        k1 = min(int(np.searchsorted(freqs, top, side="right")) + pad, freqs.size)
        g_band = generated[..., k0:k1]
        g_power = g_band.real**2 + g_band.imag**2
        g_smooth = 10.0 ** (
            ndimage.uniform_filter1d(np.log10(g_power + 1e-30), size=WHITEN_BINS, axis=-1)
        )

        # 2. envelope, frame by frame: the geometric-mean level of the third-octave under the
        #    edge, continued upwards with the slope between the two upper thirds of the octave
        #    below, never shallower than the file's long-term slope, made SLOPE_BIAS steeper
        #    (music falls faster the higher it goes) and never rising
        def band_db(lo: float, hi: float) -> np.ndarray:
            sel = (freqs >= lo) & (freqs < hi)
            return np.mean(10.0 * np.log10(power[..., sel] + 1e-20), axis=-1)

        lo_db = band_db(cutoff * 2 ** (-1.0), cutoff * 2 ** (-2 / 3))
        hi_db = band_db(cutoff * 2 ** (-2 / 3), cutoff * 2 ** (-1 / 3))
        frame_slope = (hi_db - lo_db) / (1 / 3)
        s = np.minimum(frame_slope, slope) - SLOPE_BIAS
        s = np.clip(s, -40.0, 0.0)[..., None]
        f_ref = cutoff * 2 ** (-1 / 2)
        octs = np.log2(freqs[k0:k1] / f_ref)
        target_db = hi_db[..., None] + s * octs + 10 * np.log10(max(p.amount, 1e-6)) + OFFSET_DB
        target = 10.0 ** (target_db / 10.0)
        # fill only what the residue above the edge does not already carry
        resid = ndimage.uniform_filter1d(power[..., k0:k1], size=WHITEN_BINS, axis=-1)
        fill = np.maximum(target - resid, 0.0)
        scale = np.sqrt(fill / (g_smooth + 1e-12 * target + 1e-30))
        added = np.zeros_like(spec)
        added[..., k0:k1] = g_band * scale * hi_mask[k0:k1]

        # 3. high shelf on the residue above the edge
        shelf = 10.0 ** (p.shelf_db / 20.0) - 1.0
        if shelf:
            added = added + spec * (shelf * _ramp(freqs, edge, edge + 0.12 * cutoff))
        out = x + p.mix * istft(added, n, x.shape[1])
        return out.astype(np.float32)
