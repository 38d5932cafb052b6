"""Broadband noise reduction (hiss, surface noise) with statistically optimal STFT gains.

Plain spectral subtraction and gating leave "musical noise" (isolated spectral peaks that come
and go) or dull the music. This stage instead uses the log-spectral-amplitude MMSE estimator of
Ephraim & Malah (1985), whose gain depends on both the a-posteriori SNR of the current frame and
an a-priori SNR tracked with the decision-directed rule (Ephraim & Malah 1984). The decision-
directed recursion smooths the SNR over time, which is what keeps residual noise steady instead
of twinkling; a reduction limit keeps the noise lowered rather than gated to silence, and a
transient detector lets the a-priori SNR follow sharp onsets.

The noise power spectrum comes from a whole-file analysis pass (:class:`NoiseAnalyzer`):

* a user-marked time range (``profile_start_s``/``profile_end_s``) when given: the mean power
  spectrum of its frames, at full frequency resolution;
* otherwise the quietest passages: the mean spectrum of the 10 % quietest one-second segments
  (lead-in groove, pauses), bounded by the median of a per-bin minimum-statistics estimate
  (Martin 2001) so that a file without pauses does not mistake quiet music for noise.

On top of either, a slow tracker follows noise that drifts along a side or a reel: the
minimum-statistics level of every second, relative to the quiet passages, gives one
broadband factor per second and channel (a low percentile over frequency bands, so music in some
bands does not lift it), median-filtered and limited to +-6 dB. The analysis result is a base
spectrum per channel plus that one-number-per-second track, so it stays small for long files
and the block-wise result equals the whole-file result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import ndimage, signal, special

from audio_restorer.errors import ParameterError
from audio_restorer.stages._stft import fft_size, istft, sqrt_hann, stft
from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

#: seconds per segment of the noise tracker (one drift factor per segment)
SEGMENT_S = 1.0
#: fraction of the quietest segments averaged into the automatic profile
QUIET_FRACTION = 0.1
#: recursive smoothing of the periodogram for minimum statistics (per 11.6 ms hop)
MS_SMOOTHING = 0.7
#: frames after the start of the file before the smoothed periodogram enters the minimum
MS_WARMUP = 8
#: E[noise power] / E[per-bin minimum over a 1 s segment of the smoothed periodogram] for
#: Gaussian noise with the settings above (measured by simulation on white noise at 22.05 and
#: 44.1 kHz with the default window; it depends only on the smoothing and the window length)
MS_BIAS = 3.86
#: limits of the drift tracker relative to the quiet passages, in dB, after a dead band
DRIFT_LIMIT_DB = 6.0
DRIFT_DEADBAND_DB = 1.0
#: percentile over frequency bands of (tracked minimum / base) that measures a segment's noise
#: level: low, so that music present in many bands does not read as louder noise
DRIFT_PERCENTILE = 10
#: lower limit of the a-priori SNR (-25 dB), the usual choice against musical noise
XI_MIN = 10.0 ** (-25.0 / 10.0)
#: frames below this mean power per sample are treated as digital silence (-100 dBFS)
SILENCE_POWER = 1e-10


@dataclass(frozen=True)
class DenoiseParams(StageParams):
    reduction_db: float = param(
        18.0,
        min=0.0,
        max=40.0,
        step=0.5,
        unit="dB",
        help="Most the noise is lowered; the floor keeps it natural instead of gated.",
    )
    profile_start_s: float | None = param(
        None,
        min=0.0,
        step=0.01,
        unit="s",
        help="Start of a noise-only passage to learn the noise from (None: automatic).",
    )
    profile_end_s: float | None = param(
        None,
        min=0.0,
        step=0.01,
        unit="s",
        help="End of the noise-only passage (with profile_start_s).",
    )
    noise_offset_db: float = param(
        0.0,
        min=-10.0,
        max=10.0,
        step=0.5,
        unit="dB",
        help="Raise (more reduction) or lower (gentler) the noise estimate.",
    )
    track_drift: bool = param(
        True, help="Follow noise that drifts slowly in level along the recording."
    )
    smoothing: float = param(
        0.98,
        min=0.5,
        max=0.995,
        step=0.005,
        help="Decision-directed smoothing of the a-priori SNR per 8 ms (higher: fewer "
        "artefacts, slower response).",
    )
    protect_transients: bool = param(
        True, help="Let the gain open instantly on sharp onsets (drums, consonants, clicks)."
    )
    window_ms: float = param(
        46.0, min=16.0, max=100.0, step=1.0, unit="ms", help="STFT window length."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        start, end = self.profile_start_s, self.profile_end_s
        if (start is None) != (end is None):
            raise ParameterError(
                "denoise.profile_start_s and profile_end_s must be given together, got "
                f"{start!r} and {end!r}"
            )
        if start is not None and end is not None and end <= start:
            raise ParameterError(
                f"denoise.profile_end_s must be after profile_start_s, got {start} .. {end}"
            )


def _grid(rate: int, window_ms: float) -> tuple[int, int]:
    n_fft = fft_size(rate, window_ms)
    return n_fft, n_fft // 4


def _bands(n_bins: int, per_octave: int = 24, linear_below: int = 32) -> np.ndarray:
    """Start bin of each analysis band: single bins up to ``linear_below``, then 1/24 octave."""
    k = np.arange(n_bins, dtype=np.float64)
    idx = np.where(
        k < linear_below,
        k,
        linear_below + np.floor(per_octave * np.log2(np.maximum(k, 1.0) / linear_below)),
    ).astype(np.int64)
    return np.flatnonzero(np.diff(idx, prepend=-1))


@dataclass(frozen=True)
class NoiseAnalysis:
    """Result of the analysis pass: the noise power spectrum at any time of the file.

    Attributes
    ----------
    base : np.ndarray [shape=(channels, n_fft // 2 + 1), dtype=float64]
        Noise power per STFT bin (squared magnitude of the sqrt-Hann-windowed frame).
    drift : np.ndarray [shape=(segments, channels)]
        Linear power factor applied to ``base`` at the centre of each segment.
    segment_frames : int
        Samples per segment.
    source : str
        ``"profile"`` (user range), ``"auto"`` or ``"none"`` (nothing but digital silence).
    """

    base: np.ndarray
    drift: np.ndarray
    segment_frames: int
    source: str

    def at(self, times: np.ndarray) -> np.ndarray:
        """Noise power spectra at sample positions ``times`` [shape=(n,)] of the file.

        Returns
        -------
        np.ndarray [shape=(channels, n, bins)]
        """
        seg = self.segment_frames
        centres = (np.arange(self.drift.shape[0]) + 0.5) * seg
        logd = np.log(self.drift)
        factors = np.stack(
            [np.exp(np.interp(times, centres, logd[:, c])) for c in range(logd.shape[1])]
        )
        return factors[:, :, None] * self.base[:, None, :]


class NoiseAnalyzer:
    """Whole-file pass that learns the noise spectrum and its slow drift.

    Keeps, per one-second segment and channel, the band-averaged mean power and the band-
    averaged per-bin minimum of the smoothed power (about 150 bands), plus the full-resolution
    sum over the user's profile range: a few kilobytes per second of audio, not the audio.
    """

    def __init__(
        self,
        rate: int,
        channels: int,
        n_fft: int,
        hop: int,
        profile: tuple[float, float] | None,
        track: bool = True,
    ) -> None:
        self.rate, self.channels, self.n_fft, self.hop = rate, channels, n_fft, hop
        self.bins = n_fft // 2 + 1
        self.starts = _bands(self.bins)
        self.widths = np.diff(np.append(self.starts, self.bins))
        self.seg_hops = max(1, round(SEGMENT_S * rate / hop))
        self.window = sqrt_hann(n_fft)
        self.buf = np.zeros((channels, n_fft - hop), dtype=np.float32)
        self.length = 0
        self.next_frame = 0
        a = MS_SMOOTHING ** (hop / (0.0116 * rate))
        self.smooth_b, self.smooth_a = [1.0 - a], [1.0, -a]
        self.zi: np.ndarray | None = None
        self.profile = profile
        self.track = track
        self.profile_sum = np.zeros((channels, self.bins))
        self.profile_count = 0
        # closed segments and the one being filled
        self.seg_mean: list[np.ndarray] = []
        self.seg_min: list[np.ndarray] = []
        self.seg_count: list[int] = []
        self.cur_id = 0
        self.cur_sum = np.zeros((channels, self.bins))
        self.cur_min = np.full((channels, self.bins), np.inf)
        self.cur_count = 0

    def update(self, block: np.ndarray) -> None:
        if not block.shape[1]:
            return
        self.length += block.shape[1]
        self.buf = np.concatenate([self.buf, block.astype(np.float32, copy=False)], axis=1)
        n = (self.buf.shape[1] - self.n_fft) // self.hop + 1
        if n > 0:
            self._frames(self.buf[:, : (n - 1) * self.hop + self.n_fft])
            self.buf = self.buf[:, n * self.hop :]

    def _frames(self, samples: np.ndarray) -> None:
        view = np.lib.stride_tricks.sliding_window_view(samples, self.n_fft, axis=1)[:, :: self.hop]
        first = self.next_frame
        self.next_frame += view.shape[1]
        # only frames that lie wholly inside the signal: the zero-padded ones at either end
        # would bias the levels (and the minimum statistics) downwards
        index = first + np.arange(view.shape[1])
        full = index >= self.n_fft // self.hop - 1
        if not full.any():
            return
        view, index = view[:, full], index[full]
        power = np.abs(sfft.rfft(view * self.window, axis=-1)) ** 2  # (ch, F, K)
        if self.zi is None:
            self.zi = self.smooth_a[1] * -power[:, 0, :, None]
        smoothed, self.zi = signal.lfilter(
            self.smooth_b, self.smooth_a, power.transpose(0, 2, 1), axis=-1, zi=self.zi
        )
        smoothed = smoothed.transpose(0, 2, 1)
        if self.profile is not None:
            centre = (index * self.hop - self.n_fft // 2 + self.hop) / self.rate
            sel = (centre >= self.profile[0]) & (centre <= self.profile[1])
            if sel.any():
                self.profile_sum += power[:, sel].sum(axis=1)
                self.profile_count += int(sel.sum())
        seg = index // self.seg_hops
        for s in np.unique(seg):
            sel = seg == s
            if s != self.cur_id:
                self._close()
                self.cur_id = int(s)
            self.cur_sum += power[:, sel].sum(axis=1)
            # the smoothed power needs a few time constants to settle after the first frame
            settled = sel & (index >= self.n_fft // self.hop - 1 + MS_WARMUP)
            if settled.any():
                self.cur_min = np.minimum(self.cur_min, smoothed[:, settled].min(axis=1))
            self.cur_count += int(sel.sum())

    def _band(self, x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, self.starts, axis=-1) / self.widths

    def _close(self) -> None:
        if self.cur_count:
            self.seg_mean.append(self._band(self.cur_sum / self.cur_count))
            cur_min = np.where(
                np.isfinite(self.cur_min), self.cur_min, self.cur_sum / self.cur_count
            )
            self.seg_min.append(self._band(cur_min))
            self.seg_count.append(self.cur_count)
        self.cur_sum = np.zeros_like(self.cur_sum)
        self.cur_min = np.full_like(self.cur_min, np.inf)
        self.cur_count = 0

    def result(self) -> NoiseAnalysis:
        self._close()
        seg_frames = self.seg_hops * self.hop
        channels = self.channels
        if not self.seg_mean:
            return NoiseAnalysis(
                np.zeros((channels, self.bins)), np.ones((1, channels)), seg_frames, "none"
            )
        mean = np.stack(self.seg_mean)  # (S, ch, B)
        tracked = MS_BIAS * np.stack(self.seg_min)
        level = (mean * self.widths).sum(axis=(1, 2)) / (channels * self.n_fft)
        # segments that are not digital silence; "reliable" ones also hold at least half a
        # segment of frames (the minimum of a handful of frames is not a minimum statistic)
        valid = level > SILENCE_POWER * self.n_fft / 2
        reliable = valid & (np.array(self.seg_count) >= self.seg_hops // 2)
        if not reliable.any():
            reliable = valid
        if self.profile_count:
            base = self.profile_sum / self.profile_count
            base_b = self._band(base)
            source = "profile"
            quiet = np.array([], dtype=np.int64)
        elif valid.any():
            order = np.flatnonzero(reliable)[np.argsort(level[reliable], kind="stable")]
            quiet = order[: max(1, int(np.ceil(QUIET_FRACTION * order.size)))]
            base_b = np.minimum(mean[quiet].mean(axis=0), np.median(tracked[reliable], axis=0))
            base = base_b[:, np.repeat(np.arange(self.starts.size), self.widths)]
            source = "auto"
        else:
            return NoiseAnalysis(
                np.zeros((channels, self.bins)),
                np.ones((mean.shape[0], channels)),
                seg_frames,
                "none",
            )
        drift = np.zeros((mean.shape[0], channels))
        if self.track and reliable.sum() >= 3:
            # bands above ~60 Hz (hum and rumble are not what this stage tracks)
            low = int(np.searchsorted(self.starts, 60.0 * self.n_fft / self.rate))
            ratio = np.log(np.maximum(tracked[reliable][:, :, low:], 1e-30)) - np.log(
                np.maximum(base_b[None, :, low:], 1e-30)
            )
            level_r = np.percentile(ratio, DRIFT_PERCENTILE, axis=2)  # (R, ch)
            if quiet.size:
                ref = level_r[np.searchsorted(np.flatnonzero(reliable), quiet)]
            else:
                ref = level_r
            level_r = ndimage.median_filter(
                level_r - np.median(ref, axis=0), size=(5, 1), mode="nearest"
            )
            # a dead band absorbs the small upward bias that music gives the percentile
            db = 10.0 / np.log(10.0)
            dead = np.maximum(np.abs(level_r) * db - DRIFT_DEADBAND_DB, 0.0)
            level_r = np.sign(level_r) * np.minimum(dead, DRIFT_LIMIT_DB) / db
            index = np.flatnonzero(reliable)
            segs = np.arange(mean.shape[0])
            drift = np.stack(
                [np.interp(segs, index, level_r[:, c]) for c in range(channels)], axis=1
            )
        return NoiseAnalysis(base, np.exp(drift), seg_frames, source)


#: 0.5 * E1(v) tabulated against ln v on [ln 1e-8, ln 60] (0.01 steps): linear interpolation
#: of this smooth curve is exact to ~1e-5 and several times faster than evaluating E1
_LOG_V = np.linspace(np.log(1e-8), np.log(60.0), 2300)
_HALF_E1 = 0.5 * special.exp1(np.exp(_LOG_V))


def log_mmse_gain(xi: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Ephraim-Malah log-spectral-amplitude gain, limited to at most 1.

    ``G = xi / (1 + xi) * exp(E1(v) / 2)`` with ``v = xi / (1 + xi) * gamma``.

    Parameters
    ----------
    xi, gamma : np.ndarray
        A-priori and a-posteriori SNR (linear power ratios), same shape.
    """
    r = xi / (1.0 + xi)
    log_v = np.log(np.maximum(r * gamma, 1e-8))
    half_e1 = np.interp(log_v, _LOG_V, _HALF_E1, right=0.0)
    return np.minimum(r * np.exp(half_e1), 1.0)


@register
class Denoise(Stage):
    name = "denoise"
    title = "Noise reduction"
    summary = "Lower hiss and surface noise with log-MMSE spectral gains and a tracked profile."
    Params = DenoiseParams
    offers_removed = True

    def _grid(self, rate: int) -> tuple[int, int]:
        return _grid(rate, self.params.window_ms)

    def alignment_frames(self, rate: int) -> int:
        return self._grid(rate)[1]

    def context_frames(self, rate: int) -> int:
        # one window for the overlap-add plus time for the decision-directed recursion to
        # forget its start (measured: block-wise differences below 2e-7 with 1 s)
        n_fft, _ = self._grid(rate)
        return n_fft + int(1.0 * rate)

    def preferred_block_frames(self, rate: int) -> int:
        return 8 * self.context_frames(rate)

    def analyzer(self, rate: int, channels: int) -> NoiseAnalyzer:
        n_fft, hop = self._grid(rate)
        p = self.params
        profile = None
        if p.profile_start_s is not None and p.profile_end_s is not None:
            profile = (p.profile_start_s, p.profile_end_s)
        return NoiseAnalyzer(rate, channels, n_fft, hop, profile, p.track_drift)

    def gains(self, spec: np.ndarray, noise: np.ndarray, rate: int, hop: int) -> np.ndarray:
        """Suppression gains for an STFT given the noise power at every frame.

        Parameters
        ----------
        spec : np.ndarray [shape=(channels, frames, bins), dtype=complex]
        noise : np.ndarray [shape=(channels, frames, bins)]
            Noise power per bin (same scale as ``abs(spec) ** 2``).

        Returns
        -------
        np.ndarray [shape=(channels, frames, bins), dtype=float32]
            In ``[10 ** (-reduction_db / 20), 1]``.
        """
        p = self.params
        g_min = 10.0 ** (-p.reduction_db / 20.0)
        noise = noise * 10.0 ** (p.noise_offset_db / 10.0)
        power = spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2
        gamma = np.where(noise > 0, power / np.maximum(noise, 1e-30), 1e6)
        gamma = np.minimum(gamma, 1e6)
        alpha = p.smoothing ** (hop / (0.008 * rate))
        alphas = np.full(gamma.shape[:2], alpha)
        if p.protect_transients:
            # a frame whose high-band a-posteriori SNR jumps 6 dB above both previous frames
            # and well above the noise is an onset: let the a-priori SNR follow it at once
            hi = int(1000.0 * 2 * (gamma.shape[2] - 1) / rate)
            energy = gamma[:, :, hi:].mean(axis=2)
            prev = np.maximum(
                np.pad(energy, ((0, 0), (1, 0)))[:, :-1], np.pad(energy, ((0, 0), (2, 0)))[:, :-2]
            )
            onset = (energy > 4.0 * prev) & (energy > 4.0)
            alphas[onset] = min(alpha, 0.5)
        ml = np.maximum(gamma - 1.0, 0.0)
        out = np.empty(gamma.shape, dtype=np.float32)
        prev_a2 = np.zeros(gamma.shape[::2])
        for t in range(gamma.shape[1]):
            a = alphas[:, t, None]
            g_t = gamma[:, t]
            xi = np.maximum(a * prev_a2 + (1.0 - a) * ml[:, t], XI_MIN)
            gain = log_mmse_gain(xi, g_t)
            prev_a2 = gain * gain * g_t
            out[:, t] = gain
        return np.maximum(out, np.float32(g_min))

    def process(
        self,
        audio: np.ndarray,
        rate: int,
        *,
        analysis: NoiseAnalysis | None = None,
        offset: int = 0,
    ) -> np.ndarray:
        n_fft, hop = self._grid(rate)
        if offset % hop:
            raise ParameterError(
                f"denoise offset must be a multiple of the hop {hop}, got {offset}"
            )
        if analysis is None:
            analyzer = self.analyzer(rate, audio.shape[0])
            analyzer.update(audio)
            analysis = analyzer.result()
        frames = audio.shape[1]
        if analysis.source == "none" or frames == 0:
            return audio.copy()
        spec = stft(audio, n_fft, hop)
        centres = offset + np.arange(spec.shape[1]) * hop - n_fft // 2 + hop
        noise = analysis.at(centres.astype(np.float64))
        gains = self.gains(spec, noise, rate, hop)
        return istft(spec * gains, n_fft, hop, frames)
