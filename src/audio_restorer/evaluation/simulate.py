"""Degradation simulator: turn clean audio into a realistic damaged copy, with ground truth.

Restoration can only be measured against a clean reference, and real archive transfers have
none. This module damages clean material the way carriers do (clicks and crackle from a worn
disc, hiss, mains hum, clipping, band-limiting, wow and flutter, distortion, MP3 coding, tape
dropouts) and keeps everything the metrics need: the clean reference aligned to the output, the
positions of the clicks and of the clipped samples, the hum frequency and the time map of any
speed variation. It is also a user feature: demo material, and a way to hear what a setting
does to a known defect.

Every degradation is a pure function ``f(audio, rate, *, rng, ...) -> (audio, info)`` seeded by a
:class:`numpy.random.Generator`; the same seed gives bit-identical output. ``audio`` is
``float32`` shaped ``(channels, frames)``. :func:`simulate` chains them into a *carrier recipe*
(see :data:`CARRIERS` and ``docs/bench/measure.md``): each recipe draws its own settings from
documented ranges, so different seeds give different, equally plausible copies.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from audio_restorer.audio.contract import check_audio, check_rate
from audio_restorer.errors import ParameterError

COLOURS = ("white", "pink", "brown", "tape", "rumble")


@dataclass
class Degraded:
    """A damaged signal and its ground truth.

    Attributes
    ----------
    audio : np.ndarray [shape=(channels, frames), dtype=float32]
        The damaged signal.
    reference : np.ndarray [shape=(channels, frames), dtype=float32]
        The clean signal aligned sample by sample to ``audio`` (for wow and flutter: the clean,
        un-warped signal, which is what a perfect speed correction would give back).
    rate : int
        Sample rate in Hz.
    click_mask : np.ndarray [shape=(channels, frames), dtype=bool]
        Samples touched by a click or a crackle impulse.
    clip_mask : np.ndarray [shape=(channels, frames), dtype=bool]
        Samples changed by hard or soft clipping.
    hum_hz : float or None
        Fundamental of the added mains hum (mean over its drift), None if none was added.
    time_map : np.ndarray [shape=(frames,), dtype=float64] or None
        For wow and flutter: ``audio[:, n]`` carries the clean signal at frame ``time_map[n]``.
    dropout_mask : np.ndarray [shape=(frames,), dtype=bool] or None
        Frames inside a tape dropout.
    warped_reference : np.ndarray [shape=(channels, frames), dtype=float32] or None
        With wow and flutter: the clean signal read along ``time_map``, i.e. the best a
        restoration that does not correct the speed can give back. Scoring against it
        separates the other repairs from the speed error.
    params : dict
        The carrier name, seed, and the settings of every degradation applied, in order.
    """

    audio: np.ndarray
    reference: np.ndarray
    rate: int
    click_mask: np.ndarray
    clip_mask: np.ndarray
    hum_hz: float | None = None
    time_map: np.ndarray | None = None
    dropout_mask: np.ndarray | None = None
    warped_reference: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)


# -- helpers ---------------------------------------------------------------------------------


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def coloured_noise(
    frames: int, rate: int, *, rng: np.random.Generator, colour: str = "white", channels: int = 1
) -> np.ndarray:
    """Gaussian noise with a given spectral colour, unit mean power.

    Parameters
    ----------
    frames, rate : int
    rng : numpy.random.Generator
    colour : {'white', 'pink', 'brown', 'tape', 'rumble'}
        white: flat; pink: -3 dB/octave (disc surface noise); brown: -6 dB/octave; tape: flat
        with a +6 dB shelf above ~3 kHz (magnetic tape hiss); rumble: energy below ~40 Hz
        (turntable motor and bearing noise).
    channels : int

    Returns
    -------
    np.ndarray [shape=(channels, frames), dtype=float64]
    """
    if colour not in COLOURS:
        raise ParameterError(f"noise colour must be one of {', '.join(COLOURS)}, got {colour!r}")
    white = rng.standard_normal((channels, frames))
    if colour == "white" or frames < 4:
        shaped = white
    else:
        spec = np.fft.rfft(white, axis=1)
        f = np.fft.rfftfreq(frames, 1.0 / rate)
        f[0] = f[1]
        if colour == "pink":
            gain = 1.0 / np.sqrt(np.maximum(f, 20.0))
        elif colour == "brown":
            gain = 1.0 / np.maximum(f, 20.0)
        elif colour == "tape":
            gain = 1.0 + (f / 3000.0) ** 2 / (1.0 + (f / 3000.0) ** 2)
        else:  # rumble
            gain = 1.0 / np.sqrt(1.0 + (f / 40.0) ** 8)
            gain[f < 5.0] = 0.0
        shaped = np.fft.irfft(spec * gain, n=frames, axis=1)
    shaped = shaped / np.sqrt(max(_power(shaped), 1e-30))
    return shaped


def _events(frames: int, rate: int, per_second: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson event positions (sorted frame indices) at ``per_second`` mean rate."""
    count = rng.poisson(per_second * frames / rate)
    return np.sort(rng.integers(0, max(frames, 1), size=count))


def _click_shape(length: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One click waveform of ``length`` samples, peak magnitude 1."""
    t = np.arange(length, dtype=np.float64)
    if kind == "spike":
        shape = np.zeros(length)
        shape[rng.integers(0, length)] = 1.0
        if length > 2:
            shape += 0.3 * rng.standard_normal(length) * np.hanning(length)
    elif kind == "ringing":
        # a scratch excites the stylus/cartridge resonance: a damped oscillation
        period = rng.uniform(2.5, 8.0)
        shape = np.exp(-t / max(length / 4.0, 1.0)) * np.cos(2 * np.pi * t / period)
    elif kind == "bump":
        # a dust particle lifts the stylus: a smooth one-sided excursion
        shape = np.sin(np.pi * (t + 0.5) / length) ** 1.5
    else:  # "burst": a short noisy tear
        shape = rng.standard_normal(length) * np.hanning(length + 2)[1:-1]
    shape *= rng.choice((-1.0, 1.0))
    peak = np.max(np.abs(shape))
    return shape / peak if peak > 0 else shape


def _check(audio: np.ndarray, rate: int) -> None:
    check_audio(audio, check_rate(rate))


# -- degradations ----------------------------------------------------------------------------


def add_clicks(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator,
    per_second: float = 4.0,
    min_length: int = 1,
    max_length: int = 40,
    level_range: tuple[float, float] = (0.05, 0.8),
    stereo_correlation: float = 0.9,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Add impulsive clicks: spikes, ringing scratches, dust bumps and short noisy tears.

    Click lengths are drawn log-uniformly in ``[min_length, max_length]`` samples, peak levels
    log-uniformly in ``level_range`` (relative to full scale), signs at random. On stereo
    input most clicks hit both channels (a disc groove is one defect read by both walls) with
    amplitudes that differ; ``1 - stereo_correlation`` of them hit one channel only.

    Returns
    -------
    audio : np.ndarray [shape=(channels, frames), dtype=float32]
    info : dict
        ``mask`` (bool, same shape as audio) and the settings used.
    """
    _check(audio, rate)
    if not 1 <= min_length <= max_length:
        raise ParameterError(f"click lengths need 1 <= min <= max, got {min_length}, {max_length}")
    channels, frames = audio.shape
    out = audio.astype(np.float64)
    mask = np.zeros(audio.shape, dtype=bool)
    kinds = ("spike", "ringing", "bump", "burst")
    positions = _events(frames, rate, per_second, rng)
    lo, hi = np.log(min_length), np.log(max_length + 1)
    for pos in positions:
        length = int(min(np.exp(rng.uniform(lo, hi)), max_length))
        length = max(min_length, min(length, frames - pos))
        if length < 1:
            continue
        shape = _click_shape(length, str(rng.choice(kinds)), rng)
        level = np.exp(rng.uniform(np.log(level_range[0]), np.log(level_range[1])))
        both = channels == 1 or rng.random() < stereo_correlation
        hit = range(channels) if both else [int(rng.integers(channels))]
        for ch in hit:
            gain = level * (rng.uniform(0.6, 1.0) if channels > 1 else 1.0)
            out[ch, pos : pos + length] += gain * shape
            mask[ch, pos : pos + length] |= shape != 0
    info = {
        "per_second": per_second,
        "count": len(positions),
        "length_range": [min_length, max_length],
        "level_range": list(level_range),
        "mask": mask,
    }
    return _f32(out), info


def add_crackle(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator,
    per_second: float = 300.0,
    level: float = 0.02,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Add crackle: dense, small impulses of 1-4 samples (worn or dirty disc surface).

    Amplitudes are exponentially distributed with mean ``level`` (full scale = 1), so most
    impulses are small and a few stand out, as on a real surface. Channels get independent
    crackle (it comes from both groove walls separately).

    Returns
    -------
    audio : np.ndarray [shape=(channels, frames), dtype=float32]
    info : dict
        ``mask`` (bool, same shape as audio) and the settings used.
    """
    _check(audio, rate)
    channels, frames = audio.shape
    out = audio.astype(np.float64)
    mask = np.zeros(audio.shape, dtype=bool)
    for ch in range(channels):
        pos = _events(frames, rate, per_second, rng)
        lengths = rng.integers(1, 5, size=pos.size)
        amps = rng.exponential(level, size=pos.size) * rng.choice((-1.0, 1.0), size=pos.size)
        for offset in range(4):
            keep = (lengths > offset) & (pos + offset < frames)
            # a short decaying impulse: 1, -0.5, 0.25, -0.125 ...
            out[ch, pos[keep] + offset] += amps[keep] * (-0.5) ** offset
            mask[ch, pos[keep] + offset] = True
    info = {"per_second": per_second, "level": level, "mask": mask}
    return _f32(out), info


def add_hiss(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator,
    snr_db: float = 20.0,
    colour: str = "white",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Add stationary broadband noise at an exact signal-to-noise ratio.

    The noise power is set from the mean power of ``audio`` (all channels) so that
    ``10 log10(P_signal / P_noise) == snr_db`` holds on the samples themselves. Channels get
    independent noise.

    Parameters
    ----------
    snr_db : float
        Signal-to-noise ratio in dB.
    colour : {'white', 'pink', 'brown', 'tape', 'rumble'}
        Spectral shape, see :func:`coloured_noise`.
    """
    _check(audio, rate)
    channels, frames = audio.shape
    noise = coloured_noise(frames, rate, rng=rng, colour=colour, channels=channels)
    p_sig = _power(audio)
    if p_sig == 0.0:
        raise ParameterError("cannot set an SNR on silent audio")
    noise *= np.sqrt(p_sig / 10.0 ** (snr_db / 10.0))
    return _f32(audio + noise), {"snr_db": snr_db, "colour": colour}


def add_hum(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator,
    mains_hz: float = 50.0,
    level_db: float = -30.0,
    harmonics: int = 6,
    drift_hz: float = 0.1,
    buzz: float = 0.3,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Add mains hum: a fundamental with harmonics and a slow random frequency drift.

    Parameters
    ----------
    mains_hz : float
        50 or 60 Hz (any positive value is accepted).
    level_db : float
        Hum power relative to the power of ``audio``, in dB.
    harmonics : int
        Number of partials (fundamental included). Harmonic ``k`` has amplitude ``1/k`` with odd
        harmonics boosted by ``buzz`` (rectifier buzz is rich in odd harmonics).
    drift_hz : float
        Peak slow deviation of the fundamental (mains frequency wanders by ~0.1 Hz), drawn as
        smoothed random walk. The same hum reaches all channels with slightly different gains.
    """
    _check(audio, rate)
    if mains_hz <= 0 or harmonics < 1:
        raise ParameterError(
            f"hum needs mains_hz > 0 and harmonics >= 1, got {mains_hz}, {harmonics}"
        )
    channels, frames = audio.shape
    t_knots = max(2, int(frames / rate) + 2)
    walk = np.cumsum(rng.standard_normal(t_knots))
    walk -= walk.mean()
    walk *= drift_hz / max(np.max(np.abs(walk)), 1e-12)
    inst = mains_hz + np.interp(np.arange(frames) / rate, np.arange(t_knots), walk)
    phase = 2 * np.pi * np.cumsum(inst) / rate
    hum = np.zeros(frames)
    for k in range(1, harmonics + 1):
        amp = (1.0 / k) * (1.0 + buzz if k % 2 == 1 and k > 1 else 1.0)
        hum += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    hum *= np.sqrt(_power(audio) * 10.0 ** (level_db / 10.0) / _power(hum))
    gains = 1.0 if channels == 1 else rng.uniform(0.8, 1.0, size=(channels, 1))
    out = audio + gains * hum[None, :]
    return _f32(out), {
        "mains_hz": mains_hz,
        "mean_hz": float(inst.mean()),
        "level_db": level_db,
        "harmonics": harmonics,
        "drift_hz": drift_hz,
    }


def clip_hard(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator | None = None,
    ceiling_db: float = -6.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Hard clipping at ``ceiling_db`` below the signal's sample peak (an overloaded converter).

    Returns the clipped audio and ``info["mask"]``, the samples that were changed.
    """
    _check(audio, rate)
    peak = float(np.max(np.abs(audio)))
    ceiling = peak * 10.0 ** (ceiling_db / 20.0)
    mask = np.abs(audio) > ceiling
    out = np.clip(audio, -ceiling, ceiling)
    return _f32(out), {
        "ceiling_db": ceiling_db,
        "ceiling": ceiling,
        "fraction": float(mask.mean()),
        "mask": mask,
    }


def clip_soft(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator | None = None,
    knee_db: float = -6.0,
    hardness: float = 2.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Soft clipping (tape or valve saturation): linear below a knee, ``tanh`` above it.

    Samples above ``knee_db`` (relative to the sample peak) are compressed smoothly towards a
    ceiling ``1/hardness`` of the knee higher; the mask marks them.
    """
    _check(audio, rate)
    peak = float(np.max(np.abs(audio)))
    knee = peak * 10.0 ** (knee_db / 20.0)
    room = knee / max(hardness, 1e-3)
    x = audio.astype(np.float64)
    mag = np.abs(x)
    mask = mag > knee
    compressed = knee + room * np.tanh((mag - knee) / room)
    out = np.where(mask, np.sign(x) * compressed, x)
    return _f32(out), {"knee_db": knee_db, "hardness": hardness, "mask": mask}


def band_limit(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator | None = None,
    low_hz: float | None = 100.0,
    high_hz: float | None = 5000.0,
    order: int = 4,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Restrict the bandwidth with zero-phase Butterworth filters (no delay to compensate).

    ``low_hz``/``high_hz`` of None skip that side. Early acoustic recordings pass roughly
    200-3500 Hz, electrical 78s 50-6000 Hz, cassettes up to ~12 kHz.
    """
    _check(audio, rate)
    out = audio.astype(np.float64)
    nyq = rate / 2.0
    if high_hz is not None and high_hz < 0.95 * nyq:
        sos = signal.butter(order, high_hz, btype="lowpass", fs=rate, output="sos")
        out = signal.sosfiltfilt(sos, out, axis=1)
    if low_hz is not None and low_hz > 0:
        sos = signal.butter(order, low_hz, btype="highpass", fs=rate, output="sos")
        out = signal.sosfiltfilt(sos, out, axis=1)
    return _f32(out), {"low_hz": low_hz, "high_hz": high_hz, "order": order}


def speed_curve(
    frames: int,
    rate: int,
    *,
    rng: np.random.Generator,
    wow_percent: float = 0.2,
    wow_hz: float = 0.55,
    flutter_percent: float = 0.05,
    flutter_hz: float = 8.0,
    random_percent: float = 0.03,
) -> np.ndarray:
    """Relative playback speed per frame (1 = nominal) for wow and flutter.

    Wow is a sinusoid at the carrier's rotation rate (78 rpm: 1.3 Hz, 33 1/3 rpm: 0.55 Hz),
    flutter a faster capstan/idler component, plus band-limited random drift (0.1-3 Hz).
    Depths are peak deviations in percent.
    """
    t = np.arange(frames) / rate
    speed = 1.0 + 0.01 * wow_percent * np.sin(2 * np.pi * wow_hz * t + rng.uniform(0, 2 * np.pi))
    speed += 0.01 * flutter_percent * np.sin(2 * np.pi * flutter_hz * t + rng.uniform(0, 2 * np.pi))
    if random_percent > 0:
        knots = max(4, int(frames / rate * 6) + 4)  # ~6 knots per second -> up to ~3 Hz
        values = rng.standard_normal(knots)
        drift = np.interp(t, np.linspace(0, t[-1] if frames > 1 else 1.0, knots), values)
        drift -= drift.mean()
        drift *= 0.01 * random_percent / max(np.max(np.abs(drift)), 1e-12)
        speed += drift
    return speed


def _cubic_interp(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Catmull-Rom interpolation of each row of ``x`` at fractional frame positions ``pos``."""
    n = x.shape[1]
    i = np.floor(pos).astype(np.int64)
    f = pos - i
    idx = [np.clip(i + k, 0, n - 1) for k in (-1, 0, 1, 2)]
    p0, p1, p2, p3 = (x[:, j] for j in idx)
    return p1 + 0.5 * f * (
        p2 - p0 + f * (2 * p0 - 5 * p1 + 4 * p2 - p3 + f * (3 * (p1 - p2) + p3 - p0))
    )


def warp(audio: np.ndarray, time_map: np.ndarray) -> np.ndarray:
    """Read ``audio`` at fractional frame positions ``time_map`` (4x oversampled, cubic).

    Returns
    -------
    np.ndarray [shape=(channels, len(time_map)), dtype=float32]
    """
    up = 4
    over = signal.resample_poly(np.asarray(audio, dtype=np.float64), up, 1, axis=1)
    return _f32(_cubic_interp(over, np.clip(np.asarray(time_map) * up, 0, over.shape[1] - 1)))


def wow_flutter(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator,
    wow_percent: float = 0.2,
    wow_hz: float = 0.55,
    flutter_percent: float = 0.05,
    flutter_hz: float = 8.0,
    random_percent: float = 0.03,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Time-varying playback speed (pitch and tempo wobble), same length as the input.

    The output frame ``n`` reads the input at ``time_map[n] = sum(speed[:n])`` (fractional
    frames, 4x oversampled cubic interpolation, so the interpolation error stays far below
    the effect). The mean speed is 1, so the time map stays within a few ms of the identity.
    ``info["time_map"]`` and ``info["speed"]`` give the truth; pitch deviation in cents is
    ``1200 log2(speed)``.
    """
    _check(audio, rate)
    _channels, frames = audio.shape
    speed = speed_curve(
        frames,
        rate,
        rng=rng,
        wow_percent=wow_percent,
        wow_hz=wow_hz,
        flutter_percent=flutter_percent,
        flutter_hz=flutter_hz,
        random_percent=random_percent,
    )
    time_map = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    return warp(audio, time_map), {
        "wow_percent": wow_percent,
        "wow_hz": wow_hz,
        "flutter_percent": flutter_percent,
        "flutter_hz": flutter_hz,
        "random_percent": random_percent,
        "time_map": time_map,
        "speed": speed,
        "peak_cents": float(np.max(np.abs(1200 * np.log2(speed)))),
    }


def distort(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator | None = None,
    drive: float = 2.0,
    asymmetry: float = 0.2,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Harmonic distortion from an asymmetric ``tanh`` transfer curve (worn stylus, valves).

    ``drive`` scales the signal (relative to its peak) into the curve; ``asymmetry`` biases it,
    which adds even harmonics. The output keeps the input's peak level and has no DC.
    """
    _check(audio, rate)
    peak = float(np.max(np.abs(audio))) or 1.0
    x = audio.astype(np.float64) / peak
    y = np.tanh(drive * x + asymmetry) - np.tanh(asymmetry)
    y -= y.mean(axis=1, keepdims=True)
    y *= peak / max(float(np.max(np.abs(y))), 1e-12)
    return _f32(y), {"drive": drive, "asymmetry": asymmetry}


def _write_read_mp3(audio: np.ndarray, rate: int, bitrate_kbps: int) -> np.ndarray:
    """Encode to MP3 and decode again (ffmpeg/LAME when present, else libsndfile)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="ar-mp3-") as tmp:
        wav, mp3, back = Path(tmp, "in.wav"), Path(tmp, "c.mp3"), Path(tmp, "out.wav")
        if shutil.which("ffmpeg"):
            sf.write(wav, audio.T, rate, subtype="FLOAT")
            quiet = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
            subprocess.run(
                [
                    *quiet,
                    "-i",
                    str(wav),
                    "-c:a",
                    "libmp3lame",
                    "-b:a",
                    f"{bitrate_kbps}k",
                    str(mp3),
                ],
                check=True,
            )
            subprocess.run([*quiet, "-i", str(mp3), "-c:a", "pcm_f32le", str(back)], check=True)
            data, _ = sf.read(back, dtype="float32", always_2d=True)
        else:
            level = float(np.clip(1.0 - (bitrate_kbps - 32) / 288.0, 0.0, 1.0))
            sf.write(mp3, audio.T, rate, format="MP3", compression_level=level)
            data, _ = sf.read(mp3, dtype="float32", always_2d=True)
    return data.T


def estimate_delay(reference: np.ndarray, other: np.ndarray, max_lag: int) -> int:
    """Integer lag (frames) by which ``other`` trails ``reference``, from cross-correlation.

    Both are ``(channels, frames)`` or ``(frames,)``; channels are summed first. The search is
    limited to ``|lag| <= max_lag``.
    """
    a = np.atleast_2d(np.asarray(reference, dtype=np.float64)).sum(axis=0)
    b = np.atleast_2d(np.asarray(other, dtype=np.float64)).sum(axis=0)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xc = np.fft.irfft(np.conj(np.fft.rfft(a, size)) * np.fft.rfft(b, size), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = xc[lags % size]
    return int(lags[int(np.argmax(values))])


def shift(audio: np.ndarray, lag: int, frames: int | None = None) -> np.ndarray:
    """Advance ``audio`` by ``lag`` frames (drop the first ``lag``; pad zeros at the end), and
    cut or pad to ``frames`` (default: the input length)."""
    frames = audio.shape[-1] if frames is None else frames
    out = np.zeros((*audio.shape[:-1], frames), dtype=audio.dtype)
    src = (
        audio[..., lag:]
        if lag >= 0
        else np.concatenate(
            [np.zeros((*audio.shape[:-1], -lag), dtype=audio.dtype), audio], axis=-1
        )
    )
    n = min(frames, src.shape[-1])
    out[..., :n] = src[..., :n]
    return out


def mp3_artefacts(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator | None = None,
    bitrate_kbps: int = 64,
) -> tuple[np.ndarray, dict[str, Any]]:
    """MP3 coding artefacts: a real encode/decode round trip, delay compensated.

    Uses ffmpeg's LAME encoder when available (libsndfile's otherwise). Encoder and decoder
    padding is removed by cross-correlating with the input, so the output stays sample
    aligned with the reference (the residual delay is reported in ``info["delay"]``).
    """
    _check(audio, rate)
    channels, frames = audio.shape
    decoded = _write_read_mp3(audio, rate, int(bitrate_kbps))
    if decoded.shape[0] != channels:
        decoded = np.broadcast_to(decoded.mean(axis=0, keepdims=True), (channels, decoded.shape[1]))
    lag = estimate_delay(audio, decoded, max_lag=min(4096, frames // 2))
    out = shift(decoded, lag, frames)
    return _f32(out), {"bitrate_kbps": int(bitrate_kbps), "delay": lag}


def dropouts(
    audio: np.ndarray,
    rate: int,
    *,
    rng: np.random.Generator,
    per_second: float = 0.3,
    length_ms: tuple[float, float] = (20.0, 250.0),
    depth_db: tuple[float, float] = (6.0, 30.0),
) -> tuple[np.ndarray, dict[str, Any]]:
    """Tape dropouts: short losses of head contact, level dips with the treble lost first.

    Each dropout has a duration drawn log-uniformly from ``length_ms``, a depth from
    ``depth_db`` and raised-cosine edges of 5 ms. Inside it, the signal is attenuated by the
    depth and additionally low-passed in proportion (spacing loss is worst at short
    wavelengths). All channels drop together (one tape).
    """
    _check(audio, rate)
    _channels, frames = audio.shape
    gain = np.ones(frames)
    ramp = max(1, int(0.005 * rate))
    positions = _events(frames, rate, per_second, rng)
    for pos in positions:
        length = int(rate * 1e-3 * np.exp(rng.uniform(*np.log(length_ms))))
        depth = 10.0 ** (-rng.uniform(*depth_db) / 20.0)
        env = np.ones(length + 2 * ramp)
        edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        env[:ramp], env[-ramp:] = edge, edge[::-1]
        dip = 1.0 - (1.0 - depth) * env
        stop = min(frames, pos + dip.size)
        gain[pos:stop] = np.minimum(gain[pos:stop], dip[: stop - pos])
    x = audio.astype(np.float64)
    sos = signal.butter(2, min(2000.0, 0.4 * rate), btype="lowpass", fs=rate, output="sos")
    dull = signal.sosfiltfilt(sos, x, axis=1)
    loss = 1.0 - gain  # 0 outside dropouts
    out = gain * ((1.0 - loss) * x + loss * dull)
    return _f32(out), {
        "per_second": per_second,
        "count": len(positions),
        "length_ms": list(length_ms),
        "depth_db": list(depth_db),
        "mask": gain < 1.0,
    }


# -- carriers --------------------------------------------------------------------------------

Step = tuple[str, Callable[..., tuple[np.ndarray, dict[str, Any]]], dict[str, Any]]


def _recipe_shellac78(rng: np.random.Generator, rate: int) -> list[Step]:
    """78 rpm shellac, electrical era, played on a good turntable and transferred.

    band-limit 50-80 Hz .. 5-7 kHz; mild distortion (drive 1.2-2); wow 0.1-0.3 % at 1.3 Hz
    (78 rpm eccentricity) with flutter 0.03 % at 6 Hz; surface noise pink at 14-22 dB SNR;
    crackle 200-600 /s (mean amplitude 0.01-0.03); clicks 2-8 /s, 1-40 samples; hum 50 or
    60 Hz at -45..-35 dB.
    """
    u = rng.uniform
    return [
        ("band_limit", band_limit, {"low_hz": u(50, 80), "high_hz": u(5000, 7000)}),
        ("distort", distort, {"drive": u(1.2, 2.0), "asymmetry": u(0.05, 0.2)}),
        (
            "wow_flutter",
            wow_flutter,
            {"wow_percent": u(0.1, 0.3), "wow_hz": 1.3, "flutter_percent": 0.03, "flutter_hz": 6.0},
        ),
        ("add_hiss", add_hiss, {"snr_db": u(14, 22), "colour": "pink"}),
        ("add_crackle", add_crackle, {"per_second": u(200, 600), "level": u(0.01, 0.03)}),
        ("add_clicks", add_clicks, {"per_second": u(2, 8)}),
        (
            "add_hum",
            add_hum,
            {"mains_hz": float(rng.choice((50.0, 60.0))), "level_db": u(-45, -35)},
        ),
    ]


def _recipe_cylinder(rng: np.random.Generator, rate: int) -> list[Step]:
    """Wax or celluloid cylinder (acoustic recording): narrow band, heavy noise, strong wow.

    band-limit 200-300 Hz .. 3-4.5 kHz; distortion drive 2-3; wow 0.3-0.6 % at 2.67 Hz
    (160 rpm) with flutter 0.05 % at 10 Hz; noise brown-ish ("roar") at 8-14 dB SNR plus
    crackle 400-1000 /s; clicks 1-4 /s.
    """
    u = rng.uniform
    return [
        ("band_limit", band_limit, {"low_hz": u(200, 300), "high_hz": u(3000, 4500)}),
        ("distort", distort, {"drive": u(2.0, 3.0), "asymmetry": u(0.1, 0.3)}),
        (
            "wow_flutter",
            wow_flutter,
            {
                "wow_percent": u(0.3, 0.6),
                "wow_hz": 2.67,
                "flutter_percent": 0.05,
                "flutter_hz": 10.0,
            },
        ),
        ("add_hiss", add_hiss, {"snr_db": u(8, 14), "colour": "pink"}),
        ("add_crackle", add_crackle, {"per_second": u(400, 1000), "level": u(0.02, 0.04)}),
        ("add_clicks", add_clicks, {"per_second": u(1, 4)}),
    ]


def _recipe_tape(rng: np.random.Generator, rate: int) -> list[Step]:
    """Open-reel tape (1950s-70s): saturation, hiss, slight wow/flutter, dropouts, hum.

    band-limit 40 Hz .. 14-16 kHz; soft clip (saturation) knee -4..-2 dB; wow 0.05-0.1 % at
    0.5 Hz with flutter 0.03-0.06 % at 8-12 Hz; tape hiss at 22-30 dB SNR; dropouts 0.2-0.5 /s;
    hum 50 or 60 Hz at -50..-40 dB.
    """
    u = rng.uniform
    return [
        ("band_limit", band_limit, {"low_hz": 40.0, "high_hz": u(14000, 16000)}),
        ("clip_soft", clip_soft, {"knee_db": u(-4, -2)}),
        (
            "wow_flutter",
            wow_flutter,
            {
                "wow_percent": u(0.05, 0.1),
                "wow_hz": 0.5,
                "flutter_percent": u(0.03, 0.06),
                "flutter_hz": u(8, 12),
            },
        ),
        ("dropouts", dropouts, {"per_second": u(0.2, 0.5)}),
        ("add_hiss", add_hiss, {"snr_db": u(22, 30), "colour": "tape"}),
        (
            "add_hum",
            add_hum,
            {"mains_hz": float(rng.choice((50.0, 60.0))), "level_db": u(-50, -40)},
        ),
    ]


def _recipe_cassette(rng: np.random.Generator, rate: int) -> list[Step]:
    """Compact cassette without noise reduction: more hiss, narrower band, more flutter.

    band-limit 50 Hz .. 10-13 kHz; soft clip knee -5..-3 dB; mild distortion; wow 0.1-0.2 %
    at 0.8 Hz with flutter 0.08-0.15 % at 10-15 Hz; dropouts 0.3-0.8 /s; tape hiss at
    16-22 dB SNR.
    """
    u = rng.uniform
    return [
        ("band_limit", band_limit, {"low_hz": 50.0, "high_hz": u(10000, 13000)}),
        ("clip_soft", clip_soft, {"knee_db": u(-5, -3)}),
        ("distort", distort, {"drive": u(1.0, 1.5), "asymmetry": 0.1}),
        (
            "wow_flutter",
            wow_flutter,
            {
                "wow_percent": u(0.1, 0.2),
                "wow_hz": 0.8,
                "flutter_percent": u(0.08, 0.15),
                "flutter_hz": u(10, 15),
            },
        ),
        ("dropouts", dropouts, {"per_second": u(0.3, 0.8)}),
        ("add_hiss", add_hiss, {"snr_db": u(16, 22), "colour": "tape"}),
    ]


def _recipe_vinyl(rng: np.random.Generator, rate: int) -> list[Step]:
    """Worn LP: clicks, light crackle, rumble, slight wow, quiet surface noise.

    wow 0.05-0.1 % at 0.55 Hz (33 1/3 rpm); rumble at 30-40 dB below the signal; surface
    noise pink at 35-45 dB SNR; crackle 50-200 /s (mean amplitude 0.003-0.01); clicks
    0.5-3 /s.
    """
    u = rng.uniform
    return [
        (
            "wow_flutter",
            wow_flutter,
            {
                "wow_percent": u(0.05, 0.1),
                "wow_hz": 0.55,
                "flutter_percent": 0.02,
                "flutter_hz": 5.0,
            },
        ),
        ("add_hiss", add_hiss, {"snr_db": u(30, 40), "colour": "rumble"}),
        ("add_hiss", add_hiss, {"snr_db": u(35, 45), "colour": "pink"}),
        ("add_crackle", add_crackle, {"per_second": u(50, 200), "level": u(0.003, 0.01)}),
        ("add_clicks", add_clicks, {"per_second": u(0.5, 3), "level_range": (0.03, 0.5)}),
    ]


def _recipe_mp3(rng: np.random.Generator, rate: int) -> list[Step]:
    """Low-bitrate MP3 (an old download or a web rip), often mastered loud first.

    hard clip at -2..-0.5 dB below peak, then a 48, 64 or 96 kbit/s LAME round trip.
    """
    u = rng.uniform
    return [
        ("clip_hard", clip_hard, {"ceiling_db": u(-2.0, -0.5)}),
        ("mp3_artefacts", mp3_artefacts, {"bitrate_kbps": int(rng.choice((48, 64, 96)))}),
    ]


#: carrier name -> recipe (a function of the generator and the rate returning the steps)
CARRIERS: dict[str, Callable[[np.random.Generator, int], list[Step]]] = {
    "shellac78": _recipe_shellac78,
    "cylinder": _recipe_cylinder,
    "tape": _recipe_tape,
    "vinyl": _recipe_vinyl,
    "cassette": _recipe_cassette,
    "mp3": _recipe_mp3,
}


def apply_steps(
    clean: np.ndarray, rate: int, steps: list[Step], *, rng: np.random.Generator
) -> Degraded:
    """Apply degradation steps in order and collect the ground truth.

    The reference is ``clean`` itself: every degradation here keeps length and alignment
    (MP3 delay is compensated; wow and flutter store their time map instead).
    """
    _check(clean, rate)
    audio = clean.copy()
    click_mask = np.zeros(clean.shape, dtype=bool)
    clip_mask = np.zeros(clean.shape, dtype=bool)
    dropout_mask = None
    hum_hz = None
    time_map = None
    applied: list[dict[str, Any]] = []
    for name, fn, kwargs in steps:
        audio, info = fn(audio, rate, rng=rng, **kwargs)
        if name in ("add_clicks", "add_crackle"):
            click_mask |= info.pop("mask")
        elif name in ("clip_hard", "clip_soft"):
            clip_mask |= info.pop("mask")
        elif name == "dropouts":
            dropout_mask = info.pop("mask")
        elif name == "add_hum":
            hum_hz = info["mean_hz"]
        elif name == "wow_flutter":
            time_map = info.pop("time_map")
            info.pop("speed")
        applied.append({"step": name, **_plain(info)})
    return Degraded(
        audio=audio,
        reference=_f32(clean),
        rate=rate,
        click_mask=click_mask,
        clip_mask=clip_mask,
        hum_hz=hum_hz,
        time_map=time_map,
        dropout_mask=dropout_mask,
        warped_reference=None if time_map is None else warp(clean, time_map),
        params={"steps": applied},
    )


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly copy of a step's settings (floats rounded for readability)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if isinstance(value, np.ndarray):
            continue
        if isinstance(value, (float, np.floating)):
            value = round(float(value), 4)
        elif isinstance(value, np.integer):
            value = int(value)
        out[key] = value
    return out


def simulate(
    clean: np.ndarray, rate: int, *, carrier: str = "shellac78", seed: int = 0
) -> Degraded:
    """Degrade clean audio the way a carrier would, reproducibly.

    Parameters
    ----------
    clean : np.ndarray [shape=(channels, frames), dtype=float32]
        Clean source audio.
    rate : int
        Sample rate in Hz.
    carrier : {'shellac78', 'cylinder', 'tape', 'vinyl', 'cassette', 'mp3'}
        Recipe to apply; each recipe's docstring lists its degradations and their ranges.
    seed : int
        Seed of the random generator: the same seed gives bit-identical output.

    Returns
    -------
    Degraded
        The damaged audio with its aligned clean reference and ground-truth masks;
        ``params`` records the carrier, the seed and every setting drawn.
    """
    if carrier not in CARRIERS:
        raise ParameterError(f"carrier must be one of {', '.join(CARRIERS)}, got {carrier!r}")
    rng = np.random.default_rng(seed)
    steps = CARRIERS[carrier](rng, check_rate(rate))
    result = apply_steps(clean, rate, steps, rng=rng)
    result.params = {"carrier": carrier, "seed": int(seed), **result.params}
    return result
