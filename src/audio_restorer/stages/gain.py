"""Fixed gain or peak normalisation.

In ``peak`` mode the stage needs the whole file's sample peak before it can choose its gain, so
it declares an analysis pass; the gain is then one number and processing is pointwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_restorer.stages.base import FunctionStream, Stage, Stream
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register


@dataclass(frozen=True)
class GainParams(StageParams):
    mode: str = param(
        "gain",
        choices=("gain", "peak"),
        help="'gain' applies gain_db; 'peak' scales so the sample peak reaches peak_dbfs.",
    )
    gain_db: float = param(
        0.0, min=-60.0, max=40.0, step=0.1, unit="dB", help="Gain in 'gain' mode."
    )
    peak_dbfs: float = param(
        -1.0, min=-40.0, max=0.0, step=0.1, unit="dBFS", help="Target sample peak in 'peak' mode."
    )
    max_gain_db: float = param(
        40.0,
        min=0.0,
        max=60.0,
        step=0.5,
        unit="dB",
        help="Upper limit of the gain 'peak' mode may apply (protects near-silent files).",
    )


class PeakAnalyzer:
    def __init__(self) -> None:
        self.peak = 0.0

    def update(self, block: np.ndarray) -> None:
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))

    def result(self) -> float:
        return self.peak


@register
class Gain(Stage):
    name = "gain"
    title = "Gain / peak normalise"
    summary = "Apply a fixed gain, or normalise the sample peak to a target level."
    Params = GainParams

    def analyzer(self, rate: int, channels: int) -> PeakAnalyzer | None:
        return PeakAnalyzer() if self.params.mode == "peak" else None

    def gain_db(self, peak: float | None) -> float:
        p = self.params
        if p.mode == "gain":
            return p.gain_db
        if not peak:
            return 0.0
        return min(p.peak_dbfs - 20.0 * np.log10(peak), p.max_gain_db)

    def open(self, rate: int, channels: int, analysis: float | None = None) -> Stream:
        factor = np.float32(10.0 ** (self.gain_db(analysis) / 20.0))
        return FunctionStream(lambda block: block * factor, channels)
