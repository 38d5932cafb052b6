"""A small STFT on an absolute frame grid, shared by the spectral tone stages (air, codec).

Frames start at multiples of ``hop`` counted from the start of the array, and the runner hands
local stages windows whose start is a multiple of the stage's alignment (the hop), so the frames
of a block-wise run are the frames of a whole-file run. Hann analysis and synthesis windows at
75 % overlap sum to a constant (1.5), which the inverse divides out: ``istft(stft(x)) == x``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def hann(n_fft: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float64)


def stft(x: np.ndarray, n_fft: int) -> np.ndarray:
    """Spectra of ``x`` [shape=(channels, frames)] -> complex [shape=(channels, n, n_fft//2+1)].

    Frame j covers samples ``[j*hop - (n_fft - hop), j*hop + hop)`` with ``hop = n_fft // 4``
    (zeros outside the array), so every sample is covered by four frames.
    """
    hop = n_fft // 4
    frames = x.shape[1]
    count = -(-(frames + n_fft - hop) // hop)
    padded = np.zeros((x.shape[0], (count - 1) * hop + n_fft))
    padded[:, n_fft - hop : n_fft - hop + frames] = x
    windows = sliding_window_view(padded, n_fft, axis=1)[:, ::hop]
    return np.fft.rfft(windows * hann(n_fft), axis=-1)


def istft(spec: np.ndarray, n_fft: int, frames: int) -> np.ndarray:
    """Inverse of :func:`stft` (windowed overlap-add), cropped to ``frames`` samples."""
    hop = n_fft // 4
    chunks = np.fft.irfft(spec, n=n_fft, axis=-1) * hann(n_fft)
    channels, count, _ = chunks.shape
    out = np.zeros((channels, (count - 1) * hop + n_fft))
    # overlap-add in four interleaved passes (frames 4 apart do not overlap)
    for phase in range(4):
        part = chunks[:, phase::4]
        if not part.shape[1]:
            continue
        start = phase * hop
        flat = part.reshape(channels, -1)
        out[:, start : start + flat.shape[1]] += flat
    return out[:, n_fft - hop : n_fft - hop + frames] / 1.5


def fft_size(rate: int, at_44k: int) -> int:
    """FFT size scaled with the rate so frames last about the same time (power of two)."""
    return int(at_44k * 2 ** round(np.log2(rate / 44100)))
