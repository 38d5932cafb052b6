"""Dynamic tone stages for dulled transfers: ``transient`` and ``clarity``.

Worn styli, soft tape heads and generations of dubbing blunt the attacks and let the presence
region wander. A static EQ cannot fix either without making sustained notes and surface noise
harsh, so both stages here are *dynamic*:

* ``transient`` lifts the presence band (around 3 kHz) only while an attack is under way, found
  as the ratio of a fast to a slow mean-square envelope of that band (linked across channels).
* ``clarity`` keeps the balance of presence (above ``split_hz``) to body (200 Hz - split)
  steady across a side: an analysis pass measures that tilt every 100 ms, smooths it over a few
  seconds and compares it with the side's median; the high band is then raised or lowered by a
  slowly varying, zero-phase gain (an STFT shelf, so nothing moves when the gain is 0 dB).

``transient`` runs recursive filters and one-pole envelopes with carried state, so block-wise
output equals whole-file output exactly; ``clarity`` uses frames on an absolute grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from audio_restorer.stages._tone_stft import fft_size, istft, stft
from audio_restorer.stages.base import FunctionStream, Stage, Stream
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

_FLOOR = 1e-9  # mean-square floor (-90 dBFS): silence and faint hiss never count as attacks


def _one_pole(ms: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    alpha = 1.0 - np.exp(-1.0 / max(1.0, ms * 1e-3 * rate))
    return np.array([alpha]), np.array([1.0, alpha - 1.0])


def presence_band_sos(presence_hz: float, rate: int) -> np.ndarray:
    lo = min(0.6 * presence_hz, 0.3 * rate)
    hi = min(2.5 * presence_hz, 0.45 * rate)
    return signal.butter(2, [lo, hi], btype="bandpass", fs=rate, output="sos")


# ------------------------------------------------------------------------------------------------
# transient


@dataclass(frozen=True)
class TransientParams(StageParams):
    amount_db: float = param(
        4.0, min=0.0, max=12.0, step=0.5, unit="dB", help="Presence lift at a full attack."
    )
    presence_hz: float = param(
        3000.0,
        min=1000.0,
        max=8000.0,
        step=100.0,
        unit="Hz",
        help="Centre of the presence band (the band spans 0.6x to 2.5x this).",
    )
    attack_ms: float = param(
        3.0, min=0.5, max=20.0, step=0.5, unit="ms", help="Fast envelope time constant."
    )
    release_ms: float = param(
        80.0, min=20.0, max=500.0, step=5.0, unit="ms", help="Slow envelope time constant."
    )
    sensitivity_db: float = param(
        6.0,
        min=1.0,
        max=20.0,
        step=0.5,
        unit="dB",
        help="Rise of the fast over the slow envelope that gives the full lift.",
    )


class TransientShaper:
    """Stateful ``block -> block`` function (see :class:`Transient`)."""

    def __init__(self, p: TransientParams, rate: int, channels: int) -> None:
        self.p = p
        self.sos = presence_band_sos(p.presence_hz, rate)
        self.zi = np.zeros((self.sos.shape[0], channels, 2))
        self.fast = _one_pole(p.attack_ms, rate)
        self.slow = _one_pole(p.release_ms, rate)
        self.zf = np.zeros(1)
        self.zs = np.zeros(1)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        x = block.astype(np.float64)
        band, self.zi = signal.sosfilt(self.sos, x, axis=1, zi=self.zi)
        power = np.mean(band * band, axis=0)
        fast, self.zf = signal.lfilter(*self.fast, power, zi=self.zf)
        slow, self.zs = signal.lfilter(*self.slow, power, zi=self.zs)
        rise = 10.0 * np.log10((fast + _FLOOR) / (slow + _FLOOR))
        weight = np.clip(rise / self.p.sensitivity_db, 0.0, 1.0)
        lift = 10.0 ** (self.p.amount_db * weight / 20.0) - 1.0
        return (x + lift * band).astype(np.float32)


@register
class Transient(Stage):
    name = "transient"
    title = "Transient presence"
    summary = "Lifts the presence band during attacks to restore bite to dulled transfers."
    Params = TransientParams

    def open(self, rate: int, channels: int, analysis: object = None) -> Stream:
        return FunctionStream(TransientShaper(self.params, rate, channels), channels)


# ------------------------------------------------------------------------------------------------
# clarity


@dataclass(frozen=True)
class ClarityParams(StageParams):
    strength: float = param(
        0.7, min=0.0, max=1.0, step=0.05, help="Share of the tilt deviation that is corrected."
    )
    split_hz: float = param(
        2500.0,
        min=800.0,
        max=8000.0,
        step=100.0,
        unit="Hz",
        help="Frequency above which the presence band is raised or lowered.",
    )
    window_s: float = param(
        4.0,
        min=1.0,
        max=30.0,
        step=0.5,
        unit="s",
        help="Averaging time of the tilt measurement (slower = gentler).",
    )
    max_db: float = param(
        6.0, min=0.0, max=12.0, step=0.5, unit="dB", help="Largest boost or cut applied."
    )


@dataclass(frozen=True)
class ClarityAnalysis:
    target_db: float  # the side's median presence/body tilt
    curve_db: np.ndarray  # presence-band gain (dB) per 100 ms sub-block
    step: int  # frames per sub-block


def _split_filters(split_hz: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    split = min(split_hz, 0.4 * rate)
    high = signal.butter(4, split, btype="highpass", fs=rate, output="sos")
    body = signal.butter(2, [min(200.0, split / 2), split], btype="bandpass", fs=rate, output="sos")
    return high, body


class TiltAnalyzer:
    """Energies of the presence and body bands per 100 ms sub-block (a few floats per second)."""

    def __init__(self, stage: Clarity, rate: int, channels: int) -> None:
        self.params = stage.params
        self.rate = rate
        self.sub = rate // 10
        self.high, self.body = _split_filters(stage.params.split_hz, rate)
        self.zh = np.zeros((self.high.shape[0], channels, 2))
        self.zb = np.zeros((self.body.shape[0], channels, 2))
        self.partial = np.zeros((2, 0))
        self.sums: list[np.ndarray] = []

    def update(self, block: np.ndarray) -> None:
        if not block.shape[1]:
            return
        x = block.astype(np.float64)
        h, self.zh = signal.sosfilt(self.high, x, axis=1, zi=self.zh)
        b, self.zb = signal.sosfilt(self.body, x, axis=1, zi=self.zb)
        power = np.concatenate(
            [self.partial, np.vstack([np.sum(h * h, axis=0), np.sum(b * b, axis=0)])], axis=1
        )
        full = power.shape[1] // self.sub * self.sub
        self.sums.append(power[:, :full].reshape(2, -1, self.sub).mean(axis=2))
        self.partial = power[:, full:]

    def result(self) -> ClarityAnalysis:
        parts = [*self.sums]
        if self.partial.shape[1]:
            parts.append(self.partial.mean(axis=1, keepdims=True))
        energy = np.concatenate(parts, axis=1) if parts else np.zeros((2, 0))
        return ClarityAnalysis(*tilt_curve(energy, self.params), self.sub)


def tilt_curve(energy: np.ndarray, p: ClarityParams) -> tuple[float, np.ndarray]:
    """Target tilt and gain curve from per-sub-block (presence, body) energies ``(2, n)``."""
    n = energy.shape[1]
    if not n:
        return 0.0, np.zeros(0)
    size = max(1, round(p.window_s * 10))
    smooth = ndimage.uniform_filter1d(energy, size=size, axis=1, mode="nearest")
    total = energy.sum(axis=0)
    active = total > 1e-5 * np.max(total) if np.max(total) > 0 else np.zeros(n, bool)
    active &= smooth[1] > 0
    if not np.any(active):
        return 0.0, np.zeros(n)
    tilt = 10.0 * np.log10((smooth[0] + 1e-20) / (smooth[1] + 1e-20))
    target = float(np.median(tilt[active]))
    correction = np.clip(p.strength * (target - tilt), -p.max_db, p.max_db)
    index = np.arange(n)
    correction = np.interp(index, index[active], correction[active])
    return target, ndimage.uniform_filter1d(correction, size=max(1, size // 2), mode="nearest")


@register
class Clarity(Stage):
    name = "clarity"
    title = "Clarity (dynamic tilt)"
    summary = "Slow dynamic high-frequency tilt that keeps presence steady across a side."
    Params = ClarityParams

    def analyzer(self, rate: int, channels: int) -> TiltAnalyzer:
        return TiltAnalyzer(self, rate, channels)

    def n_fft(self, rate: int) -> int:
        return fft_size(rate, 2048)

    def context_frames(self, rate: int) -> int:
        return self.n_fft(rate)

    def alignment_frames(self, rate: int) -> int:
        return self.n_fft(rate) // 4

    def process(
        self,
        audio: np.ndarray,
        rate: int,
        *,
        analysis: ClarityAnalysis | None = None,
        offset: int = 0,
    ) -> np.ndarray:
        if analysis is None:
            analysis = self.analyze(audio, rate)
        if not analysis.curve_db.size or not audio.shape[1]:
            return audio.copy()
        n = self.n_fft(rate)
        hop = n // 4
        spec = stft(audio.astype(np.float64), n)
        # frame j is centred on frame offset + j*hop - (n - hop) + n/2 of the file
        centres = offset + np.arange(spec.shape[1]) * hop - (n - hop) + n // 2
        points = (np.arange(analysis.curve_db.size) + 0.5) * analysis.step
        gain = 10.0 ** (np.interp(centres, points, analysis.curve_db) / 20.0)
        # zero-phase shelf: raised cosine in log frequency over half an octave around the split
        freqs = np.fft.rfftfreq(n, 1.0 / rate)
        split = min(self.params.split_hz, 0.4 * rate)
        pos = np.clip(np.log2(np.maximum(freqs, 1.0) / split) * 2.0 + 0.5, 0.0, 1.0)
        shelf = 0.5 - 0.5 * np.cos(np.pi * pos)
        spec *= 1.0 + (gain[:, None] - 1.0) * shelf
        return istft(spec, n, audio.shape[1]).astype(np.float32)
