"""Estimate the tuning of a recording: its offset from the 12-TET grid at A4 = 440 Hz.

A disc played at the wrong speed sounds in a "wrong" key by a fraction of a semitone. Each
10 ms frame's strong spectral peaks are placed on a circle of 100 cents (their deviation from
the nearest equal-tempered pitch at A4 = 440 Hz); the magnitude-weighted circular mean gives
the frame's offset, and the circular median over confident frames gives the recording's.
Offsets are only known modulo a semitone: A4 between about 427.5 and 452.9 Hz.
"""

from __future__ import annotations

import numpy as np

from audio_restorer.pitch.framing import Framer
from audio_restorer.pitch.peaks import spectral_peaks


class TuningEstimator:
    """Push mono blocks, then :meth:`result` for the measured A4 in Hz (None if unknown)."""

    def __init__(self, rate: int, *, hop_s: float = 0.02, window_s: float = 0.1) -> None:
        self.rate = rate
        hop = max(1, round(hop_s * rate))
        length = max(256, round(window_s * rate))
        self.lag = max(1, round(0.005 * rate))
        self.framer = Framer(length + self.lag, hop, (length + self.lag) // 2)
        self.vectors: list[np.ndarray] = []

    def _consume(self, frames: np.ndarray) -> None:
        if frames.shape[0] == 0:
            return
        peaks = spectral_peaks(
            frames, self.rate, fmin_hz=80.0, fmax_hz=4000.0, floor_db=-30.0, lag=self.lag
        )
        cents = 1200.0 * np.log2(np.maximum(peaks.freq_hz, 1.0) / 440.0)
        phasor = peaks.mag * np.exp(2j * np.pi * cents / 100.0)
        vec = np.bincount(peaks.frame, weights=phasor.real, minlength=frames.shape[0]) + 1j * (
            np.bincount(peaks.frame, weights=phasor.imag, minlength=frames.shape[0])
        )
        norm = np.bincount(peaks.frame, weights=peaks.mag, minlength=frames.shape[0])
        self.vectors.append(np.where(norm > 0, vec / np.maximum(norm, 1e-12), 0.0))

    def push(self, block: np.ndarray) -> None:
        self._consume(self.framer.push(block))

    def result(self) -> float | None:
        """A4 in Hz, or None when no frame had a clear tuning."""
        self._consume(self.framer.finish())
        if not self.vectors:
            return None
        vec = np.concatenate(self.vectors)
        strength = np.abs(vec)
        confident = strength > 0.5  # the frame's peaks agree on one offset
        if confident.sum() < 3:
            return None
        angles = np.angle(vec[confident])
        centre = np.angle(np.sum(vec[confident]))
        spread = np.angle(np.exp(1j * (angles - centre)))  # wrapped around the mean
        offset = (centre + np.median(spread)) * 100.0 / (2.0 * np.pi)
        return float(440.0 * 2.0 ** (offset / 1200.0))
