"""The measurements ``audio-restorer analyze`` prints and provenance records before/after.

All of them are computed in one streaming pass (:class:`Measurer`), with small state:

* ``peak_dbfs`` / ``true_peak_dbtp`` — sample peak and 4× oversampled peak;
* ``integrated_lufs`` / ``loudness_range_lu`` — BS.1770-4 / EBU Tech 3342;
* ``clipped_ratio`` — fraction of samples that sit in flat runs (two or more equal consecutive
  samples) within 0.1 dB of the file's peak: a clipped transfer has many, music has almost none;
* ``dc_offset`` — mean of each channel;
* ``noise_floor_dbfs`` — 10th percentile of the RMS level of 50 ms windows (digital silence
  excluded): the level of the quiet passages, where surface noise or hiss lives;
* ``bandwidth_hz`` — the highest frequency at which the long-term spectrum is within 60 dB of
  its maximum: the sharp low-pass of MP3s, resamplers and band-limited transfers shows here
  (a gentle analogue roll-off reports where it has fallen 60 dB).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from os import PathLike
from typing import Any

import numpy as np

from audio_restorer.analysis.loudness import LoudnessMeter
from audio_restorer.analysis.truepeak import TruePeakMeter

_FFT = 4096
_RUN_BINS = np.linspace(0.0, 1.0, 2049)[1:]  # upper edges of magnitude bins, linear


@dataclass
class Measurements:
    frames: int
    sample_rate: int
    channels: int
    duration_s: float
    peak_dbfs: float | None
    true_peak_dbtp: float | None
    rms_dbfs: float | None
    integrated_lufs: float | None
    loudness_range_lu: float | None
    clipped_ratio: float
    dc_offset: list[float]
    noise_floor_dbfs: float | None
    bandwidth_hz: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _db(value: float, scale: float = 20.0) -> float | None:
    """Level in dB, or None for silence (JSON has no -inf)."""
    if value <= 0 or not math.isfinite(value):
        return None
    return round(scale * math.log10(value), 3)


def _finite(value: float) -> float | None:
    return round(float(value), 3) if math.isfinite(value) else None


class Measurer:
    """Streaming measurement of a ``(channels, frames)`` signal fed block by block."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.channels = channels
        self.frames = 0
        self.peak = 0.0
        self.sum = np.zeros(channels)
        self.sumsq = 0.0
        self.loudness = LoudnessMeter(rate, channels)
        self.true_peak = TruePeakMeter(channels)
        # flat runs: histogram of |x| for samples equal to their predecessor
        self.run_hist = np.zeros(_RUN_BINS.size, dtype=np.int64)
        self.last = np.full(channels, np.nan)
        # noise floor: 50 ms windows
        self.win = max(1, rate // 20)
        self.win_levels: list[np.ndarray] = []
        self._win_partial = np.zeros(0)
        # bandwidth: mean power spectrum of non-overlapping Hann frames
        self.window = np.hanning(_FFT)
        self.spectrum = np.zeros(_FFT // 2 + 1)
        self.spec_frames = 0
        self._spec_partial = np.zeros((channels, 0))

    def update(self, block: np.ndarray) -> None:
        n = block.shape[1]
        if not n:
            return
        x = block.astype(np.float64)
        self.frames += n
        mag = np.abs(x)
        self.peak = max(self.peak, float(mag.max()))
        self.sum += x.sum(axis=1)
        self.sumsq += float(np.sum(x * x))
        self.loudness.update(block)
        self.true_peak.update(block)

        prev = np.concatenate([self.last[:, None], x[:, :-1]], axis=1)
        flat = (x == prev) & (mag > 0)
        if flat.any():
            idx = np.minimum(
                np.searchsorted(_RUN_BINS, np.minimum(mag[flat], 1.0)), _RUN_BINS.size - 1
            )
            self.run_hist += np.bincount(idx, minlength=_RUN_BINS.size)
        self.last = x[:, -1].copy()

        power = np.concatenate([self._win_partial, np.mean(x * x, axis=0)])
        full = power.size // self.win * self.win
        if full:
            self.win_levels.append(power[:full].reshape(-1, self.win).mean(axis=1))
        self._win_partial = power[full:]

        frames = np.concatenate([self._spec_partial, x], axis=1)
        count = frames.shape[1] // _FFT
        if count:
            seg = frames[:, : count * _FFT].reshape(self.channels, count, _FFT)
            spec = np.abs(np.fft.rfft(seg * self.window, axis=-1)) ** 2
            self.spectrum += spec.sum(axis=(0, 1))
            self.spec_frames += count * self.channels
        self._spec_partial = frames[:, count * _FFT :]

    def _clipped_ratio(self) -> float:
        if not self.frames or self.peak <= 0:
            return 0.0
        threshold = self.peak * 10 ** (-0.1 / 20)
        first = int(np.searchsorted(_RUN_BINS, min(threshold, 1.0)))
        # samples at or above the threshold, plus their run's first sample (counted once more)
        flat = int(self.run_hist[first:].sum())
        return min(1.0, 2 * flat / (self.frames * self.channels)) if flat else 0.0

    def _noise_floor(self) -> float | None:
        if not self.win_levels:
            return None
        levels = np.concatenate(self.win_levels)
        levels = levels[levels > 1e-14]  # ignore digital silence (below -140 dBFS)
        if not levels.size:
            return None
        return _db(float(np.percentile(levels, 10)), 10.0)

    def _bandwidth(self) -> float | None:
        if not self.spec_frames:
            return None
        spec = self.spectrum / self.spec_frames
        if spec.max() <= 0:
            return None
        # smooth over ~1/6 octave-ish neighbourhoods of 9 bins, then threshold
        smooth = np.convolve(spec, np.ones(9) / 9, mode="same")
        level = 10 * np.log10(np.maximum(smooth, 1e-30))
        above = np.nonzero(level > level.max() - 60.0)[0]
        freqs = np.fft.rfftfreq(_FFT, 1.0 / self.rate)
        return round(float(freqs[above[-1]]), 1)

    def result(self) -> Measurements:
        n = max(self.frames, 1)
        rms = math.sqrt(self.sumsq / (n * self.channels)) if self.frames else 0.0
        lra = self.loudness.loudness_range()
        return Measurements(
            frames=self.frames,
            sample_rate=self.rate,
            channels=self.channels,
            duration_s=round(self.frames / self.rate, 6),
            peak_dbfs=_db(self.peak),
            true_peak_dbtp=_finite(self.true_peak.result()),
            rms_dbfs=_db(rms),
            integrated_lufs=_finite(self.loudness.integrated()),
            loudness_range_lu=_finite(lra) if not math.isnan(lra) else None,
            clipped_ratio=round(self._clipped_ratio(), 6),
            dc_offset=[round(float(v), 7) for v in self.sum / n],
            noise_floor_dbfs=self._noise_floor(),
            bandwidth_hz=self._bandwidth(),
        )


def measure(audio: np.ndarray, rate: int) -> Measurements:
    """Measure an in-memory ``(channels, frames)`` array."""
    meter = Measurer(rate, audio.shape[0])
    meter.update(audio)
    return meter.result()


def measure_file(path: str | PathLike[str], *, block_frames: int = 1 << 17) -> Measurements:
    """Measure a file block by block (bounded memory)."""
    from audio_restorer.audio.io import AudioReader

    with AudioReader(path) as reader:
        meter = Measurer(reader.info.rate, reader.info.channels)
        for block in reader.blocks(block_frames):
            meter.update(block)
    return meter.result()
