"""Sub-sonic rumble removal: a Butterworth high-pass, linear- or minimum-phase.

Turntable rumble, tape-transport thumps and DC sit below the music. The default is a
linear-phase FIR with exactly the Butterworth magnitude: it leaves the waveform of everything
above the corner untouched (a recursive filter shifts the phase of the bass by tens of degrees,
which is inaudible but measurable). It is a local stage whose context is half the filter. The
``minimum`` phase option is the classic recursive filter, run as a stream with carried state:
no latency and no pre-ringing, at the cost of that bass phase shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from audio_restorer.stages.base import ContextStream, FunctionStream, Stage, Stream
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register


@dataclass(frozen=True)
class RumbleParams(StageParams):
    cutoff_hz: float = param(
        25.0, min=5.0, max=300.0, step=1.0, unit="Hz", help="High-pass corner frequency (-3 dB)."
    )
    order: int = param(
        4, min=1, max=8, step=1, help="Filter order; each step adds 6 dB/octave of slope."
    )
    phase: str = param(
        "linear",
        choices=("linear", "minimum"),
        help="'linear' keeps the waveform above the corner intact (FIR); 'minimum' is the "
        "classic recursive filter (no pre-ringing, shifts the bass phase).",
    )


def highpass_sos(cutoff_hz: float, order: int, rate: int) -> np.ndarray:
    """Second-order sections of a Butterworth high-pass (cutoff clamped below Nyquist)."""
    cutoff = min(cutoff_hz, 0.45 * rate)
    return signal.butter(order, cutoff, btype="highpass", fs=rate, output="sos")


_MAX_TAPS = (1 << 17) + 1


def linear_highpass_fir(cutoff_hz: float, order: int, rate: int) -> np.ndarray:
    """Linear-phase FIR whose magnitude is the Butterworth high-pass's (odd length)."""
    cutoff = min(cutoff_hz, 0.45 * rate)
    numtaps = min(_MAX_TAPS, int(16 * rate / cutoff) | 1)
    nfreqs = 1 << int(np.ceil(np.log2(numtaps)) + 1)
    freqs = np.linspace(0.0, rate / 2, nfreqs + 1)
    with np.errstate(divide="ignore"):
        mag = 1.0 / np.sqrt(1.0 + (cutoff / freqs) ** (2 * order))
    mag[0] = 0.0
    return signal.firwin2(numtaps, freqs, mag, fs=rate, window=("kaiser", 6.0))


class SosStream:
    """Apply second-order sections block by block, carrying the filter state per channel."""

    def __init__(self, sos: np.ndarray, channels: int) -> None:
        self.sos = sos
        self.zi = np.zeros((sos.shape[0], channels, 2))

    def __call__(self, block: np.ndarray) -> np.ndarray:
        out, self.zi = signal.sosfilt(self.sos, block, axis=1, zi=self.zi)
        return out.astype(np.float32)


@register
class Rumble(Stage):
    name = "rumble"
    title = "Rumble filter"
    summary = "High-pass filter that removes sub-sonic rumble and DC offset."
    Params = RumbleParams

    def _fir(self, rate: int) -> np.ndarray:
        cached = getattr(self, "_fir_cache", None)
        if cached is None or cached[0] != rate:
            p = self.params
            cached = (rate, linear_highpass_fir(p.cutoff_hz, p.order, rate))
            self._fir_cache = cached
        return cached[1]

    def context_frames(self, rate: int) -> int:
        return self._fir(rate).size // 2 if self.params.phase == "linear" else 0

    def preferred_block_frames(self, rate: int) -> int:
        return max(1 << 16, 2 * self.context_frames(rate))

    def process(
        self, audio: np.ndarray, rate: int, *, analysis: object = None, offset: int = 0
    ) -> np.ndarray:
        if self.params.phase == "minimum":
            return SosStream(
                highpass_sos(self.params.cutoff_hz, self.params.order, rate), audio.shape[0]
            )(audio)
        h = self._fir(rate)[None, :]
        return signal.oaconvolve(audio, h, mode="same", axes=1).astype(np.float32)

    def open(self, rate: int, channels: int, analysis: object = None) -> Stream:
        p = self.params
        if p.phase == "linear":
            return ContextStream(self, rate, channels, analysis)
        return FunctionStream(
            SosStream(highpass_sos(p.cutoff_hz, p.order, rate), channels), channels
        )
