"""Restore the top octave that a band-limited transfer lost ("air").

Many transfers stop at a bandwidth well below Nyquist: an acoustic 78 at 5-6 kHz, a broadcast
dub at 8-10 kHz, an MP3 at 16 kHz. Nothing of the original survives above that edge, but the
ear expects the harmonics the instruments had. This stage

1. finds the edge in an analysis pass: the long-term spectrum (Hann frames, all channels) is
   searched for the steepest fall of its smoothed level (at least 15 dB within about a sixth
   of an octave, with the level above staying down); the slope (dB/octave) of the octave below
   the edge is measured too;
2. generates harmonics: the octave just below the edge is isolated (STFT mask) and full-wave
   rectified, which creates its second harmonics one octave up, i.e. exactly in the missing
   octave; their spectral envelope is replaced, frame by frame, by the level just below the
   edge continued with the measured slope, so the new band follows the music's own envelope and
   tone colour; ``amount`` scales it;
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

_GUARD_BINS = 3  # Hann main-lobe half-width plus one: keeps leakage out of the band below


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


def detect_bandwidth(
    freqs: np.ndarray, power: np.ndarray, *, min_drop_db: float = 15.0
) -> AirAnalysis:
    """Find a steep band edge in a long-term power spectrum.

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
        band under the edge, or None when no fall of ``min_drop_db`` within a sixth of an octave
        exists (with the level above staying at least that far down).
    """
    peak = np.max(power) if power.size else 0.0
    if peak <= 0:
        return AirAnalysis(None, -6.0, 0.0)
    level = 10.0 * np.log10(power / peak + 1e-14)
    level = ndimage.uniform_filter1d(level, size=5, mode="nearest")
    nyq = freqs[-1]
    size = freqs.size
    ks = np.flatnonzero((freqs >= 1500.0) & (freqs <= 0.97 * nyq))
    if not ks.size:
        return AirAnalysis(None, -6.0, 0.0)
    ws = np.maximum(3, (ks * 0.12).astype(int))  # about a sixth of an octave
    csum = np.concatenate([[0.0], np.cumsum(level)])
    below = (csum[ks] - csum[np.maximum(0, ks - ws)]) / np.minimum(ws, ks)
    hi = np.minimum(size, ks + 1 + ws)
    above = (csum[hi] - csum[ks + 1]) / np.maximum(1, hi - ks - 1)
    # the level further up must stay down too (a narrow whistle does not count: median first)
    rough = ndimage.median_filter(level, size=15, mode="nearest")
    suffix_max = np.maximum.accumulate(rough[::-1])[::-1]
    rest = np.where(hi < size, suffix_max[np.minimum(hi, size - 1)], -np.inf)
    drop = np.where(rest <= below - min_drop_db, below - above, 0.0)
    best = int(np.argmax(drop))
    best_drop, best_k = float(drop[best]), int(ks[best])
    if best_drop < min_drop_db:
        return AirAnalysis(None, -6.0, best_drop)
    w = max(3, int(best_k * 0.12))
    ref = np.median(level[max(0, best_k - w) : best_k])
    # walk down the edge on a curve smoothed over ~1/12 octave (harmonic gaps are not the edge)
    smooth = ndimage.median_filter(level, size=max(3, w // 2), mode="nearest")
    k = max(1, best_k - w)
    while k < freqs.size - 1 and smooth[k] > ref - 6.0:
        k += 1
    cutoff = float(freqs[k])
    band = (freqs >= cutoff / 2) & (freqs <= 0.9 * cutoff)
    slope = -6.0
    if np.count_nonzero(band) >= 4:
        slope = float(np.polyfit(np.log2(freqs[band]), level[band], 1)[0])
    return AirAnalysis(cutoff, float(np.clip(slope, -30.0, -3.0)), float(best_drop))


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
        power = np.abs(spec) ** 2

        # 1. the octave below the edge, full-wave rectified: its 2nd harmonics fill the gap
        source_mask = _ramp(freqs, cutoff / 2, cutoff / 2 * 1.15) * (
            1 - _ramp(freqs, cutoff - 4 * df, cutoff - df)
        )
        source = istft(spec * source_mask, n, x.shape[1])
        generated = stft(np.abs(source), n)

        # 2. envelope: the level just below the edge, continued with the slope
        ref_band = (freqs >= 0.7 * cutoff) & (freqs <= cutoff - 2 * df)
        ref_level = np.mean(power[..., ref_band], axis=-1, keepdims=True)  # (ch, frames, 1)
        f_ref = 0.5 * (0.7 * cutoff + cutoff)
        with np.errstate(divide="ignore"):
            shape = 10.0 ** (slope * np.log2(np.maximum(freqs, 1.0) / f_ref) / 10.0)
        g_power = ndimage.uniform_filter1d(np.abs(generated) ** 2, size=9, axis=-1)
        edge = cutoff + _GUARD_BINS * df
        top = min(2 * cutoff, nyq)
        hi_mask = _ramp(freqs, edge, edge + 0.12 * cutoff) * (1 - _ramp(freqs, 0.9 * top, top))
        scale = np.sqrt(ref_level * shape / (g_power + 1e-12 * ref_level + 1e-30))
        added = generated * scale * (p.amount * hi_mask)

        # 3. high shelf on the residue above the edge
        shelf = 10.0 ** (p.shelf_db / 20.0) - 1.0
        if shelf:
            added = added + spec * (shelf * _ramp(freqs, edge, edge + 0.12 * cutoff))
        out = x + p.mix * istft(added, n, x.shape[1])
        return out.astype(np.float32)
