"""Sub-sonic rumble removal: a Butterworth high-pass run as a stateful stream.

Turntable rumble, tape-transport thumps and DC sit below the music. A recursive
(minimum-phase) high-pass is exact when run block by block with its state carried over, so it
needs no context and no analysis pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from audio_restorer.stages.base import FunctionStream, Stage, Stream
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


def highpass_sos(cutoff_hz: float, order: int, rate: int) -> np.ndarray:
    """Second-order sections of a Butterworth high-pass (cutoff clamped below Nyquist)."""
    cutoff = min(cutoff_hz, 0.45 * rate)
    return signal.butter(order, cutoff, btype="highpass", fs=rate, output="sos")


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

    def open(self, rate: int, channels: int, analysis: object = None) -> Stream:
        p = self.params
        return FunctionStream(
            SosStream(highpass_sos(p.cutoff_hz, p.order, rate), channels), channels
        )
