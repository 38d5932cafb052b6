"""Channel operations: groove-wall decoding of discs, azimuth, swap, polarity; pseudo-stereo.

A stereo pickup on a mono (lateral-cut) disc reads the two groove walls: the music is the
same on both, the surface noise, clicks and wear are largely independent. Summing (lateral,
L+R) halves uncorrelated noise power; the difference (vertical, L-R) is the hill-and-dale
signal of cylinders and vertical-cut discs, or pure noise on a lateral disc. ``best`` goes
further: per time-frequency region it weights the walls by the inverse of their own noise
power, which is measurable because the music is common to both walls::

    P_L - P_R = N_L - N_R,  P_{L-R} = N_L + N_R
    =>  N_L = (P_L - P_R + P_{L-R}) / 2,  N_R = (P_R - P_L + P_{L-R}) / 2

with powers smoothed over ``smoothing_ms`` and a few bins. The weights sum to one, so the
music passes unchanged, and a wall with a click or a worn passage is faded out smoothly.
Azimuth error (the stylus or tape head at a slant) delays one channel by a fraction of a
sample to a few samples; the analysis pass measures that delay from the cross-spectrum
(integer lag from the phase-transform correlation, refined by a weighted fit of the
cross-spectrum's phase slope) and half of it is undone on each channel.

``widen`` makes pseudo-stereo from mono: a high-passed, slightly delayed copy is added to the
left and subtracted from the right (a Lauridsen-style decorrelation), so folding the output
back to mono gives the input exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft, ndimage

from audio_restorer.errors import ParameterError
from audio_restorer.pitch.framing import Framer
from audio_restorer.stages._timewarp import HALF_TAPS, read_at
from audio_restorer.stages.base import FunctionStream, Stage, Stream
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register
from audio_restorer.stages.rumble import SosStream, highpass_sos

#: the largest azimuth delay measured or applied
MAX_DELAY_MS = 2.0
MONO_MODES = ("left", "right", "lateral", "vertical", "best")


@dataclass(frozen=True)
class ChannelsParams(StageParams):
    mode: str = param(
        "stereo",
        choices=("stereo", *MONO_MODES),
        help="'stereo' keeps two channels; 'left'/'right' take one groove wall; 'lateral' "
        "(L+R)/2 and 'vertical' (L-R)/2 decode the cut; 'best' blends the walls by their noise.",
    )
    azimuth: bool = param(True, help="Measure and undo the inter-channel delay (stereo input).")
    delay_samples: float | None = param(
        None,
        min=-88.0,
        max=88.0,
        step=0.01,
        unit="samples",
        help="Right-channel lag to undo; None measures it (when azimuth is on).",
    )
    swap: bool = param(False, help="Swap left and right.")
    invert_left: bool = param(False, help="Invert the polarity of the left channel.")
    invert_right: bool = param(False, help="Invert the polarity of the right channel.")
    smoothing_ms: float = param(
        250.0,
        min=20.0,
        max=1000.0,
        step=10.0,
        unit="ms",
        help="'best' mode: how long a passage the wall noise is judged over.",
    )


def _fft_size(rate: int, seconds: float) -> int:
    return int(2 ** np.round(np.log2(seconds * rate)))


def estimate_delay(
    cross: np.ndarray, rate: int, n_fft: int, *, max_delay_ms: float = MAX_DELAY_MS
) -> float:
    """Delay of the right channel behind the left (samples) from their cross-spectrum.

    Parameters
    ----------
    cross : np.ndarray [shape=(n_fft // 2 + 1,), complex]
        Accumulated ``X_L * conj(X_R)`` over frames of ``n_fft`` samples.
    """
    mag = np.abs(cross)
    if not np.any(mag > 0):
        return 0.0
    # partly whitened correlation for the integer lag (full whitening lets empty bins vote)
    white = cross / np.sqrt(np.maximum(mag, 1e-12 * mag.max()))
    corr = fft.irfft(white, n_fft)  # peaks at the lag of L behind R: -delay
    max_lag = min(int(np.ceil(max_delay_ms * 1e-3 * rate)), n_fft // 4)
    lags = np.arange(-max_lag, max_lag + 1)
    lag = -int(lags[np.argmax(corr[lags % n_fft])])
    omega = 2.0 * np.pi * np.arange(cross.size) / n_fft
    hz = omega * rate / (2 * np.pi)
    w = mag * ((hz > 80.0) & (hz < 0.45 * rate))
    delay = float(lag)
    for _ in range(2):  # fit the phase slope left after the nearest whole-sample delay
        whole = round(delay)
        residual = np.angle(cross * np.exp(-1j * omega * whole))
        delay = whole + np.sum(w * omega * residual) / max(np.sum(w * omega**2), 1e-30)
    return float(np.clip(delay, -max_lag, max_lag))


class DelayAnalyzer:
    """Accumulates the L/R cross-spectrum over frames of ~93 ms."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.n_fft = _fft_size(rate, 0.09)
        hop = self.n_fft // 2
        self.framers = [Framer(self.n_fft, hop, 0), Framer(self.n_fft, hop, 0)]
        self.window = np.hanning(self.n_fft)
        self.cross = np.zeros(self.n_fft // 2 + 1, dtype=complex)

    def _add(self, fl: np.ndarray, fr: np.ndarray) -> None:
        if fl.shape[0]:
            xl = fft.rfft(fl * self.window, axis=1)
            xr = fft.rfft(fr * self.window, axis=1)
            self.cross += np.sum(xl * np.conj(xr), axis=0)

    def update(self, block: np.ndarray) -> None:
        self._add(self.framers[0].push(block[0]), self.framers[1].push(block[1]))

    def result(self) -> float:
        self._add(self.framers[0].finish(), self.framers[1].finish())
        return estimate_delay(self.cross, self.rate, self.n_fft)


def best_wall(left: np.ndarray, right: np.ndarray, rate: int, smoothing_ms: float) -> np.ndarray:
    """Blend two groove walls by the inverse of their estimated noise power (see module doc).

    Parameters
    ----------
    left, right : np.ndarray [shape=(frames,)]
        The two walls, aligned in time. Frame 0 must lie on the global STFT grid
        (a multiple of the hop ``_fft_size(rate, 0.023) // 4`` in the file).

    Returns
    -------
    np.ndarray [shape=(frames,)]
    """
    n_fft = _fft_size(rate, 0.023)
    hop = n_fft // 4
    frames = left.size
    window = np.hanning(n_fft + 1)[:-1]
    pad = n_fft
    count = (frames + pad) // hop + 1
    total = (count - 1) * hop + n_fft

    def stft(x: np.ndarray) -> np.ndarray:
        buf = np.zeros(total)
        buf[pad : pad + frames] = x
        view = np.lib.stride_tricks.sliding_window_view(buf, n_fft)[::hop][:count]
        return fft.rfft(view * window, axis=1)

    xl, xr = stft(left), stft(right)
    k = max(1, round(smoothing_ms * 1e-3 * rate / hop))
    size = (k, 5)

    def smooth(p: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(p, size=size, mode="nearest")

    pl = smooth(np.abs(xl) ** 2)
    pr = smooth(np.abs(xr) ** 2)
    pd = smooth(np.abs(xl - xr) ** 2)
    floor = 1e-6 * pd + 1e-20
    nl = np.maximum(0.5 * (pl - pr + pd), floor)
    nr = np.maximum(0.5 * (pr - pl + pd), floor)
    wl = nr / (nl + nr)
    y = fft.irfft(wl * xl + (1.0 - wl) * xr, n_fft, axis=1) * window
    out = np.zeros(total)
    norm = np.zeros(total)
    idx = np.arange(count)[:, None] * hop + np.arange(n_fft)[None, :]
    np.add.at(out, idx, y)
    np.add.at(norm, idx, np.broadcast_to(window**2, y.shape))
    out = out[pad : pad + frames]
    norm = norm[pad : pad + frames]
    return out / np.maximum(norm, 1e-6)


@register
class Channels(Stage):
    name = "channels"
    title = "Channels & groove walls"
    summary = "Mono from one wall, lateral/vertical decoding, best-wall blend, azimuth, swap."
    Params = ChannelsParams

    def output_channels(self, channels: int) -> int:
        return 1 if self.params.mode in MONO_MODES else channels

    def _stft_hop(self, rate: int) -> int:
        return _fft_size(rate, 0.023) // 4

    def alignment_frames(self, rate: int) -> int:
        return self._stft_hop(rate) if self.params.mode == "best" else 1

    def context_frames(self, rate: int) -> int:
        ctx = int(np.ceil(MAX_DELAY_MS * 1e-3 * rate)) + HALF_TAPS + 2
        if self.params.mode == "best":
            n_fft = _fft_size(rate, 0.023)
            ctx += 2 * n_fft + int(np.ceil(self.params.smoothing_ms * 1e-3 * rate))
        return ctx

    def analyzer(self, rate: int, channels: int) -> DelayAnalyzer | None:
        p = self.params
        if channels == 2 and p.azimuth and p.delay_samples is None:
            return DelayAnalyzer(rate)
        return None

    def delay(self, analysis: Any) -> float:
        p = self.params
        if not p.azimuth:
            return 0.0
        if p.delay_samples is not None:
            return p.delay_samples
        return float(analysis) if analysis is not None else 0.0

    def process(
        self, audio: np.ndarray, rate: int, *, analysis: Any = None, offset: int = 0
    ) -> np.ndarray:
        p = self.params
        channels = audio.shape[0]
        if channels != 2:
            if p.mode == "vertical":
                raise ParameterError(f"vertical decoding needs 2 channels, got {channels}")
            if p.mode in MONO_MODES:
                return np.array(audio[:1], dtype=np.float32)
            return np.array(audio, dtype=np.float32)
        left, right = audio[0], audio[1]
        if p.swap:
            left, right = right, left
        if p.invert_left:
            left = -left
        if p.invert_right:
            right = -right
        pair = np.stack([left, right]).astype(np.float32)
        delay = self.delay(analysis)
        if delay:
            n = np.arange(audio.shape[1], dtype=np.float64)
            # the right channel lags by `delay`: delay the left and advance the right by half
            pair = np.concatenate(
                [read_at(pair[:1], n - 0.5 * delay), read_at(pair[1:], n + 0.5 * delay)]
            )
        if p.mode == "stereo":
            return pair
        if p.mode == "left":
            return pair[:1].copy()
        if p.mode == "right":
            return pair[1:].copy()
        if p.mode == "lateral":
            return (0.5 * (pair[0] + pair[1]))[None].astype(np.float32)
        if p.mode == "vertical":
            return (0.5 * (pair[0] - pair[1]))[None].astype(np.float32)
        out = best_wall(
            pair[0].astype(np.float64), pair[1].astype(np.float64), rate, p.smoothing_ms
        )
        return out[None].astype(np.float32)


@dataclass(frozen=True)
class WidenParams(StageParams):
    width: float = param(
        0.5, min=0.0, max=1.0, step=0.05, help="Level of the decorrelated side signal."
    )
    crossover_hz: float = param(
        300.0,
        min=50.0,
        max=5000.0,
        step=10.0,
        unit="Hz",
        help="Only content above this is spread; the bass stays centred.",
    )
    delay_ms: float = param(
        9.0, min=0.5, max=30.0, step=0.5, unit="ms", help="Delay of the side signal."
    )


class _WidenFn:
    """Stateful block function: mid, high-passed and delayed, added to L and taken from R."""

    def __init__(self, params: WidenParams, rate: int, channels: int) -> None:
        self.gain = np.float32(params.width)
        self.hp = SosStream(highpass_sos(params.crossover_hz, 2, rate), 1)
        self.delay = max(1, round(params.delay_ms * 1e-3 * rate))
        self.line = np.zeros(self.delay, dtype=np.float32)
        self.channels = channels

    def __call__(self, block: np.ndarray) -> np.ndarray:
        mid = block.mean(axis=0, keepdims=True, dtype=np.float32)
        high = self.hp(mid)[0]
        joined = np.concatenate([self.line, high])
        side = joined[: high.size] * self.gain
        self.line = joined[high.size :]
        if self.channels == 1:
            left = right = block[0]
        else:
            left, right = block[0], block[1]
        out = np.stack([left + side, right - side]).astype(np.float32)
        if self.channels > 2:
            out = np.concatenate([out, block[2:]]).astype(np.float32)
        return out


@register
class Widen(Stage):
    name = "widen"
    title = "Pseudo-stereo"
    summary = "Spread mono into mono-compatible stereo (the L/R mean is the input)."
    Params = WidenParams

    def output_channels(self, channels: int) -> int:
        return max(2, channels)

    def open(self, rate: int, channels: int, analysis: Any = None) -> Stream:
        return FunctionStream(_WidenFn(self.params, rate, channels), max(2, channels))
