"""Harmonic / percussive separation by median filtering of the spectrogram (no torch).

Fitzgerald (2010): in a magnitude spectrogram, sustained tones are horizontal ridges and
transients (clicks, drum hits, consonants) vertical ones. A median filter along time keeps the
ridges and removes the spikes (a harmonic estimate); one along frequency does the opposite (a
percussive estimate). Soft masks built from the two (Wiener-like, power 2) split the STFT.
With Driedger et al.'s (2014) *margin* ``m > 1`` a bin is only called harmonic when its
harmonic estimate beats ``m`` times the percussive one (and vice versa); what neither claims
goes to the residual, which the separation stage computes as mix minus the kept stems.

The filter lengths are given in physical units so they mean the same at every sample rate:
``harmonic_ms`` (about 200 ms: longer than a drum hit, shorter than a held note) and
``percussive_hz`` (about 500 Hz: wider than a harmonic's main lobe, narrower than a click's
flat spectrum). Everything is local in time, so the separation runs block-wise with context
and equals the whole-file result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import ndimage
from scipy.signal import get_window

from audio_restorer.errors import ParameterError
from audio_restorer.separation.streaming import ContextSeparator

SOURCES = ["harmonic", "percussive"]


def _odd(x: float) -> int:
    k = max(1, round(x))
    return k if k % 2 else k + 1


class HpssSettings:
    """STFT size and median lengths (in bins and frames) for one sample rate."""

    def __init__(
        self,
        rate: int,
        *,
        margin: float = 1.0,
        window_ms: float = 46.0,
        harmonic_ms: float = 200.0,
        percussive_hz: float = 500.0,
    ) -> None:
        if margin < 1.0:
            raise ParameterError(f"HPSS margin must be at least 1, got {margin}")
        if window_ms <= 0 or harmonic_ms <= 0 or percussive_hz <= 0:
            raise ParameterError(
                "HPSS window_ms, harmonic_ms and percussive_hz must be positive, got "
                f"{window_ms}, {harmonic_ms}, {percussive_hz}"
            )
        self.rate = rate
        self.margin = float(margin)
        self.n_fft = int(2 ** round(np.log2(max(64.0, window_ms * 1e-3 * rate))))
        self.hop = self.n_fft // 4
        self.time_kernel = _odd(harmonic_ms * 1e-3 * rate / self.hop)
        self.freq_kernel = _odd(percussive_hz / (rate / self.n_fft))
        # sqrt-Hann analysis and synthesis: their product is a Hann, which sums to a
        # constant at hop n/4 away from the edges; the exact window sum is divided out anyway
        self.window = np.sqrt(get_window("hann", self.n_fft)).astype(np.float32)

    def context_frames(self) -> int:
        """Input frames each side of an output frame that can change it."""
        return self.n_fft + (self.time_kernel // 2 + 1) * self.hop


def _frames_count(length: int, hop: int) -> int:
    return length // hop + 1


def stft(x: np.ndarray, s: HpssSettings) -> np.ndarray:
    """Centred STFT [shape=(channels, frames, bins)]; frame k is centred on sample k * hop."""
    n, hop = s.n_fft, s.hop
    k = _frames_count(x.shape[1], hop)
    padded = np.zeros((x.shape[0], (k - 1) * hop + n), dtype=np.float32)
    padded[:, n // 2 : n // 2 + x.shape[1]] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, n, axis=1)[:, ::hop][:, :k]
    return sfft.rfft(frames * s.window, axis=2)


def istft(spec: np.ndarray, length: int, s: HpssSettings) -> np.ndarray:
    """Inverse of :func:`stft` (weighted overlap-add divided by the window-square sum)."""
    n, hop = s.n_fft, s.hop
    c, k, _ = spec.shape
    frames = sfft.irfft(spec, n=n, axis=2).astype(np.float32) * s.window
    parts = n // hop
    total = (k + parts - 1) * hop
    out = np.zeros((c, total), dtype=np.float32)
    wsum = np.zeros(total, dtype=np.float32)
    w2 = (s.window**2).reshape(parts, hop)
    for j in range(parts):
        out[:, j * hop : j * hop + k * hop] += frames[:, :, j * hop : (j + 1) * hop].reshape(
            c, k * hop
        )
        wsum[j * hop : j * hop + k * hop] += np.tile(w2[j], k)
    sl = slice(n // 2, n // 2 + length)
    return out[:, sl] / np.maximum(wsum[sl], 1e-6)


def median_along(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Running median of odd length ``size`` along ``axis`` (half-sample symmetric edges).

    Equal to ``ndimage.median_filter(x, size, axes=(axis,), mode="reflect")`` but about ten
    times faster: every line is padded by its own mirror image and all lines run as one long
    1-D signal, which scipy filters with its fast 1-D algorithm.
    """
    half = size // 2
    moved = np.moveaxis(x, axis, -1)
    lines = np.pad(moved, [(0, 0)] * (moved.ndim - 1) + [(half, half)], mode="symmetric")
    flat = ndimage.median_filter(lines.reshape(-1), size=size, mode="reflect")
    out = flat.reshape(lines.shape)[..., half : half + moved.shape[-1]]
    return np.ascontiguousarray(np.moveaxis(out, -1, axis))


def hpss_masks(mag: np.ndarray, s: HpssSettings) -> tuple[np.ndarray, np.ndarray]:
    """Soft harmonic and percussive masks of a magnitude spectrogram (channels, frames, bins).

    ``H = median over time``, ``P = median over frequency``; the harmonic mask is
    ``H^2 / (H^2 + (m P)^2)`` and the percussive mask ``P^2 / (P^2 + (m H)^2)``; with
    ``m = 1`` they sum to one, with ``m > 1`` the rest is residual.
    """
    harm = median_along(mag, s.time_kernel, axis=1)
    perc = median_along(mag, s.freq_kernel, axis=2)
    h2 = harm * harm
    p2 = perc * perc
    m2 = s.margin * s.margin
    tiny = np.float32(1e-20)
    return h2 / (h2 + m2 * p2 + tiny), p2 / (p2 + m2 * h2 + tiny)


def hpss(audio: np.ndarray, s: HpssSettings) -> dict[str, np.ndarray]:
    """Separate ``audio`` [shape=(channels, frames)] into harmonic and percussive parts."""
    x = np.asarray(audio, dtype=np.float32)
    spec = stft(x, s)
    mask_h, mask_p = hpss_masks(np.abs(spec), s)
    return {
        "harmonic": istft(spec * mask_h, x.shape[1], s),
        "percussive": istft(spec * mask_p, x.shape[1], s),
    }


class HpssBackend:
    """The built-in separation backend: harmonic / percussive (+ residual)."""

    name = "hpss"
    uses_torch = False
    residual_name = "residual"

    def __init__(
        self,
        *,
        margin: float = 1.0,
        window_ms: float = 46.0,
        harmonic_ms: float = 200.0,
        percussive_hz: float = 500.0,
        block_s: float = 8.0,
        **_ignored: Any,
    ) -> None:
        self.options = dict(
            margin=margin, window_ms=window_ms, harmonic_ms=harmonic_ms, percussive_hz=percussive_hz
        )
        self.block_s = block_s
        HpssSettings(44100, **self.options)  # validate early

    def sources(self) -> list[str]:
        return list(SOURCES)

    def analyzer(self, rate: int, channels: int) -> None:
        return None

    def settings(self, rate: int) -> HpssSettings:
        return HpssSettings(rate, **self.options)

    def open(
        self, rate: int, channels: int, device: str = "cpu", analysis: Any = None
    ) -> ContextSeparator:
        s = self.settings(rate)
        ctx = s.context_frames()
        return ContextSeparator(
            lambda window, offset: hpss(window, s),
            self.sources(),
            channels,
            context=ctx,
            alignment=s.hop,
            block=max(int(self.block_s * rate), 16 * ctx),
        )

    def model_info(self) -> list[dict[str, Any]]:
        return []
