"""Objective quality metrics against a clean reference.

These are the numbers the benchmark reports and the stage tests assert on: how close a
restored signal is to the clean original (SI-SDR, SNR, log-spectral distance), how well clicks
were found (precision and recall against the simulator's mask), how much mains hum is left,
how much pitch wobble is left after wow & flutter correction, and, for speech, PESQ and STOI
when those packages are installed. Every metric takes ``(channels, frames)`` or ``(frames,)``
arrays of the same shape, aligned sample by sample, and returns plain floats.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import signal

from audio_restorer.errors import ParameterError


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise ParameterError(f"reference and estimate shapes differ: {ref.shape} vs {est.shape}")
    return ref, est


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019).

    Parameters
    ----------
    reference, estimate : np.ndarray [shape=(channels, frames) or (frames,)]
        Same shape. Multichannel signals are scored jointly (all channels flattened), with
        the mean of each channel removed first.
    """
    ref, est = _pair(reference, estimate)
    ref = ref - ref.mean(axis=-1, keepdims=True)
    est = est - est.mean(axis=-1, keepdims=True)
    ref, est = ref.ravel(), est.ravel()
    energy = float(np.dot(ref, ref))
    if energy == 0.0:
        raise ParameterError("reference is silent: SI-SDR is undefined")
    alpha = float(np.dot(est, ref)) / energy
    target = alpha * ref
    noise = est - target
    return float(10.0 * np.log10(np.dot(target, target) / max(np.dot(noise, noise), 1e-30)))


def si_sdr_improvement(reference: np.ndarray, degraded: np.ndarray, estimate: np.ndarray) -> float:
    """SI-SDR of the estimate minus SI-SDR of the degraded input, in dB (positive = better)."""
    return si_sdr(reference, estimate) - si_sdr(reference, degraded)


def snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Plain signal-to-noise ratio in dB: ``10 log10(|ref|^2 / |est - ref|^2)``.

    Unlike SI-SDR it penalises gain changes, so it tells whether a system kept the level.
    """
    ref, est = _pair(reference, estimate)
    energy = float(np.sum(ref * ref))
    if energy == 0.0:
        raise ParameterError("reference is silent: SNR is undefined")
    err = float(np.sum((est - ref) ** 2))
    return float(10.0 * np.log10(energy / max(err, 1e-30)))


def log_spectral_distance(
    reference: np.ndarray,
    estimate: np.ndarray,
    rate: int,
    *,
    n_fft: int = 2048,
    floor_db: float = -80.0,
) -> float:
    """Log-spectral distance in dB: RMS over frequency of the log power difference, averaged
    over frames (and channels).

    Powers are floored at ``floor_db`` below the reference's loudest bin so silent bins and
    frames do not dominate. Lower is better; 0 means identical spectra. The STFT uses a Hann
    window of ``n_fft`` frames with 75 % overlap.
    """
    ref, est = _pair(reference, estimate)
    if ref.shape[-1] < n_fft:
        n_fft = 1 << int(np.log2(max(ref.shape[-1], 16)))
    kw = {"nperseg": n_fft, "noverlap": 3 * n_fft // 4, "window": "hann", "fs": rate}
    _, _, r = signal.stft(ref, **kw)
    _, _, e = signal.stft(est, **kw)
    pr, pe = np.abs(r) ** 2, np.abs(e) ** 2
    floor = max(float(pr.max()), 1e-30) * 10.0 ** (floor_db / 10.0)
    diff = 10.0 * np.log10(np.maximum(pr, floor)) - 10.0 * np.log10(np.maximum(pe, floor))
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=-2))))


# -- clicks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectionScore:
    """Event-level detection score: counts of true/false positives and misses."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _runs(mask: np.ndarray) -> np.ndarray:
    """Start and stop (exclusive) of each run of True in a 1-D mask, shape (runs, 2)."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return edges.reshape(-1, 2)


def click_detection(
    true_mask: np.ndarray, detected_mask: np.ndarray, *, tolerance: int = 8
) -> DetectionScore:
    """Precision and recall of click detection, counted per click (event), not per sample.

    A true click (a run of True in ``true_mask``, per channel) counts as found when a detected
    run overlaps it after widening by ``tolerance`` frames each side; a detected run counts as
    correct when it overlaps some true click so widened. Runs closer than ``tolerance`` are
    merged first (a crackle burst is one event).

    Parameters
    ----------
    true_mask, detected_mask : np.ndarray [shape=(channels, frames) or (frames,), dtype=bool]
    tolerance : int
        Frames of slack each side.
    """
    t = np.atleast_2d(np.asarray(true_mask, dtype=bool))
    d = np.atleast_2d(np.asarray(detected_mask, dtype=bool))
    if t.shape != d.shape:
        raise ParameterError(f"mask shapes differ: {t.shape} vs {d.shape}")
    tp = fp = fn = 0
    for ch in range(t.shape[0]):
        t_runs = _runs(_close(t[ch], tolerance))
        d_runs = _runs(_close(d[ch], tolerance))
        if len(t_runs) and len(d_runs):
            # runs are sorted and disjoint: overlap test by searching starts/stops
            t_lo, t_hi = t_runs[:, 0] - tolerance, t_runs[:, 1] + tolerance
            hit_t = np.searchsorted(d_runs[:, 0], t_hi) > np.searchsorted(
                d_runs[:, 1], t_lo, "right"
            )
            hit_d = np.searchsorted(t_lo, d_runs[:, 1]) > np.searchsorted(
                t_hi, d_runs[:, 0], "right"
            )
        else:
            hit_t = np.zeros(len(t_runs), bool)
            hit_d = np.zeros(len(d_runs), bool)
        tp_t = int(hit_t.sum())
        tp += tp_t
        fn += len(t_runs) - tp_t
        fp += int((~hit_d).sum())
    return DetectionScore(tp, fp, fn)


def _close(mask: np.ndarray, gap: int) -> np.ndarray:
    """Fill gaps shorter than ``gap`` frames between True runs (morphological closing)."""
    if gap <= 0 or not mask.any():
        return mask
    runs = _runs(mask)
    out = mask.copy()
    for (_, stop), (start, _) in itertools.pairwise(runs):
        if start - stop < gap:
            out[stop:start] = True
    return out


def changed_samples(
    degraded: np.ndarray, restored: np.ndarray, *, k: float = 6.0, floor: float = 3e-3
) -> np.ndarray:
    """Detection mask inferred from what a system changed: ``|degraded - restored|`` above
    ``k`` robust standard deviations of that difference (and above ``floor`` of full scale).

    Lets the benchmark score click detection of any declicker, including peers that do not
    report their detections.
    """
    diff = np.abs(np.asarray(degraded, np.float64) - np.asarray(restored, np.float64))
    sigma = 1.4826 * np.median(diff, axis=-1, keepdims=True)
    return diff > np.maximum(k * sigma, floor)


# -- hum -------------------------------------------------------------------------------------


def hum_level_db(
    audio: np.ndarray,
    rate: int,
    hum_hz: float,
    *,
    harmonics: int = 6,
    width_hz: float = 1.5,
    reference: np.ndarray | None = None,
    subtract_floor: bool = True,
) -> float:
    """Power of mains hum in ``audio``, in dB.

    Sums the power in bands ``k * hum_hz +- k * width_hz`` for k = 1..harmonics (the hum
    drifts, and its harmonics drift k times as far), from a Hann-windowed periodogram of the
    whole signal. With ``reference`` (the clean signal, same shape), the best-scaled reference
    is subtracted first, so music near the hum frequencies is not counted, and the result is
    relative to the reference's power (a hum-to-signal ratio); without it, the result is
    absolute: a full-scale sine gives -3.01 dB. With ``subtract_floor`` the noise floor
    around each band (median density of the neighbouring 10 Hz each side) is subtracted, so
    broadband hiss does not read as hum.
    """
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    ref = None
    if reference is not None:
        ref, x = _pair(np.atleast_2d(reference), x)
        alpha = float(np.sum(x * ref)) / max(float(np.sum(ref * ref)), 1e-30)
        x = x - alpha * ref
    frames = x.shape[-1]
    window = np.hanning(frames)
    spec = np.abs(np.fft.rfft(x * window, axis=-1)) ** 2
    # scale so that a sine's in-band sum equals its mean-square value
    spec *= 2.0 / (np.sum(window**2) * frames)
    freqs = np.fft.rfftfreq(frames, 1.0 / rate)
    power = 0.0
    for k in range(1, harmonics + 1):
        if k * hum_hz >= rate / 2:
            break
        half = k * width_hz + 2.0 * rate / frames
        dist = np.abs(freqs - k * hum_hz)
        band = dist <= half
        in_band = spec[:, band].sum(axis=-1)
        if subtract_floor:
            # broadband noise and music residue also fall in the band: remove their share,
            # estimated from the neighbouring 10 Hz each side
            near = (dist > half + 3.0) & (dist <= half + 13.0)
            # (a periodogram bin of noise is exponentially distributed: mean = median / ln 2)
            floor = np.median(spec[:, near], axis=-1) / np.log(2) * np.count_nonzero(band)
            in_band = np.maximum(in_band - floor, 0.0)
        power += float(in_band.mean())
    if ref is not None:
        power /= max(float(np.mean(ref**2)), 1e-30)
    return float(10.0 * np.log10(max(power, 1e-30)))


# -- wow & flutter ---------------------------------------------------------------------------


def local_delays(
    reference: np.ndarray,
    estimate: np.ndarray,
    rate: int,
    *,
    window_ms: float = 25.0,
    hop_ms: float = 5.0,
    max_lag_ms: float = 8.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Delay of ``estimate`` behind ``reference`` over time, with sub-sample precision.

    Each frame's delay is the peak of the phase-transform weighted cross-correlation of the two
    Hann-windowed frames (GCC-PHAT, sharp peaks on tonal music), within ``+-max_lag_ms``,
    refined by parabolic interpolation. Frames whose reference is more than 40 dB below the
    loudest frame are marked invalid.

    Returns
    -------
    delays : np.ndarray [shape=(n_frames,)]
        Delay in frames (positive: the estimate is late).
    valid : np.ndarray [shape=(n_frames,), dtype=bool]
    """
    ref, est = _pair(np.atleast_2d(reference), np.atleast_2d(estimate))
    ref, est = ref.mean(axis=0), est.mean(axis=0)
    win = round(window_ms * 1e-3 * rate)
    hop = max(1, round(hop_ms * 1e-3 * rate))
    max_lag = min(round(max_lag_ms * 1e-3 * rate), win // 2 - 1)
    if ref.size < win:
        raise ParameterError(f"signal shorter than one {window_ms} ms analysis window")
    starts = np.arange(0, ref.size - win + 1, hop)
    idx = starts[:, None] + np.arange(win)[None, :]
    w = np.hanning(win)
    n = 1 << int(np.ceil(np.log2(2 * win)))
    fr = np.fft.rfft(ref[idx] * w, n, axis=1)
    fe = np.fft.rfft(est[idx] * w, n, axis=1)
    cross = np.conj(fr) * fe
    mag = np.abs(cross)
    cross /= mag + 1e-3 * mag.max(axis=1, keepdims=True) + 1e-30
    xc = np.fft.irfft(cross, n, axis=1)
    lags = np.arange(-max_lag, max_lag + 1)
    values = xc[:, lags % n]
    energy = np.sum((ref[idx] * w) ** 2, axis=1)
    loud = energy > 1e-4 * max(float(energy.max()), 1e-30)
    # Periodic music makes the correlation periodic too (a peak every pitch period), so each
    # frame's peak is searched only near the previous frame's delay, starting from the lag
    # that fits all frames best. ``max_step`` allows speed errors of up to ~10 %.
    max_step = max(2, int(np.ceil(0.1 * hop)))
    prev = int(np.argmax(values[loud].sum(axis=0))) if loud.any() else max_lag
    best = np.empty(len(starts), dtype=np.int64)
    for i in range(len(starts)):
        if loud[i]:
            lo, hi = max(0, prev - max_step), min(len(lags), prev + max_step + 1)
            prev = lo + int(np.argmax(values[i, lo:hi]))
        best[i] = prev
    inner = np.clip(best, 1, len(lags) - 2)
    rows = np.arange(len(best))
    y0, y1, y2 = values[rows, inner - 1], values[rows, inner], values[rows, inner + 1]
    denom = y0 - 2 * y1 + y2
    frac = np.where(np.abs(denom) > 1e-12, 0.5 * (y0 - y2) / np.where(denom == 0, 1, denom), 0.0)
    delays = lags[inner] + np.clip(frac, -0.5, 0.5)
    valid = loud & (best > 0) & (best < len(lags) - 1)
    return delays, valid


def pitch_deviation_cents(
    reference: np.ndarray,
    estimate: np.ndarray,
    rate: int,
    *,
    hop_ms: float = 5.0,
    window_ms: float = 25.0,
    smooth_ms: float = 10.0,
) -> float:
    """RMS pitch (speed) deviation of ``estimate`` relative to ``reference``, in cents.

    If the estimate plays the reference at a varying speed ``s(t)``, its delay behind the
    reference changes as ``d'(t) = 1 - s(t)``. The local delay is tracked with
    :func:`local_delays`, smoothed over ``smooth_ms`` (this also limits the measurable flutter
    rate to roughly 1000 / (2 smooth_ms) Hz = 50 Hz by default), differentiated, and turned
    into ``1200 log2 s(t)``. The median is removed (a constant speed offset is not wow), and
    the RMS over valid frames is returned. A sinusoidal speed wobble of peak ``c`` cents reads
    ``c / sqrt(2)``.
    """
    delays, valid = local_delays(reference, estimate, rate, window_ms=window_ms, hop_ms=hop_ms)
    if valid.sum() < 8:
        raise ParameterError("too few frames with signal to measure pitch deviation")
    hop = max(1, round(hop_ms * 1e-3 * rate))
    t = np.arange(delays.size)
    delays = np.interp(t, t[valid], delays[valid])
    k = max(1, round(smooth_ms / hop_ms))
    if k > 1:
        kernel = np.hanning(k + 2)[1:-1]
        kernel /= kernel.sum()
        delays = np.convolve(np.pad(delays, k, mode="edge"), kernel, mode="same")[k:-k]
    speed = 1.0 - np.gradient(delays) / hop
    cents = 1200.0 * np.log2(np.maximum(speed, 1e-6))
    cents = cents[valid]
    edge = k + 1  # the ends are biased by padding
    if cents.size > 4 * edge:
        cents = cents[edge:-edge]
    cents = cents - np.median(cents)
    return float(np.sqrt(np.mean(cents**2)))


# -- speech ----------------------------------------------------------------------------------


def _mono(x: np.ndarray) -> np.ndarray:
    return np.atleast_2d(np.asarray(x, dtype=np.float64)).mean(axis=0)


def pesq_score(reference: np.ndarray, estimate: np.ndarray, rate: int) -> float | None:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO 1..4.5) at 16 kHz, or None if ``pesq`` is not
    installed or the clip has no detectable speech."""
    try:
        from pesq import pesq
    except ImportError:
        return None
    from scipy.signal import resample_poly

    ref, est = _pair(_mono(reference), _mono(estimate))
    g = np.gcd(int(rate), 16000)
    ref = resample_poly(ref, 16000 // g, rate // g)
    est = resample_poly(est, 16000 // g, rate // g)
    try:
        return float(pesq(16000, ref, est, "wb"))
    except Exception:  # pesq raises its own NoUtterancesError etc.
        return None


def stoi_score(reference: np.ndarray, estimate: np.ndarray, rate: int) -> float | None:
    """Short-time objective intelligibility (0..1, Taal et al. 2011), or None if ``pystoi``
    is not installed."""
    try:
        from pystoi import stoi
    except ImportError:
        return None
    ref, est = _pair(_mono(reference), _mono(estimate))
    return float(stoi(ref, est, rate, extended=False))
