"""Streaming true-peak measurement (ITU-R BS.1770-4 Annex 2): 4× oversampled peak in dBTP.

The sample peak misses the inter-sample overs that a DAC or a lossy encoder will produce. This
meter interpolates by four with a polyphase FIR (scipy's upfirdn) and keeps the last few input
samples between blocks, so block-wise and whole-file results agree.

Interpolating everything is the expensive part of measuring a file, and almost all of it is
wasted: an interpolated value can exceed the peak found so far only where the samples feeding
it are large. With ``G`` the largest sum of absolute coefficients of any filter phase, a value
is bounded by ``G`` times the largest input sample in its filter span, so only spans whose
maximum exceeds ``peak / G`` are interpolated. The result is exact, not an approximation.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

OVERSAMPLE = 4
TAPS_PER_PHASE = 32  # 128 taps: within 0.2 dB of ideal up to 0.83 x Nyquist


def interpolation_filter(
    factor: int = OVERSAMPLE, taps_per_phase: int = TAPS_PER_PHASE
) -> np.ndarray:
    """Low-pass FIR for interpolation by ``factor`` (unity gain in the passband)."""
    numtaps = factor * taps_per_phase
    return signal.firwin(numtaps, 0.98 / factor, window=("kaiser", 9.0)) * factor


class TruePeakMeter:
    """Maximum absolute value of the 4× oversampled signal, over all channels."""

    def __init__(self, channels: int, factor: int = OVERSAMPLE) -> None:
        self.factor = factor
        self.h = interpolation_filter(factor).astype(np.float32)
        self.gain = float(max(np.abs(self.h[p::factor]).sum() for p in range(factor)))
        self.history = np.zeros((channels, TAPS_PER_PHASE), dtype=np.float32)
        self.peak = 0.0

    def update(self, block: np.ndarray) -> None:
        n = block.shape[1]
        if not n:
            return
        ext = np.concatenate([self.history, block.astype(np.float32)], axis=1)
        self.history = ext[:, -TAPS_PER_PHASE:]
        self.peak = max(self.peak, float(np.max(np.abs(block))))
        # the output for input position i (in ext) depends on ext[i - TAPS_PER_PHASE + 1 : i + 1]
        span = ndimage.maximum_filter1d(
            np.abs(ext).max(axis=0), TAPS_PER_PHASE, origin=(TAPS_PER_PHASE - 1) // 2
        )
        candidates = np.flatnonzero(span[TAPS_PER_PHASE:] * self.gain > self.peak)
        if not candidates.size:
            return
        # group candidate positions into runs and interpolate each run
        breaks = np.flatnonzero(np.diff(candidates) > TAPS_PER_PHASE) + 1
        starts, stops = candidates[np.r_[0, breaks]], candidates[np.r_[breaks - 1, -1]] + 1
        if len(starts) > 64:  # fragmented: one pass over the whole block is cheaper
            starts, stops = starts[:1], stops[-1:]
        for a, b in zip(starts, stops, strict=True):
            seg = ext[:, a : b + TAPS_PER_PHASE]  # ext index a + TAPS_PER_PHASE is block index a
            up = signal.upfirdn(self.h, seg, up=self.factor, axis=1)
            lo = TAPS_PER_PHASE * self.factor
            valid = up[:, lo : lo + (b - a) * self.factor]
            if valid.size:
                self.peak = max(self.peak, float(np.max(np.abs(valid))))

    def result(self) -> float:
        """True peak in dBTP (``-inf`` for silence)."""
        return 20.0 * np.log10(self.peak) if self.peak > 0 else float("-inf")


def true_peak_dbtp(audio: np.ndarray) -> float:
    """True peak (dBTP) of an in-memory ``(channels, frames)`` array."""
    meter = TruePeakMeter(audio.shape[0])
    meter.update(audio)
    return meter.result()
