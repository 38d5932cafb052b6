"""Broadband noise reduction (hiss, surface noise) with statistically optimal STFT gains.

Plain spectral subtraction and gating leave "musical noise" (isolated spectral peaks that come
and go) or dull the music. This stage instead uses the log-spectral-amplitude MMSE estimator of
Ephraim & Malah (1985), whose gain depends on both the a-posteriori SNR of the current frame and
an a-priori SNR. The file is processed offline, so the a-priori SNR is the mean of two
decision-directed recursions (Ephraim & Malah 1984), one running forward and one backward in
time: each smooths the SNR (which keeps residual noise steady instead of twinkling) but lags by a
few frames, the forward one at onsets and the backward one at note ends, and their mean follows
both. A second step (two-step noise reduction, Plapous, Marro & Scalart 2006) re-estimates the
a-priori SNR from the clean power that the first gain leaves and computes the final gain from
it (Wiener's gain, the mean-square optimum), which removes the recursion's bias towards the
previous frame. A reduction limit keeps the
noise lowered rather than gated to silence, and a transient detector lets the forward a-priori
SNR follow sharp onsets.

The noise power spectrum comes from a whole-file analysis pass (:class:`NoiseAnalyzer`):

* a user-marked time range (``profile_start_s``/``profile_end_s``) when given: the mean power
  spectrum of its frames, at full frequency resolution;
* otherwise the *noise-only* quarter-second passages (lead-in groove, pauses), found by what
  makes noise noise rather than by loudness: in nearly every band the periodogram fluctuates
  like Gaussian noise (arithmetic / geometric mean of 2.5 dB; a steady partial gives ~0 dB, a
  partial among weaker bins or a changing level gives more), the level is steady across the
  passage, the spectrum matches that of the quietest such passage, and in nearly every band
  the level lies at that band's floor over the whole file (its low percentile: a quiet passage
  of music stands above it where its notes are). Their mean spectrum (per band, leaving out
  values far above the band's median) is the profile;
* for music with no pause and no lead-in, the floor itself (minimum statistics over the file):
  per band, the mean of the quietest sub-segments, trusted where they fluctuate like Gaussian
  noise and the band does not stand out of its neighbours (source ``"floor"``). Clean digital
  input, digital silence and clean music pass neither test, and the stage leaves them as they
  are: quiet music is not taken for noise.

Noise spectra are smooth, so narrow peaks of an automatic profile (a partial that sat in the
passage, hum) are cut to 3 dB above the median of the neighbouring bands.

On top of either, a slow tracker follows noise that drifts along a side or a reel: the
minimum-statistics level (Martin 2001) of every second, relative to the noise-only passages,
gives one broadband factor per second and channel (a low percentile over frequency bands, so
music in some bands does not lift it), median-filtered and limited to +-6 dB. The analysis
result is a base spectrum per channel plus that one-number-per-second track, so it stays small
for long files and the block-wise result equals the whole-file result.

Stereo is denoised jointly when the noise-only passages (or the user's range) give the noise's
cross-channel covariance: every bin is whitened against the 2 x 2 noise covariance and rotated
onto the principal axes of the whole file's whitened covariance (:func:`joint_transform`), so
music that the channels share is denoised with the noise of both channels averaged, then
turned back. The analysis adds only a 2 x 2 matrix per bin. Without that information (the floor
fallback), or for other channel counts, each channel is denoised on its own.
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

#: seconds per sub-segment of the noise-only search (statistics are kept at this resolution)
SUB_S = 0.25
#: sub-segments per segment of the drift tracker (one drift factor per ~1 s segment)
SUBS_PER_SEGMENT = 4
#: bands below this are left out of the noise-only test (hum and rumble are not hiss)
NOISE_LOW_HZ = 100.0
#: expected arithmetic/geometric mean ratio of a Gaussian-noise periodogram (Euler's constant
#: in nepers, in dB) and the tolerance of a band to count as noise-like
FLATNESS_DB = 10.0 * 0.5772156649 / np.log(10.0)
FLATNESS_TOL_SIGMAS = 2.5
FLATNESS_TOL_DB = 0.6
#: the ratio pooled over bands must lie this close to the Gaussian value
FLATNESS_POOLED_TOL_DB = 0.5
#: fraction of the bands that must look like noise for a sub-segment to be noise-only
NOISY_BAND_FRACTION = 0.85
#: largest level change between the halves of a noise-only sub-segment (median over bands)
STEADY_TOL_DB = 3.0
#: a noise-only sub-segment lies within this of the quietest candidate (median over bands)
#: and its spectral shape matches (80th percentile of the band differences)
FLOOR_TOL_DB = 4.0
SHAPE_TOL_DB = 5.0
#: a band value this far above the median of the noise-only sub-segments is left out
OUTLIER_DB = 2.0
#: least total duration of noise-only passages for the automatic profile to be trusted
MIN_NOISE_S = 0.2
#: fallback without noise-only passages: the noise floor of each band is the level that the
#: band keeps returning to; its quietest FLOOR_PERCENTILE % of sub-segments (and those within
#: FLOOR_SPREAD_SIGMAS standard errors of a noise level above them) are its floor cells
FLOOR_PERCENTILE = 10
FLOOR_SPREAD_SIGMAS = 2.5
#: at least this many sub-segments (2 s) and this fraction of the bands above NOISE_LOW_HZ
#: whose floor cells fluctuate like Gaussian noise for the fallback to be trusted
FLOOR_MIN_SUBS = 8
#: a noise-only sub-segment lies within FLOOR_SPREAD_SIGMAS standard errors plus this of the
#: low percentile of its band over the file (slack for noise that drifts by a dB or two)
FLOOR_EXTRA_DB = 2.0
#: fraction of the bands above NOISE_LOW_HZ that must lie at the floor (a noise band exceeds
#: the tolerance above with a probability of about 1 %)
AT_FLOOR_FRACTION = 0.95
FLOOR_BAND_FRACTION = 0.5
#: the automatic profile of a band may lie at most PEAK_DB above the median over PEAK_BANDS
#: neighbouring bands: broadband noise spectra are smooth (a median keeps slopes and steps),
#: so a narrow peak is a partial of the music, or hum, which is not this stage's to remove
#: (9 bands: 9 bins at the bottom, 3/8 octave higher up)
PEAK_DB = 3.0
PEAK_BANDS = 9
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
#: largest noise coherence between the channels taken as it is; dual-mono noise (coherence 1)
#: would make the noise covariance singular
JOINT_MAX_COHERENCE = 0.98
#: least coherence of the channels' music in a bin for the joint rotation (see joint_transform)
JOINT_MIN_COHERENCE = 0.3
#: frames below this mean power per sample are treated as digital silence (-100 dBFS)
SILENCE_POWER = 1e-10


@dataclass(frozen=True)
class DenoiseParams(StageParams):
    reduction_db: float = param(
        24.0,
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
        ``"profile"`` (user range), ``"auto"`` (noise-only passages), ``"floor"`` (no such
        passage: the noise floor under the music, see :meth:`NoiseAnalyzer._floor_fallback`) or
        ``"none"`` (no noise found: the audio is left as it is).
    joint : np.ndarray or None [shape=(bins, 2, 2), dtype=complex128]
        Stereo only: per bin, the transform ``T`` that whitens the noise (its 2 x 2 covariance,
        cross-channel part included) and turns the whitened signal onto its principal axes;
        see :func:`joint_transform`. None: each channel is denoised on its own.
    rotated : np.ndarray or None [shape=(bins,), dtype=bool]
        The bins where ``joint`` rotates (elsewhere it only whitens).
    """

    base: np.ndarray
    drift: np.ndarray
    segment_frames: int
    source: str
    joint: np.ndarray | None = None
    rotated: np.ndarray | None = None

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


def _lower_envelope(band_power: np.ndarray) -> np.ndarray:
    """Band powers [shape=(..., B)] with narrow peaks cut to ``PEAK_DB`` above the median of
    the ``PEAK_BANDS`` bands around them."""
    log_p = np.log(np.maximum(band_power, 1e-30))
    size = (1,) * (log_p.ndim - 1) + (PEAK_BANDS,)
    cap = ndimage.median_filter(log_p, size=size, mode="nearest") + PEAK_DB * np.log(10) / 10
    return np.where(log_p > cap, np.exp(cap), band_power)


class NoiseAnalyzer:
    """Whole-file pass that finds the noise-only passages and learns their spectrum and drift.

    Keeps, per quarter-second sub-segment and channel, a few band statistics (about 150 bands):
    the mean power of each half of the sub-segment, the mean log power, and the per-bin minimum
    of the smoothed power; plus the full-resolution sum over the user's profile range. That is a
    few kilobytes per second of audio, not the audio.
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
        self.sub_hops = max(2, round(SUB_S * rate / hop))
        self.window = sqrt_hann(n_fft)
        self.buf = np.zeros((channels, n_fft - hop), dtype=np.float32)
        self.next_frame = 0
        a = MS_SMOOTHING ** (hop / (0.0116 * rate))
        self.smooth_b, self.smooth_a = [1.0 - a], [1.0, -a]
        self.zi: np.ndarray | None = None
        self.profile = profile
        self.track = track
        self.profile_sum = np.zeros((channels, self.bins))
        self.profile_count = 0
        # stereo: the whole file's 2 x 2 spectral covariance per bin (the music's directions)
        # and the cross-power of the noise (per sub-segment band means, as the powers)
        self.stereo = channels == 2
        self.cov = np.zeros((self.bins, 2, 2), dtype=np.complex128)
        self.cov_frames = 0
        self.profile_cross = np.zeros(self.bins, dtype=np.complex128)
        self.cross: list[np.ndarray] = []
        # closed sub-segments: (2, ch, B) half means, (ch, B) mean log, (ch, B) minimum, count
        self.stats: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
        self.cur_id = 0
        self._reset()

    def _reset(self) -> None:
        shape = (self.channels, self.bins)
        self.cur_half = np.zeros((2, *shape))
        self.cur_half_n = np.zeros(2)
        self.cur_log = np.zeros(shape)
        self.cur_min = np.full(shape, np.inf)
        self.cur_cross = np.zeros(self.bins, dtype=np.complex128)
        self.cur_count = 0

    def update(self, block: np.ndarray) -> None:
        if not block.shape[1]:
            return
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
        spec = sfft.rfft(view * self.window, axis=-1)  # (ch, F, K)
        power = spec.real**2 + spec.imag**2
        cross = None
        if self.stereo:
            cross = spec[0] * np.conj(spec[1])  # (F, K)
            self.cov[:, 0, 0] += power[0].sum(axis=0)
            self.cov[:, 1, 1] += power[1].sum(axis=0)
            self.cov[:, 0, 1] += cross.sum(axis=0)
            self.cov_frames += cross.shape[0]
        log_power = np.log(power + 1e-30)
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
                if cross is not None:
                    self.profile_cross += cross[sel].sum(axis=0)
        seg = index // self.sub_hops
        half = (index % self.sub_hops) >= self.sub_hops // 2
        for s in np.unique(seg):
            sel = seg == s
            if s != self.cur_id:
                self._close()
                self.cur_id = int(s)
            for h in (0, 1):
                hs = sel & (half == h)
                if hs.any():
                    self.cur_half[h] += power[:, hs].sum(axis=1)
                    self.cur_half_n[h] += hs.sum()
            self.cur_log += log_power[:, sel].sum(axis=1)
            if cross is not None:
                self.cur_cross += cross[sel].sum(axis=0)
            # the smoothed power needs a few time constants to settle after the first frame
            settled = sel & (index >= self.n_fft // self.hop - 1 + MS_WARMUP)
            if settled.any():
                self.cur_min = np.minimum(self.cur_min, smoothed[:, settled].min(axis=1))
            self.cur_count += int(sel.sum())

    def _band(self, x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, self.starts, axis=-1) / self.widths

    def _close(self) -> None:
        if self.cur_count:
            n = np.maximum(self.cur_half_n, 1.0)[:, None, None]
            total = self.cur_half.sum(axis=0) / self.cur_count
            cur_min = np.where(np.isfinite(self.cur_min), self.cur_min, total)
            self.stats.append(
                (
                    self._band(self.cur_half / n).astype(np.float32),
                    self._band(self.cur_log / self.cur_count).astype(np.float32),
                    self._band(cur_min).astype(np.float32),
                    self.cur_count,
                )
            )
            if self.stereo:
                self.cross.append(self._band(self.cur_cross / self.cur_count).astype(np.complex64))
        self._reset()

    def _noise_only(self, half: np.ndarray, logm: np.ndarray, count: np.ndarray) -> np.ndarray:
        """Which sub-segments of one channel hold nothing but a stationary noise floor.

        Parameters
        ----------
        half : np.ndarray [shape=(S, 2, B)]
            Band power of each half of each sub-segment.
        logm : np.ndarray [shape=(S, B)]
            Band mean of the log power.
        count : np.ndarray [shape=(S,)]

        Returns
        -------
        np.ndarray [shape=(S,), dtype=bool]
        """
        lo = int(np.searchsorted(self.starts, NOISE_LOW_HZ * self.n_fft / self.rate))
        mean = half.mean(axis=1)[:, lo:]
        db = 10.0 / np.log(10.0)
        level = db * np.log(np.maximum(mean, 1e-30))
        # (1) noise-like fluctuation: arithmetic over geometric mean of the periodogram, per
        # band; 2.5 dB (Euler's constant in nepers) for Gaussian noise, ~0 dB for a steady tone,
        # more for a partial among weaker bins or a changing level
        flat = level - db * logm[:, lo:]
        # its spread per band: the log of an exponential variable has a standard deviation of
        # pi / sqrt(6) nepers (5.6 dB), over about one independent value per bin and per two
        # frames (75 % overlap); the sample mean in the ratio biases it by -1 / (2 n) nepers
        n_eff = np.maximum(count[:, None] / 2.0, 1.0) * self.widths[None, lo:]
        excess = flat - (FLATNESS_DB - db / (2.0 * n_eff))
        tol = np.maximum(FLATNESS_TOL_SIGMAS * db * np.pi / np.sqrt(6.0 * n_eff), FLATNESS_TOL_DB)
        noisy_bands = np.abs(excess) < tol
        # pooled over bands (weighted by their number of values) the test is sharp: a dense,
        # reverberant ensemble is noise-like in most bands but a few tenths of a dB off
        pooled = (excess * n_eff).sum(axis=1) / n_eff.sum(axis=1)
        typical = np.abs(pooled) < FLATNESS_POOLED_TOL_DB
        # (2) stationary within the sub-segment: the two halves agree (median over bands)
        change = db * np.log(
            np.maximum(half[:, 1, lo:], 1e-30) / np.maximum(half[:, 0, lo:], 1e-30)
        )
        steady = np.abs(np.median(change, axis=1)) < STEADY_TOL_DB
        full = count >= self.sub_hops // 2
        silent = mean.mean(axis=1) * self.bins < SILENCE_POWER * self.n_fft * self.bins / 2
        cand = full & steady & typical & ~silent & (noisy_bands.mean(axis=1) >= NOISY_BAND_FRACTION)
        if not cand.any():
            return cand
        # (4) the floor of the whole file: noise alone is the quietest a band ever gets, so
        # a noise-only sub-segment lies near each band's low percentile over the file in
        # nearly every band (95 %); a quiet passage of music that is noise-like in the many
        # narrow upper bands still stands above it where its notes are
        usable = full & ~silent
        if usable.sum() >= FLOOR_MIN_SUBS:
            low = np.percentile(level[usable], FLOOR_PERCENTILE, axis=0)
            sigma = db / np.sqrt(np.maximum(count[:, None] / 2.0, 1.0) * self.widths[None, lo:])
            at_floor = level <= low[None, :] + FLOOR_SPREAD_SIGMAS * sigma + FLOOR_EXTRA_DB
            cand &= at_floor.mean(axis=1) >= AT_FLOOR_FRACTION
            if not cand.any():
                return cand
        # (3) at the floor: the candidate has the spectrum of the quietest candidate
        ref = int(np.flatnonzero(cand)[np.argmin(mean[cand].sum(axis=1))])
        diff = level - level[ref]
        near = (np.median(diff, axis=1) < FLOOR_TOL_DB) & (
            np.percentile(np.abs(diff), 80, axis=1) < SHAPE_TOL_DB
        )
        return cand & near

    def _floor_fallback(
        self, mean: np.ndarray, logm: np.ndarray, count: np.ndarray
    ) -> np.ndarray | None:
        """Noise band powers of one channel from the whole file when no passage is noise only.

        Minimum statistics over the file (Martin 2001, here at quarter-second resolution): in
        every band the quietest sub-segments are those where the music leaves the band to the
        noise. Their level is trusted only where they also fluctuate like Gaussian noise (the
        flatness test of :meth:`_noise_only`, pooled over the floor cells of the band), which
        the decays and quiet notes of clean music do not. Bands that fail take the log-linear
        interpolation of the bands that pass, never more than their own floor level.

        Parameters
        ----------
        mean : np.ndarray [shape=(S, B)]
            Band power of each sub-segment.
        logm : np.ndarray [shape=(S, B)]
            Band mean of the log power.
        count : np.ndarray [shape=(S,)]

        Returns
        -------
        np.ndarray [shape=(B,)] or None
            None when too few bands have a noise-like floor (clean or digital material).
        """
        db = 10.0 / np.log(10.0)
        full = (count >= self.sub_hops // 2) & (
            mean.mean(axis=1) * 2.0 / self.n_fft >= SILENCE_POWER
        )
        if full.sum() < FLOOR_MIN_SUBS:
            return None
        mean, logm, count = mean[full], logm[full], count[full]
        level = db * np.log(np.maximum(mean, 1e-30))  # (S, B)
        n_eff = np.maximum(count[:, None] / 2.0, 1.0) * self.widths[None, :]
        # standard error of a band level of Gaussian noise (an exponential periodogram value
        # has a standard deviation equal to its mean: 4.34 dB over sqrt(n_eff) values)
        sigma = db / np.sqrt(n_eff)
        low = np.percentile(level, FLOOR_PERCENTILE, axis=0)
        cells = level <= low[None, :] + FLOOR_SPREAD_SIGMAS * sigma
        flat = level - db * logm
        excess = flat - (FLATNESS_DB - db / (2.0 * n_eff))
        w = n_eff * cells
        pooled = (excess * w).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-30)
        tol = np.maximum(
            FLATNESS_TOL_SIGMAS * db * np.pi / np.sqrt(6.0 * np.maximum(w.sum(axis=0), 1.0)),
            FLATNESS_POOLED_TOL_DB,
        )
        floor = (mean * w).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-30)
        # a noise floor is smooth over frequency: a band far above its neighbours holds a
        # partial that never stopped
        good = (np.abs(pooled) < tol) & (_lower_envelope(floor) >= floor)
        lo = int(np.searchsorted(self.starts, NOISE_LOW_HZ * self.n_fft / self.rate))
        if good[lo:].mean() < FLOOR_BAND_FRACTION:
            return None
        centre = self.starts + 0.5 * self.widths
        fill = np.exp(np.interp(centre, centre[good], np.log(floor[good])))
        return np.where(good, floor, np.minimum(fill, floor))

    def result(self) -> NoiseAnalysis:
        self._close()
        channels = self.channels
        seg_frames = SUBS_PER_SEGMENT * self.sub_hops * self.hop
        if not self.stats:
            return NoiseAnalysis(
                np.zeros((channels, self.bins)), np.ones((1, channels)), seg_frames, "none"
            )
        half = np.stack([s[0] for s in self.stats]).astype(np.float64)  # (S, 2, ch, B)
        logm = np.stack([s[1] for s in self.stats]).astype(np.float64)  # (S, ch, B)
        mins = np.stack([s[2] for s in self.stats]).astype(np.float64)
        count = np.array([s[3] for s in self.stats])
        n_sub = half.shape[0]
        n_seg = -(-n_sub // SUBS_PER_SEGMENT)
        mean = half.mean(axis=1)  # (S, ch, B)
        if self.profile_count:
            base = self.profile_sum / self.profile_count
            noise = np.zeros((n_sub, channels), dtype=bool)
            source = "profile"
        else:
            noise = np.stack(
                [self._noise_only(half[:, :, c], logm[:, c], count) for c in range(channels)],
                axis=1,
            )  # (S, ch)
            enough = noise.sum(axis=0) * self.sub_hops * self.hop >= MIN_NOISE_S * self.rate
            base_b = np.zeros((channels, self.starts.size))
            passages = enough.any()
            for c in range(channels):
                if enough[c]:
                    base_b[c] = self._robust_mean(mean[noise[:, c], c], count[noise[:, c]])
                else:
                    # no pause, no lead-in: the floor that the music keeps falling back to
                    floor = self._floor_fallback(mean[:, c], logm[:, c], count)
                    if floor is not None:
                        base_b[c], enough[c] = floor, True
            if not enough.any():
                return NoiseAnalysis(
                    np.zeros((channels, self.bins)),
                    np.ones((n_seg, channels)),
                    seg_frames,
                    "none",
                )
            base_b = _lower_envelope(base_b)
            base = base_b[:, np.repeat(np.arange(self.starts.size), self.widths)]
            source = "auto" if passages else "floor"
        drift = np.zeros((n_seg, channels))
        if self.track and n_seg >= 3:
            drift = self._drift(mins, count, noise, base)
        joint = rotated = None
        if self.stereo and source in ("profile", "auto") and np.all(base > 0):
            if source == "profile":
                cross = self.profile_cross / self.profile_count
                coh = np.abs(cross) / np.sqrt(base[0] * base[1])
                # (significance as for the automatic passages below, single bins)
                cross = np.where(coh >= 2.6 / np.sqrt(max(0.5 * self.profile_count, 1.0)), cross, 0)
            else:
                both = noise[:, 0] & noise[:, 1]
                cross = None
                if both.sum() * self.sub_hops * self.hop >= MIN_NOISE_S * self.rate:
                    w = count[both].astype(np.float64)
                    cb = (np.stack(self.cross)[both] * w[:, None]).sum(axis=0)
                    pb = (mean[both] * w[:, None, None]).sum(axis=0)  # (ch, B)
                    coh = cb / np.sqrt(np.maximum(pb[0] * pb[1], 1e-60))
                    # keep only a coherence the passages prove: for independent noise |coh|^2
                    # is about exponential with mean 1 / n (n independent spectra averaged;
                    # half the 75 %-overlapping frames), so below 2.6 / sqrt(n) (p = 0.001)
                    # it is estimation noise, which would mix the channels for nothing
                    n_ind = np.maximum(0.5 * float(w.sum()) * self.widths, 1.0)
                    coh = np.where(np.abs(coh) >= 2.6 / np.sqrt(n_ind), coh, 0.0)
                    coh = np.repeat(coh, self.widths)
                    cross = coh * np.sqrt(base[0] * base[1])
            if cross is not None:
                joint, rotated = joint_transform(self.cov / max(self.cov_frames, 1), base, cross)
        return NoiseAnalysis(base, np.exp(drift), seg_frames, source, joint, rotated)

    @staticmethod
    def _robust_mean(values: np.ndarray, count: np.ndarray) -> np.ndarray:
        """Per-band mean of the noise-only sub-segments ``values`` [shape=(n, B)], leaving out
        in each band the values more than ``OUTLIER_DB`` above the band's median: a sub-segment
        that is noise in most bands may still hold a quiet partial in a few."""
        med = np.median(values, axis=0)
        w = count[:, None] * (values <= med * 10.0 ** (OUTLIER_DB / 10.0))
        return (values * w).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-30)

    def _drift(
        self, mins: np.ndarray, count: np.ndarray, noise: np.ndarray, base: np.ndarray
    ) -> np.ndarray:
        """Log power factor of the noise per one-second segment and channel (n_seg, ch)."""
        n_sub, channels, n_band = mins.shape
        n_seg = -(-n_sub // SUBS_PER_SEGMENT)
        pad = n_seg * SUBS_PER_SEGMENT - n_sub
        seg_min = np.pad(mins, ((0, pad), (0, 0), (0, 0)), constant_values=np.inf)
        seg_min = seg_min.reshape(n_seg, SUBS_PER_SEGMENT, channels, n_band).min(axis=1)
        seg_count = np.pad(count, (0, pad)).reshape(n_seg, SUBS_PER_SEGMENT).sum(axis=1)
        seg_noise = np.pad(noise, ((0, pad), (0, 0))).reshape(n_seg, -1, channels).any(axis=1)
        reliable = seg_count >= self.sub_hops * SUBS_PER_SEGMENT // 2
        if reliable.sum() < 3:
            return np.zeros((n_seg, channels))
        tracked = MS_BIAS * seg_min[reliable]
        base_b = self._band(base)
        # bands above ~60 Hz (hum and rumble are not what this stage tracks)
        low = int(np.searchsorted(self.starts, 60.0 * self.n_fft / self.rate))
        ratio = np.log(np.maximum(tracked[:, :, low:], 1e-30)) - np.log(
            np.maximum(base_b[None, :, low:], 1e-30)
        )
        level_r = np.percentile(ratio, DRIFT_PERCENTILE, axis=2)  # (R, ch)
        ref_rows = seg_noise[reliable]
        ref = np.stack(
            [
                np.min(level_r[ref_rows[:, c], c])
                if ref_rows[:, c].any()
                else np.median(level_r[:, c])
                for c in range(channels)
            ]
        )
        level_r = ndimage.median_filter(level_r - ref, size=(5, 1), mode="nearest")
        # a dead band absorbs the small upward bias that music gives the percentile
        db = 10.0 / np.log(10.0)
        dead = np.maximum(np.abs(level_r) * db - DRIFT_DEADBAND_DB, 0.0)
        level_r = np.sign(level_r) * np.minimum(dead, DRIFT_LIMIT_DB) / db
        index = np.flatnonzero(reliable)
        segs = np.arange(n_seg)
        return np.stack([np.interp(segs, index, level_r[:, c]) for c in range(channels)], axis=1)


#: 0.5 * E1(v) tabulated against ln v on [ln 1e-8, ln 60] (0.01 steps): linear interpolation
#: of this smooth curve is exact to ~1e-5 and several times faster than evaluating E1
_LOG_V_LO, _LOG_V_HI, _LOG_V_N = np.log(1e-8), np.log(60.0), 2300
_LOG_V = np.linspace(_LOG_V_LO, _LOG_V_HI, _LOG_V_N)
_HALF_E1 = 0.5 * special.exp1(np.exp(_LOG_V))
_HALF_E1[-1] = 0.0  # 0.5 * E1(60) ~ 1e-28: beyond the table the correction is nil
_HALF_E1_SLOPE = np.append(np.diff(_HALF_E1), 0.0)
_LOG_V_STEP = (_LOG_V_HI - _LOG_V_LO) / (_LOG_V_N - 1)


def joint_transform(
    cov: np.ndarray, base: np.ndarray, cross: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin 2 x 2 transform that whitens stereo noise and aligns the music with the axes.

    Independent hiss in the two channels under music that the channels share (a centred
    voice, a mono disc played with a stereo pickup) is a case where denoising each channel
    alone wastes information: after whitening the noise, the principal axis of the music
    carries the music of both channels with the noise of only one, the other axis mostly
    noise. Rotating every bin onto those axes (the eigenvectors of the whitened whole-file
    covariance; the noise part of that covariance is the identity, so the axes are the
    music's) lets the single-channel gain rule see the higher SNR. When the noise is the same
    in both channels (dual mono), its covariance is rank one; it is regularised so the
    transform stays well conditioned, and the result is about what each channel alone gives.
    Where the channels' music is not coherent (different instruments left and right), a
    rotation would mix two sparse signals into two denser ones and cost more than it gains:
    bins whose coherence (of the whitened channels) is below ``JOINT_MIN_COHERENCE`` are only
    whitened.

    Parameters
    ----------
    cov : np.ndarray [shape=(bins, 2, 2), complex]
        Mean over the file's frames of ``X X^H`` per bin (only the upper triangle is read).
    base : np.ndarray [shape=(2, bins)]
        Noise power per channel and bin (all positive).
    cross : np.ndarray [shape=(bins,), complex]
        Noise cross-power ``E[N_0 conj(N_1)]`` per bin.

    Returns
    -------
    transform : np.ndarray [shape=(bins, 2, 2), complex128]
        ``T`` with ``T N T^H = I`` for the noise covariance ``N``; ``y = T x`` per bin.
    rotated : np.ndarray [shape=(bins,), dtype=bool]
        Bins where ``T`` also rotates onto the music's axes.
    """
    bins = base.shape[1]
    n = np.zeros((bins, 2, 2), dtype=np.complex128)
    n[:, 0, 0], n[:, 1, 1] = base[0], base[1]
    limit = JOINT_MAX_COHERENCE * np.sqrt(base[0] * base[1])
    c = cross * np.minimum(1.0, limit / np.maximum(np.abs(cross), 1e-300))
    n[:, 0, 1], n[:, 1, 0] = c, np.conj(c)
    lam, vec = np.linalg.eigh(n)
    w = (vec / np.sqrt(lam)[:, None, :]) @ np.conj(np.swapaxes(vec, 1, 2))  # N^(-1/2)
    full = cov.copy()
    full[:, 1, 0] = np.conj(full[:, 0, 1])
    cw = w @ full @ w  # w is Hermitian
    _, q = np.linalg.eigh(cw)
    # coherence of the whitened channels (noise included, so it is at most 1 and low where
    # either channel holds little music above its noise)
    p0, p1 = cw[:, 0, 0].real, cw[:, 1, 1].real
    coherence = np.abs(cw[:, 0, 1]) / np.sqrt(np.maximum(p0 * p1, 1e-300))
    rotated = coherence >= JOINT_MIN_COHERENCE
    q = np.where(rotated[:, None, None], q, np.eye(2)[None])
    return np.conj(np.swapaxes(q, 1, 2)) @ w, rotated


def _apply_2x2(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``m[k] @ x[:, f, k]`` for every frame f and bin k: m (bins, 2, 2), x (2, frames, bins)."""
    m = m.astype(np.complex64)
    return np.stack([m[:, 0, 0] * x[0] + m[:, 0, 1] * x[1], m[:, 1, 0] * x[0] + m[:, 1, 1] * x[1]])


def log_mmse_gain(xi: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Ephraim-Malah log-spectral-amplitude gain, limited to at most 1.

    ``G = xi / (1 + xi) * exp(E1(v) / 2)`` with ``v = xi / (1 + xi) * gamma``.

    Parameters
    ----------
    xi, gamma : np.ndarray
        A-priori and a-posteriori SNR (linear power ratios), same shape.
    """
    r = xi / (1.0 + xi)
    # a uniform table in ln v: the index is computed, not searched (the recursion below calls
    # this once per frame, so it is the stage's inner loop)
    pos = (np.log(np.maximum(r * gamma, 1e-8)) - _LOG_V_LO) * (1.0 / _LOG_V_STEP)
    np.clip(pos, 0.0, _LOG_V_N - 1.0, out=pos)
    i = pos.astype(np.intp)
    half_e1 = _HALF_E1[i] + (pos - i) * _HALF_E1_SLOPE[i]
    return np.minimum(r * np.exp(half_e1), 1.0)


def decision_directed(gamma: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """A-priori SNR by the decision-directed rule, running forward in time.

    ``xi_t = max(a_t * G_{t-1}^2 * gamma_{t-1} + (1 - a_t) * max(gamma_t - 1, 0), XI_MIN)``
    with ``G`` the log-MMSE gain (Ephraim & Malah 1984).

    Parameters
    ----------
    gamma : np.ndarray [shape=(rows, frames, bins)]
        A-posteriori SNR.
    alphas : np.ndarray [shape=(rows, frames)]
        Smoothing factor of each frame.

    Returns
    -------
    np.ndarray [shape=(rows, frames, bins)]
    """
    ml = np.maximum(gamma - 1.0, 0.0)
    xi = np.empty(gamma.shape)
    prev = np.zeros(gamma.shape[::2])
    for t in range(gamma.shape[1]):
        a = alphas[:, t, None]
        x = np.maximum(a * prev + (1.0 - a) * ml[:, t], XI_MIN)
        g = log_mmse_gain(x, gamma[:, t])
        prev = g * g * gamma[:, t]
        xi[:, t] = x
    return xi


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

    def findings(self, analysis: NoiseAnalysis | None) -> dict[str, object]:
        if analysis is None:
            return {}
        if analysis.source == "none":
            return {"noise_profile": "none", "summary": "no steady noise found (left as it is)"}
        base = np.atleast_2d(analysis.base)
        n_fft = 2 * (base.shape[-1] - 1)
        # Parseval with the sqrt-Hann window (sum of squares n_fft / 2): mean-square value of
        # the noise per channel, from the one-sided power spectrum
        power = 2.0 * base.sum(axis=-1) - base[:, 0] - base[:, -1]
        level = 10.0 * np.log10(np.maximum(power / (n_fft * n_fft / 2.0), 1e-30))
        drift = 10.0 * np.log10(np.maximum(analysis.drift, 1e-30))
        span = float(np.max(drift) - np.min(drift)) if drift.size else 0.0
        where = {
            "profile": "the marked range",
            "auto": "noise-only passages",
            "floor": "the floor under the music (no noise-only passage)",
        }[analysis.source]
        joint = analysis.joint is not None
        return {
            "noise_profile": analysis.source,
            "noise_rms_dbfs": [round(float(v), 1) for v in level],
            "level_change_db": round(span, 1),
            "joint_stereo": joint,
            "summary": f"noise profile from {where}; noise "
            + "/".join(f"{v:.1f}" for v in level)
            + f" dBFS RMS, level moves over {span:.1f} dB"
            + ("; stereo noise handled jointly" if joint else ""),
        }

    def gains(self, spec: np.ndarray, noise: np.ndarray, rate: int, hop: int) -> np.ndarray:
        """Suppression gains for an STFT given the noise power at every frame.

        The a-priori SNR is the mean of a forward and a backward decision-directed estimate:
        the forward recursion lags behind onsets and the backward one behind note ends, each
        by the same few frames, so their mean follows both without raising the smoothing that
        keeps the residual noise steady. A second step (Plapous, Marro & Scalart 2006,
        "two-step noise reduction") then takes the clean power that this first gain leaves,
        ``G^2 * gamma``, as the a-priori SNR of the final gain: it removes the bias of the
        recursion towards the previous frame, which smears note ends and over-smooths the SNR
        of changing partials. The final gain is Wiener's ``xi / (1 + xi)`` (as in the two-step
        method; the minimum-mean-square-error estimate of the complex coefficient, which is
        what waveform fidelity asks for), the first step keeps the log-MMSE gain, whose
        smoother SNR estimate keeps the residual noise free of musical tones. Measured on the
        21-clip benchmark against a log-MMSE final gain: +0.06 dB SI-SDR and +0.12 speech PESQ
        at 10 dB SNR.

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
        channels = gamma.shape[0]
        alphas = np.full((2 * channels, gamma.shape[1]), alpha)
        if p.protect_transients:
            # a frame whose high-band a-posteriori SNR jumps 6 dB above both previous frames
            # and well above the noise is an onset: let the forward a-priori SNR follow it at
            # once (the backward recursion sees it as a note end, so its estimate holds)
            hi = int(1000.0 * 2 * (gamma.shape[2] - 1) / rate)
            energy = gamma[:, :, hi:].mean(axis=2)
            prev = np.maximum(
                np.pad(energy, ((0, 0), (1, 0)))[:, :-1], np.pad(energy, ((0, 0), (2, 0)))[:, :-2]
            )
            onset = (energy > 4.0 * prev) & (energy > 4.0)
            alphas[:channels][onset] = min(alpha, 0.5)
        # forward and time-reversed recursions run side by side as extra rows
        both = decision_directed(np.concatenate([gamma, gamma[:, ::-1]]), alphas)
        xi = 0.5 * (both[:channels] + both[channels:, ::-1])
        gain = log_mmse_gain(xi, gamma)
        xi = np.maximum(gain * gain * gamma, XI_MIN)
        gain = xi / (1.0 + xi)
        return np.maximum(gain, g_min).astype(np.float32)

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
            analysis = self.analyze(audio, rate)
        frames = audio.shape[1]
        if analysis.source == "none" or frames == 0:
            return audio.copy()
        spec = stft(audio, n_fft, hop)
        centres = offset + np.arange(spec.shape[1]) * hop - n_fft // 2 + hop
        noise = analysis.at(centres.astype(np.float64))
        t = analysis.joint
        if t is None or audio.shape[0] != 2:
            gains = self.gains(spec, noise, rate, hop)
            return istft(spec * gains, n_fft, hop, frames)
        # stereo, jointly: whitened principal axes (see joint_transform); the noise there has
        # unit power, scaled by the channels' mean drift
        own = noise / analysis.base[:, None, :]  # each channel's drift factor
        shared = np.sqrt(own[0] * own[1])
        level = np.where(analysis.rotated, shared[None], own)
        y = _apply_2x2(t, spec)
        gains = self.gains(y, level, rate, hop)
        out = _apply_2x2(np.linalg.inv(t), y * gains)
        return istft(out.astype(spec.dtype), n_fft, hop, frames)
