"""Speed and pitch correction by a constant factor (the output length changes).

A disc cut at 80 rpm and played at 78.26, or a tape dubbed on a fast machine, plays every
note off by the same ratio. The stage resamples the whole recording by that ratio with soxr
(high-quality, streaming), given as a factor, as turntable speeds, or found by measuring the
tuning (A4) and correcting it to a reference pitch. Making the music faster shortens it:
the stage declares ``changes_length`` and ``output_frames`` so the runner and the provenance
report know the new length, and the stream produces exactly that many frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from audio_restorer.errors import ParameterError
from audio_restorer.pitch.tuning import TuningEstimator
from audio_restorer.stages.base import Stage, Stream
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register


@dataclass(frozen=True)
class SpeedParams(StageParams):
    mode: str = param(
        "factor",
        choices=("factor", "rpm", "pitch"),
        help="'factor' speeds up by factor; 'rpm' corrects a disc recorded at recorded_rpm and "
        "played at played_rpm; 'pitch' retunes A4 (measured or given) to reference_hz.",
    )
    factor: float = param(
        1.0,
        min=0.25,
        max=4.0,
        step=0.001,
        help="Speed-up ratio: 1.02 plays 2 % faster (higher, shorter).",
    )
    recorded_rpm: float = param(
        78.26, min=10.0, max=160.0, step=0.01, unit="rpm", help="Speed the disc was cut at."
    )
    played_rpm: float = param(
        78.26, min=10.0, max=160.0, step=0.01, unit="rpm", help="Speed it was transferred at."
    )
    reference_hz: float = param(
        440.0, min=400.0, max=480.0, step=0.1, unit="Hz", help="Target A4 in 'pitch' mode."
    )
    measured_hz: float | None = param(
        None,
        min=400.0,
        max=480.0,
        step=0.1,
        unit="Hz",
        help="A4 of the recording in 'pitch' mode; None measures it (427.5-452.9 Hz).",
    )


class SpeedStream:
    """soxr stream that resamples by ``1 / factor`` and emits exactly ``round(n / factor)``."""

    def __init__(self, factor: float, rate: int, channels: int) -> None:
        import soxr

        self.factor = factor
        self.channels = channels
        self.identity = factor == 1.0
        self.resampler = (
            None
            if self.identity
            else soxr.ResampleStream(rate * factor, rate, channels, dtype="float32", quality="VHQ")
        )
        self.seen = 0
        self.emitted = 0

    def _emit(self, out: np.ndarray, limit: int) -> np.ndarray:
        out = np.ascontiguousarray(out.T[:, : max(0, limit - self.emitted)], dtype=np.float32)
        self.emitted += out.shape[1]
        return out

    def push(self, block: np.ndarray) -> np.ndarray:
        self.seen += block.shape[1]
        if self.identity:
            return np.array(block, dtype=np.float32)
        out = self.resampler.resample_chunk(np.ascontiguousarray(block.T))
        return self._emit(out, int(np.floor(self.seen / self.factor)))

    def finish(self) -> np.ndarray:
        if self.identity:
            return np.zeros((self.channels, 0), dtype=np.float32)
        target = round(self.seen / self.factor)
        tail = self.resampler.resample_chunk(
            np.zeros((0, self.channels), dtype=np.float32), last=True
        )
        out = self._emit(tail, target)
        if self.emitted < target:
            pad = np.zeros((self.channels, target - self.emitted), dtype=np.float32)
            self.emitted = target
            out = np.concatenate([out, pad], axis=1)
        return out


class TuningAnalyzer:
    def __init__(self, rate: int) -> None:
        self.estimator = TuningEstimator(rate)

    def update(self, block: np.ndarray) -> None:
        if block.shape[1]:
            self.estimator.push(block.mean(axis=0, dtype=np.float64))

    def result(self) -> float | None:
        return self.estimator.result()


@register
class Speed(Stage):
    name = "speed"
    title = "Speed & pitch"
    summary = "Correct speed and pitch by a factor, turntable speeds or a reference A4."
    Params = SpeedParams
    changes_length = True

    def factor(self, measured_hz: float | None = None) -> float:
        """Speed-up ratio applied (the analysis result is the measured A4, if any)."""
        p = self.params
        if p.mode == "factor":
            return p.factor
        if p.mode == "rpm":
            return p.recorded_rpm / p.played_rpm
        a4 = p.measured_hz if p.measured_hz is not None else measured_hz
        if a4 is None:
            return 1.0  # no clear tuning: leave the recording alone
        return p.reference_hz / a4

    def findings(self, analysis: float | None) -> dict[str, object]:
        p = self.params
        if p.mode != "pitch" or p.measured_hz is not None:  # nothing measured
            return {}
        if analysis is None:
            return {"a4_hz": None, "summary": "no clear tuning found (speed left as it is)"}
        factor = self.factor(analysis)
        return {
            "a4_hz": round(float(analysis), 2),
            "factor": round(float(factor), 5),
            "summary": f"tuning measured at A4 = {analysis:.2f} Hz; speed x {factor:.4f}",
        }

    def analyzer(self, rate: int, channels: int) -> TuningAnalyzer | None:
        p = self.params
        if p.mode == "pitch" and p.measured_hz is None:
            return TuningAnalyzer(rate)
        return None

    def output_frames(self, frames: int, rate: int, analysis: Any = None) -> int:
        f = self.factor(analysis)
        return frames if f == 1.0 else round(frames / f)

    def open(self, rate: int, channels: int, analysis: Any = None) -> Stream:
        f = self.factor(analysis)
        if not 0.25 <= f <= 4.0:
            raise ParameterError(f"speed factor must be in 0.25..4, got {f:g}")
        return SpeedStream(f, rate, channels)
