"""Short-time Fourier transform on an absolute frame grid, shared by the noise stages.

Block-wise processing only equals whole-file processing if every block sees the same STFT
frames as the whole file. Frames here therefore sit on a grid anchored at the *file* start:
frame ``j`` covers samples ``[j*hop - (n_fft - hop), j*hop + hop)`` (the first frames are
zero-padded on the left), and a window handed to a stage at ``offset`` (a multiple of ``hop``)
produces the frames of that grid. The square-root periodic Hann window is used for both
analysis and synthesis; at 75 % overlap its squares sum to a constant, so an all-ones gain
reconstructs the input exactly (up to float rounding).
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft


def fft_size(rate: int, window_ms: float) -> int:
    """Power-of-two FFT size closest (in log terms) to ``window_ms`` at ``rate`` (min 256)."""
    n = rate * window_ms / 1000.0
    return int(max(256, 2 ** round(np.log2(max(n, 1.0)))))


def sqrt_hann(n_fft: int) -> np.ndarray:
    """Periodic square-root Hann window, float32 [shape=(n_fft,)]."""
    k = np.arange(n_fft)
    return np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * k / n_fft)).astype(np.float32)


def frame_count(frames: int, hop: int) -> int:
    """Number of grid frames touching ``frames`` samples (the last one may be partial)."""
    return -(-frames // hop)


def stft(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """STFT of ``audio`` on the grid described in the module docstring.

    Parameters
    ----------
    audio : np.ndarray [shape=(channels, frames), dtype=float32]
        Its first sample must lie on the hop grid of the file.
    n_fft, hop : int
        FFT size and hop in samples; ``n_fft`` must be a multiple of ``hop``.

    Returns
    -------
    np.ndarray [shape=(channels, n_frames, n_fft // 2 + 1), dtype=complex64]
        ``n_frames = ceil(frames / hop) + n_fft // hop - 1``: every frame that overlaps the
        signal, so overlap-add covers every sample fully.
    """
    channels, frames = audio.shape
    n_frames = frame_count(frames, hop) + n_fft // hop - 1
    lead = n_fft - hop
    total = (n_frames - 1) * hop + n_fft
    padded = np.zeros((channels, total), dtype=np.float32)
    padded[:, lead : lead + frames] = audio
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop]
    return sfft.rfft(view * sqrt_hann(n_fft), axis=-1).astype(np.complex64, copy=False)


def istft(spec: np.ndarray, n_fft: int, hop: int, frames: int) -> np.ndarray:
    """Inverse of :func:`stft` (weighted overlap-add), cropped to ``frames`` samples.

    Parameters
    ----------
    spec : np.ndarray [shape=(channels, n_frames, n_fft // 2 + 1)]
    frames : int
        Length of the signal that :func:`stft` was given.

    Returns
    -------
    np.ndarray [shape=(channels, frames), dtype=float32]
    """
    channels, n_frames, _ = spec.shape
    blocks = sfft.irfft(spec, n=n_fft, axis=-1).astype(np.float32, copy=False)
    blocks *= sqrt_hann(n_fft) * np.float32(2.0 * hop / n_fft)
    overlap = n_fft // hop
    total = (n_frames + overlap - 1) * hop
    out = np.zeros((channels, total), dtype=np.float32)
    # Add the frames in `overlap` interleaved groups: each group tiles without overlap, so
    # one reshape-add per group replaces a Python loop over frames.
    for g in range(overlap):
        sub = blocks[:, g::overlap]
        count = sub.shape[1]
        start = g * hop
        out[:, start : start + count * n_fft] += sub.reshape(channels, count * n_fft)
    lead = n_fft - hop
    return out[:, lead : lead + frames]
