"""Wow & flutter correction: measure the speed error from the music itself and undo it.

Off-centre discs (once per revolution: 0.55 Hz at 78 rpm, 0.75 Hz at 45 rpm), drifting
turntables and stretched or badly transported tape play the music at a varying speed, which
is heard as a wavering pitch. An analysis pass measures the speed curve every 10 ms
(built-in partial-track fit, or CREPE for monophonic sources), as two independent estimates
from disjoint halves of the data, keeping only those curves. ``result()`` then turns them
into a correction:

1. significance gate: in a short-time spectrum of the curve (~10 s segments, 0.1 Hz
   resolution), keep only cells that stand ``significance_db`` above the noise floor given by
   the two estimates' disagreement and above ``threshold_cents``; everything else is zero.
   Music without wow gets an exactly zero correction (the output is the input). A periodic
   wow or flutter is a narrow line in this spectrum, so the gate acts like a fit of a few
   sinusoids with slowly varying amplitude;
2. band-limit the log-speed curve to ``min_wow_hz``..40 Hz (slower changes are the music's own
   tuning and tempo; the overall mean pitch and length are kept), undoing the analysis
   window's smoothing of fast flutter, and split it at 4 Hz into wow and flutter, each with
   its own strength;
3. protect vibrato: a mechanical flutter is stationary, at a fixed rate all through the
   file, while vibrato comes and goes with the notes. In a short-time spectrum of the flutter
   curve, every cell is limited to ``1 / vibrato_protection`` times the median level of its
   modulation frequency over the whole file, so intermittent modulation is left alone (the
   built-in tracker also gives partials that move on their own, like one voice's vibrato,
   almost no weight);
4. integrate the speed into a time map (output time -> input time), aligned at both ends.

Processing reads the input at the mapped positions with a windowed-sinc interpolator. The
map is global, so any block of the file is corrected exactly as in a whole-file run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import interpolate, ndimage, signal

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
#: half-width of the modulation-frequency neighbourhood a wow line must stand out of
LINE_HALF_WIDTH_HZ = 1.0
#: power ratio a wow line must reach over that neighbourhood's median
LINE_RATIO = 10.0 ** (6.0 / 10.0)
#: lowest modulation-frequency cell of a line (3 cells: 0.15 Hz with 20 s segments, 0.6 Hz with 5 s)
MIN_LINE_BIN = 3
#: longest segment of the significance gate's short-time spectrum, curve frames (20 s)
SEGMENT_FRAMES = 2048
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
    significance_db: float = param(
        12.0,
        min=0.0,
        max=30.0,
        step=0.5,
        unit="dB",
        help="A component of the speed curve is corrected only when it stands this far above "
        "the tracker's own noise floor (measured from two independent halves of the partials).",
    )
    threshold_cents: float = param(
        1.0,
        min=0.0,
        max=10.0,
        step=0.1,
        unit="cents",
        help="Components weaker than a steady wobble of this depth are left alone "
        "(inaudible, and not worth the resampling).",
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

    @property
    def identity(self) -> bool:
        """True when nothing is corrected (the output is the input, sample for sample)."""
        return not np.any(self.shift)

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


def significance_gate(
    estimate: np.ndarray,
    noise: np.ndarray,
    frame_rate: float,
    ratio: float,
    min_amplitude: float,
) -> np.ndarray:
    """Keep only the parts of the speed curve that stand clearly above the tracker's noise.

    The two halves are independent estimates of the same curve (disjoint sets of partial
    tracks). In a short-time spectrum (segments of up to 1024 frames, ~10 s, i.e. 0.1 Hz
    resolution, so a periodic wow is a narrow line), the power of their half-difference,
    averaged over neighbouring cells, is the noise floor of their mean. A cell of the mean is
    kept, with spectral-subtraction gain ``sqrt(1 - floor / power)``, only when its power
    exceeds ``ratio`` x that floor *and* its level exceeds a sinusoid of amplitude
    ``min_amplitude``; every other cell is set to zero. On music without wow nothing passes
    and the correction is exactly zero.

    Parameters
    ----------
    halves : np.ndarray [shape=(2, frames)]
        The two estimates (any unit, e.g. cents).
    frame_rate : float
        Curve samples per second.
    ratio : float
        Required power ratio over the noise floor (>= 1).
    min_amplitude : float
        Smallest sinusoid amplitude kept (same unit as ``halves``).

    Returns
    -------
    np.ndarray [shape=(frames,)]
        The gated mean curve.
    """
    n = estimate.size
    if n < 16:
        return np.zeros(n)
    nper = int(min(SEGMENT_FRAMES, 2 ** np.floor(np.log2(n))))
    hop = nper // 4
    kw = dict(fs=frame_rate, nperseg=nper, noverlap=nper - hop)
    _, _, z = signal.stft(estimate, **kw)
    _, _, zd = signal.stft(noise, **kw)
    power = np.abs(z) ** 2
    noise = np.abs(zd) ** 2
    # floor: average over +-4 frequency cells and +-4 segments (one segment length each way)
    noise = ndimage.uniform_filter(
        ndimage.median_filter(noise, size=(9, 1), mode="nearest"), size=(1, 9), mode="nearest"
    )
    # A mechanical wow or flutter is periodic and steady: a narrow line at the same
    # modulation frequency all through the file. Intonation, glides and the music's own
    # pitch motion that every partial shares (one voice, a speaker) spread over many
    # frequencies. Lines are found in the whole-file average spectrum (Welch), where they must
    # stand LINE_RATIO above the median of their +-LINE_HALF_WIDTH_HZ neighbourhood, as well
    # as ``ratio`` above the halves' noise floor; only their cells are kept, in every segment.
    mean_power = power.mean(axis=1)
    half = max(4, round(LINE_HALF_WIDTH_HZ * nper / frame_rate))
    motion = ndimage.median_filter(mean_power, size=2 * half + 1, mode="reflect")
    mean_noise = noise.mean(axis=1)
    # |Z| of a sinusoid of amplitude A is A / 2 with scipy's default scaling
    # a line needs neighbours on both sides and a few periods in a segment: none near 0 Hz
    # (there the music's phrasing and slow tempo changes dominate)
    low = np.arange(mean_power.size) < MIN_LINE_BIN
    line = (
        ~low
        & (mean_power > LINE_RATIO * motion)
        & (mean_power > ratio * mean_noise)
        & (mean_power > (0.5 * min_amplitude) ** 2)
    )
    line_gain = np.sqrt(
        np.clip(1.0 - np.maximum(motion, mean_noise) / np.maximum(mean_power, 1e-30), 0.0, 1.0)
    )
    # a line's window main lobe spans +-2 cells: keep those with it, at the line's gain
    lobe = ndimage.maximum_filter1d(np.where(line, line_gain, 0.0), size=5, mode="constant")
    local = np.sqrt(np.clip(1.0 - noise / np.maximum(power, 1e-30), 0.0, 1.0))
    gain = lobe[:, None] * local
    if not np.any(gain):
        return np.zeros(n)
    _, out = signal.istft(z * gain, **kw)
    out = out[:n]
    if out.size < n:
        out = np.pad(out, (0, n - out.size))
    return out


def build_time_map(track: SpeedTrack, params: WowFlutterParams) -> TimeMap:
    """Turn a measured speed track into the correction's time map (see module docstring)."""
    n = track.curves.shape[1]
    hop = track.hop_s
    if n < 16:
        zeros = np.zeros(n)
        return TimeMap(hop, zeros, zeros, zeros, np.arange(n) * hop, zeros)
    frame_rate = 1.0 / hop
    ratio = 10.0 ** (params.significance_db / 10.0)
    gated = significance_gate(track.cents, track.noise, frame_rate, ratio, params.threshold_cents)
    x = gated / CENTS
    ext_n = 2 * n
    g_wow, g_flutter = _band_gains(ext_n, frame_rate, params.min_wow_hz)
    comp = _window_response(ext_n, frame_rate, track.window_s)
    wow = _filtered(x, g_wow * comp)
    flutter = _filtered(x, g_flutter * comp)
    kept_flutter = protect_vibrato(flutter, frame_rate, params.vibrato_protection)
    correction = params.wow * wow + params.flutter * kept_flutter
    times = np.arange(n) * hop
    if not np.any(correction):
        zeros = np.zeros(n)
        return TimeMap(hop, wow * CENTS, flutter * CENTS, zeros, times, zeros)
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

    def findings(self, analysis: TimeMap | None) -> dict[str, object]:
        if analysis is None or not analysis.wow_cents.size:
            return {}

        def rms(x: np.ndarray) -> float:
            return round(float(np.sqrt(np.mean(np.square(x)))), 2)

        wow, flutter = rms(analysis.wow_cents), rms(analysis.flutter_cents)
        peak = round(float(np.max(np.abs(analysis.correction_cents))), 2)
        return {
            "wow_cents_rms": wow,
            "flutter_cents_rms": flutter,
            "correction_cents_peak": peak,
            "summary": f"speed deviation measured: wow {wow:.1f} cents RMS, flutter "
            f"{flutter:.1f} cents RMS; corrected by up to {peak:.1f} cents",
        }

    def analyzer(self, rate: int, channels: int) -> WowFlutterAnalyzer:
        return WowFlutterAnalyzer(self.params, rate, self.device)

    def process(
        self, audio: np.ndarray, rate: int, *, analysis: Any = None, offset: int = 0
    ) -> np.ndarray:
        if not isinstance(analysis, TimeMap):
            raise ParameterError(
                f"wowflutter needs its analysis pass (a TimeMap), got {type(analysis).__name__}"
            )
        if analysis.identity:
            return audio.copy()
        frames = audio.shape[1]
        out_t = (offset + np.arange(frames)) / rate
        positions = analysis.input_times(out_t) * rate - offset
        return read_at(audio, positions)
