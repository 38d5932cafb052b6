"""Wow & flutter correction: measure the speed error from the music itself and undo it.

Off-centre discs (once per revolution: 0.55 Hz at 78 rpm, 0.75 Hz at 45 rpm), drifting
turntables and stretched or badly transported tape play the music at a varying speed, which
is heard as a wavering pitch. An analysis pass tracks the playback-speed ratio every 10 ms
(built-in spectral-peak engine, or CREPE), keeping only that curve. ``result()`` then turns it
into a correction:

1. band-limit the log-speed curve to ``min_wow_hz``..40 Hz (slower changes are the music's own
   tuning and tempo; the overall mean pitch and length are kept), undoing the analysis
   window's smoothing of fast flutter;
2. split it at 4 Hz into wow and flutter, each with its own strength;
3. protect vibrato: a mechanical flutter is stationary, at a fixed rate all through the
   file, while vibrato comes and goes with the notes. In a short-time spectrum of the flutter
   curve, every cell is limited to ``1 / vibrato_protection`` times the median level of its
   modulation frequency over the whole file, so intermittent modulation is left alone;
4. integrate the speed into a time map (output time -> input time), aligned at both ends.

Processing reads the input at the mapped positions with a windowed-sinc interpolator. The
map is global, so any block of the file is corrected exactly as in a whole-file run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import interpolate, signal

from audio_restorer.errors import ParameterError
from audio_restorer.pitch.tracker import PeakSpeedTracker, SpeedTrack
from audio_restorer.stages._timewarp import HALF_TAPS, read_at
from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

#: largest time displacement the correction may apply (the context each block needs)
MAX_SHIFT_S = 0.1
#: boundary between wow and flutter
WOW_FLUTTER_HZ = 4.0
#: fastest flutter corrected
MAX_FLUTTER_HZ = 40.0
#: the analysis-window compensation never amplifies more than this
MAX_COMPENSATION = 3.0
CENTS = 1200.0 / np.log(2.0)


@dataclass(frozen=True)
class WowFlutterParams(StageParams):
    engine: str = param(
        "builtin",
        choices=("builtin", "crepe"),
        help="Speed tracker: 'builtin' follows all partials (no torch); 'crepe' follows the "
        "main melody with the CREPE network (torchcrepe).",
    )
    model: str = param(
        "tiny", choices=("tiny", "full"), help="CREPE model size (engine 'crepe' only)."
    )
    wow: float = param(
        1.0, min=0.0, max=1.0, step=0.05, help="Share of the slow (< 4 Hz) speed error removed."
    )
    flutter: float = param(
        1.0, min=0.0, max=1.0, step=0.05, help="Share of the fast (4-40 Hz) speed error removed."
    )
    min_wow_hz: float = param(
        0.2,
        min=0.05,
        max=2.0,
        step=0.05,
        unit="Hz",
        help="Speed changes slower than this are left alone (the music's own tempo and tuning).",
    )
    threshold_cents: float = param(
        1.0,
        min=0.0,
        max=10.0,
        step=0.1,
        unit="cents",
        help="Deviations weaker than a steady wobble of this depth are mostly left alone "
        "(below it the measurement's own wander dominates).",
    )
    vibrato_protection: float = param(
        0.5,
        min=0.0,
        max=1.0,
        step=0.05,
        help="How strongly intermittent 4-40 Hz modulation (vibrato) is spared; 0 corrects "
        "all of it, 1 keeps only what is steady through the whole file.",
    )


@dataclass(frozen=True)
class TimeMap:
    """Result of the analysis: the correction, as small curves on a 10 ms grid.

    Attributes
    ----------
    hop_s : float
        Grid spacing (recording time) in seconds.
    wow_cents, flutter_cents : np.ndarray [shape=(frames,)]
        Measured speed deviation (band-limited, before strengths and protection), in cents.
    correction_cents : np.ndarray [shape=(frames,)]
        The deviation that is removed.
    out_times : np.ndarray [shape=(frames,)]
        Output (corrected) time of each grid point, seconds.
    shift : np.ndarray [shape=(frames,)]
        Input time minus output time at those points, seconds.
    """

    hop_s: float
    wow_cents: np.ndarray
    flutter_cents: np.ndarray
    correction_cents: np.ndarray
    out_times: np.ndarray
    shift: np.ndarray

    spline: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spline = None
        if self.out_times.size >= 2:
            spline = interpolate.CubicSpline(self.out_times, self.shift)
        object.__setattr__(self, "spline", spline)

    def input_times(self, out_times: np.ndarray) -> np.ndarray:
        """Input time (s) to read for each output time (s)."""
        if self.spline is None:
            return np.asarray(out_times, dtype=np.float64)
        inside = np.clip(out_times, self.out_times[0], self.out_times[-1])
        return out_times + self.spline(inside)


def _band_gains(n: int, frame_rate: float, lo_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-phase magnitude responses on an rfft grid of ``n`` points: (wow, flutter).

    Both are band-limited to ``lo_hz``..40 Hz (2nd-order Butterworth magnitudes) and split at
    4 Hz by complementary power responses, so wow + flutter = the whole band.
    """
    f = np.fft.rfftfreq(n, 1.0 / frame_rate)
    hp = 1.0 / np.sqrt(1.0 + (lo_hz / np.maximum(f, 1e-9)) ** 4)
    hp[0] = 0.0
    lp = 1.0 / np.sqrt(1.0 + (f / MAX_FLUTTER_HZ) ** 8)
    split = 1.0 / (1.0 + (f / WOW_FLUTTER_HZ) ** 4)
    band = hp * lp
    return band * split, band * (1.0 - split)


def _window_response(n: int, frame_rate: float, window_s: float) -> np.ndarray:
    """Gain that undoes the analysis window's averaging of fast speed changes (rfft grid).

    The phase-difference frequency of a frame is, to first order, the average of the
    instantaneous frequency weighted by the squared Hann window.
    """
    f = np.fft.rfftfreq(n, 1.0 / frame_rate)
    if window_s <= 0:
        return np.ones_like(f)
    m = 256
    w = np.hanning(m + 2)[1:-1] ** 2
    w /= w.sum()
    tau = (np.arange(m) - (m - 1) / 2) / m * window_s
    h = np.abs(np.exp(-2j * np.pi * np.outer(f, tau)) @ w)
    return 1.0 / np.maximum(h, 1.0 / MAX_COMPENSATION)


def _filtered(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Apply a zero-phase gain (on the rfft grid of the symmetric extension of ``x``)."""
    ext = np.concatenate([x, x[::-1]])
    return np.fft.irfft(np.fft.rfft(ext) * gain, ext.size)[: x.size]


def protect_vibrato(curve: np.ndarray, frame_rate: float, protection: float) -> np.ndarray:
    """Limit each time-frequency cell of ``curve`` to ``1/protection`` x its long-term median.

    Parameters
    ----------
    curve : np.ndarray [shape=(frames,)]
        Flutter curve (log speed), sampled at ``frame_rate``.
    protection : float
        0..1; 0 returns the curve unchanged.
    """
    if protection <= 0 or curve.size < 16:
        return curve
    nper = int(min(256, 2 ** np.floor(np.log2(curve.size))))
    _, _, z = signal.stft(curve, fs=frame_rate, nperseg=nper, noverlap=nper * 3 // 4)
    mag = np.abs(z)
    ref = np.median(mag, axis=1, keepdims=True)
    gain = np.minimum(1.0, ref / (protection * np.maximum(mag, 1e-15)))
    _, out = signal.istft(z * gain, fs=frame_rate, nperseg=nper, noverlap=nper * 3 // 4)
    out = out[: curve.size]
    if out.size < curve.size:
        out = np.pad(out, (0, curve.size - out.size))
    return out


def gate_small(curve: np.ndarray, frame_rate: float, threshold: float) -> np.ndarray:
    """Attenuate time-frequency cells of ``curve`` weaker than a sinusoid of amplitude
    ``threshold`` (same units as the curve), with the gain ``m^2 / (m^2 + floor^2)``.

    The tracker's own error wanders at random, spread thinly over many modulation
    frequencies; a real wow or flutter concentrates in a few. Cells at the threshold keep
    half their level, cells at twice it 80 %.
    """
    if threshold <= 0 or curve.size < 16:
        return curve
    nper = int(min(256, 2 ** np.floor(np.log2(curve.size))))
    _, _, z = signal.stft(curve, fs=frame_rate, nperseg=nper, noverlap=nper * 3 // 4)
    floor = 0.5 * threshold  # |Z| of a sinusoid of amplitude A is A / 2 with this scaling
    power = np.abs(z) ** 2
    gain = power / (power + floor**2)
    _, out = signal.istft(z * gain, fs=frame_rate, nperseg=nper, noverlap=nper * 3 // 4)
    out = out[: curve.size]
    if out.size < curve.size:
        out = np.pad(out, (0, curve.size - out.size))
    return out


def build_time_map(track: SpeedTrack, params: WowFlutterParams) -> TimeMap:
    """Turn a measured speed track into the correction's time map (see module docstring)."""
    log_speed = track.log_speed
    n = log_speed.size
    hop = track.hop_s
    if n < 4:
        zeros = np.zeros(n)
        return TimeMap(hop, zeros, zeros, zeros, np.arange(n) * hop, zeros)
    frame_rate = 1.0 / hop
    x = log_speed - log_speed.mean()
    ext_n = 2 * n
    g_wow, g_flutter = _band_gains(ext_n, frame_rate, params.min_wow_hz)
    comp = _window_response(ext_n, frame_rate, track.window_s)
    wow = _filtered(x, g_wow * comp)
    flutter = _filtered(x, g_flutter * comp)
    kept_flutter = protect_vibrato(flutter, frame_rate, params.vibrato_protection)
    correction = params.wow * wow + params.flutter * kept_flutter
    correction = gate_small(correction, frame_rate, params.threshold_cents / CENTS)
    times = np.arange(n) * hop
    shift = _shift(correction, hop)
    peak = float(np.max(np.abs(shift)))
    if peak > MAX_SHIFT_S:  # scale the whole correction rather than clip it
        correction = correction * (MAX_SHIFT_S / peak)
        shift = _shift(correction, hop)
    out_times = times - shift
    return TimeMap(hop, wow * CENTS, flutter * CENTS, correction * CENTS, out_times, shift)


def _shift(correction: np.ndarray, hop: float) -> np.ndarray:
    """Input time minus output time at each grid point, for log-speed ``correction``.

    Output time ``u(t) = integral of speed``, with the speed scaled to mean 1 so both ends
    stay aligned (length and mean pitch kept).
    """
    speed = np.exp(correction)
    speed /= speed.mean()
    steps = 0.5 * (speed[1:] + speed[:-1]) * hop
    u = np.concatenate([[0.0], np.cumsum(steps)])
    t = np.arange(speed.size) * hop
    u *= t[-1] / u[-1]
    return t - u


class WowFlutterAnalyzer:
    """Runs a speed tracker over the mono mix of every block."""

    def __init__(self, params: WowFlutterParams, rate: int, device: str) -> None:
        self.params = params
        if params.engine == "crepe":
            from audio_restorer.ml.crepe import CrepeSpeedTracker

            self.tracker: Any = CrepeSpeedTracker(rate, model=params.model, device=device)
        else:
            self.tracker = PeakSpeedTracker(rate)

    def update(self, block: np.ndarray) -> None:
        if block.shape[1]:
            self.tracker.push(block.mean(axis=0, dtype=np.float64))

    def result(self) -> TimeMap:
        return build_time_map(self.tracker.finish(), self.params)


@register
class WowFlutter(Stage):
    name = "wowflutter"
    title = "Wow & flutter"
    summary = "Measure the playback-speed wavering from the music and undo it (length kept)."
    Params = WowFlutterParams

    @property
    def uses_torch(self) -> bool:  # type: ignore[override]
        return self.params.engine == "crepe"

    def context_frames(self, rate: int) -> int:
        return int(np.ceil(MAX_SHIFT_S * rate)) + HALF_TAPS + 2

    def analyzer(self, rate: int, channels: int) -> WowFlutterAnalyzer:
        return WowFlutterAnalyzer(self.params, rate, self.device)

    def process(
        self, audio: np.ndarray, rate: int, *, analysis: Any = None, offset: int = 0
    ) -> np.ndarray:
        if not isinstance(analysis, TimeMap):
            raise ParameterError(
                f"wowflutter needs its analysis pass (a TimeMap), got {type(analysis).__name__}"
            )
        frames = audio.shape[1]
        out_t = (offset + np.arange(frames)) / rate
        positions = analysis.input_times(out_t) * rate - offset
        return read_at(audio, positions)
