"""Spectral peaks with precise instantaneous frequencies.

Speed tracking and tuning estimation both need the frequencies of the strong, stable partials
of a recording to a fraction of a cent. Each analysis frame carries ``lag`` extra samples: the
spectra of the frame and of the same frame ``lag`` samples later differ, for a stationary
sinusoid, by its phase advance over ``lag`` samples, so ``angle(X1 * conj(X0))`` (unwrapped
around the peak bin's own advance) gives its frequency with no bin quantisation (a phase
vocoder). A lag of several milliseconds averages away the fast frequency ripple that weak
leakage from neighbouring partials causes, which a one-sample difference would keep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft


@dataclass(frozen=True)
class Peaks:
    """Spectral peaks of a batch of frames, flattened.

    Attributes
    ----------
    frame : np.ndarray [shape=(n,), dtype=int64]
        Index of the frame (within the batch) each peak belongs to; non-decreasing.
    freq_hz : np.ndarray [shape=(n,)]
        Instantaneous frequency of each peak in Hz.
    mag : np.ndarray [shape=(n,)]
        Linear magnitude of each peak.
    """

    frame: np.ndarray
    freq_hz: np.ndarray
    mag: np.ndarray

    def select(self, mask: np.ndarray) -> Peaks:
        return Peaks(self.frame[mask], self.freq_hz[mask], self.mag[mask])


def spectral_peaks(
    frames: np.ndarray,
    rate: int,
    *,
    fmin_hz: float = 50.0,
    fmax_hz: float = 6000.0,
    floor_db: float = -45.0,
    abs_floor: float = 1e-5,
    max_peaks: int = 32,
    lag: int = 1,
) -> Peaks:
    """Find the strongest spectral peaks of each frame and their instantaneous frequencies.

    Parameters
    ----------
    frames : np.ndarray [shape=(k, length + lag)]
        Analysis frames of ``length + lag`` samples.
    rate : int
        Sample rate in Hz.
    fmin_hz, fmax_hz : float
        Band searched for peaks.
    floor_db : float
        Peaks weaker than the frame's strongest peak by more than this are ignored.
    abs_floor : float
        Peaks below this linear magnitude (window-normalised, 1.0 = full-scale sine) are ignored.
    max_peaks : int
        At most this many peaks per frame, strongest first.
    """
    k, n1 = frames.shape
    length = n1 - lag
    window = np.hanning(length + 2)[1:-1]
    scale = 2.0 / window.sum()
    x0 = fft.rfft(frames[:, :length] * window, axis=1)
    x1 = fft.rfft(frames[:, lag:] * window, axis=1)
    mag = np.abs(x0) * scale
    lo = max(2, int(np.ceil(fmin_hz * length / rate)))
    hi = min(mag.shape[1] - 2, int(fmax_hz * length / rate))
    if k == 0 or hi <= lo:
        empty = np.zeros(0)
        return Peaks(np.zeros(0, dtype=np.int64), empty, empty)
    m = mag[:, lo:hi]
    is_peak = (m > mag[:, lo - 1 : hi - 1]) & (m >= mag[:, lo + 1 : hi + 1])
    frame_max = np.max(np.where(is_peak, m, 0.0), axis=1, keepdims=True)
    is_peak &= m > np.maximum(frame_max * 10.0 ** (floor_db / 20.0), abs_floor)
    score = np.where(is_peak, m, 0.0)
    if score.shape[1] > max_peaks:
        top = np.argpartition(-score, max_peaks - 1, axis=1)[:, :max_peaks]
    else:
        top = np.broadcast_to(np.arange(score.shape[1]), score.shape)
    rows = np.broadcast_to(np.arange(k)[:, None], top.shape)
    keep = score[rows, top] > 0.0
    rows, cols = rows[keep], top[keep] + lo
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    advance = 2.0 * np.pi * cols * lag / length  # the bin centre's own phase advance
    dev = np.angle(x1[rows, cols] * np.conj(x0[rows, cols]) * np.exp(-1j * advance))
    freq = (advance + dev) * rate / (2.0 * np.pi * lag)
    return Peaks(rows.astype(np.int64), freq, mag[rows, cols])
