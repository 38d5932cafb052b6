"""Band-limited reading of a signal at arbitrary (fractional) sample positions.

Wow & flutter correction and azimuth (inter-channel delay) correction both resample a signal
at positions that are not on the sample grid. This module gives them one vectorised
windowed-sinc interpolator: a Kaiser-windowed sinc of ``2 * HALF_TAPS`` taps, tabulated at
``PHASES`` sub-sample phases with linear interpolation between phases, so reading costs one
gather and one multiply-add per tap. Positions are absolute within the array handed in;
samples outside it count as zero, so a window cut from a file gives the same values as the
whole file wherever the kernel lies inside the window.
"""

from __future__ import annotations

import numpy as np

#: taps each side of the interpolation point
HALF_TAPS = 16
#: tabulated sub-sample phases (linear interpolation between them)
PHASES = 512
#: pass-band edge as a fraction of Nyquist; the Kaiser window sets the transition above it
CUTOFF = 0.94
KAISER_BETA = 9.0


def _table() -> np.ndarray:
    """Kernel table, shape ``(PHASES + 1, 2 * HALF_TAPS)``: row p holds the taps for a
    fractional position ``p / PHASES``, applied to samples
    ``i0 - HALF_TAPS + 1 .. i0 + HALF_TAPS``."""
    frac = np.arange(PHASES + 1)[:, None] / PHASES
    j = np.arange(-HALF_TAPS + 1, HALF_TAPS + 1)[None, :]
    x = j - frac  # distance of each tap from the interpolation point, in samples
    window = np.kaiser(2 * HALF_TAPS + 1, KAISER_BETA)
    # sample the continuous Kaiser window at x (support |x| <= HALF_TAPS)
    wx = np.interp(x, np.arange(-HALF_TAPS, HALF_TAPS + 1), window, left=0.0, right=0.0)
    taps = CUTOFF * np.sinc(CUTOFF * x) * wx
    taps /= taps.sum(axis=1, keepdims=True)  # unit DC gain at every phase
    return taps.astype(np.float32)


_TABLE = _table()


def read_at(audio: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Band-limited values of ``audio`` at fractional sample ``positions``.

    Parameters
    ----------
    audio : np.ndarray [shape=(channels, frames), dtype=float32]
    positions : np.ndarray [shape=(n,)]
        Positions in samples relative to ``audio[:, 0]`` (float64 for precision). Samples
        outside ``audio`` are taken as zero.

    Returns
    -------
    np.ndarray [shape=(channels, n), dtype=float32]
    """
    positions = np.asarray(positions, dtype=np.float64)
    channels, frames = audio.shape
    out = np.empty((channels, positions.size), dtype=np.float32)
    step = 16384  # bounds the (n, taps) temporaries
    padded = np.zeros((channels, frames + 2 * HALF_TAPS + 2), dtype=np.float32)
    padded[:, HALF_TAPS : HALF_TAPS + frames] = audio
    lo, hi = -HALF_TAPS - 1.0, frames + HALF_TAPS + 1.0
    offsets = np.arange(-HALF_TAPS + 1, HALF_TAPS + 1)
    for s in range(0, positions.size, step):
        pos = np.clip(positions[s : s + step], lo, hi)
        i0 = np.floor(pos)
        frac = (pos - i0) * PHASES
        ph = np.minimum(frac.astype(np.int64), PHASES - 1)
        a = (frac - ph).astype(np.float32)[:, None]
        taps = _TABLE[ph] * (1.0 - a) + _TABLE[ph + 1] * a
        idx = i0.astype(np.int64)[:, None] + offsets[None, :] + HALF_TAPS
        np.clip(idx, 0, padded.shape[1] - 1, out=idx)
        for c in range(channels):
            out[c, s : s + step] = np.einsum("nk,nk->n", padded[c][idx], taps)
    return out
