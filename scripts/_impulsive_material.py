"""Seeded test material for the impulsive-noise benchmarks and tests (clicks, music-like)."""

from __future__ import annotations

import numpy as np


def piano_like(rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Decaying harmonic notes with random onsets (piano-like)."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = np.zeros(n)
    onset = 0.0
    while onset < seconds:
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        i0 = int(onset * rate)
        tt = t[i0:] - onset
        note = np.zeros_like(tt)
        for h in range(1, 9):
            if f0 * h > rate / 2.2:
                break
            note += (
                (0.6 / h)
                * np.sin(2 * np.pi * f0 * h * tt * (1 + 0.0004 * h * h) + rng.uniform(0, 6.28))
                * np.exp(-tt * (1.5 + 0.8 * h))
            )
        out[i0:] += note * np.minimum(1.0, tt * rate / 20)
        onset += rng.uniform(0.15, 0.5)
    return out / np.max(np.abs(out)) * 0.5


def karplus_strong(rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Plucked strings (Karplus–Strong) at random pitches and times.

    The textbook recursion ``y[n] = g * (y[n - P] + y[n - P - 1]) / 2`` after a one-period
    noise burst, evaluated one period at a time, with a 20 ms fade when the next note damps
    the string. (An earlier version smoothed a copy of the period buffer and restarted it at
    every period boundary: that put a half-sample phase jump, a real small discontinuity,
    into every period, which is not what a string does.)
    """
    n = int(rate * seconds)
    out = np.zeros(n)
    pos = 0
    fade = int(0.02 * rate)
    while pos < n:
        period = int(rate / (82.0 * 2 ** (rng.integers(0, 30) / 12)))
        length = min(n - pos, int(rate * 1.2))
        exc = rng.uniform(-1, 1, period)
        for _ in range(2):  # a finger or plectrum excites mostly the lower harmonics
            exc = 0.5 * (exc + np.concatenate([[0.0], exc[:-1]]))
        y = np.zeros(length + period + 1)
        y[1 : period + 1] = exc  # y[0] is the zero before the pluck
        for i in range(period + 1, y.size, period):
            j = min(i + period, y.size)
            y[i:j] = 0.498 * (y[i - period : j - period] + y[i - period - 1 : j - period - 1])
        y = y[1 : length + 1]
        k = min(fade, length)
        y[length - k :] *= 0.5 * (1 + np.cos(np.pi * np.arange(k) / k))
        out[pos : pos + length] += y
        pos += int(rate * rng.uniform(0.2, 0.6))
    return out / np.max(np.abs(out)) * 0.5


def castanets(rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Castanet-like strokes: a short noisy impact (1-2 ms) ringing two body resonances
    (1.5-3.5 kHz, 8-20 ms decay), over a soft tone.

    Each stroke rings for 120 ms and fades out over its last 20 ms (an earlier version cut the
    ringing off after 60 ms, a step of up to -26 dB re the stroke: a real discontinuity).
    """
    from scipy.signal import lfilter

    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = 0.05 * np.sin(2 * np.pi * 220 * t)
    pos = int(0.05 * rate)
    while pos < n - rate // 10:
        length = min(int(rate * 0.12), n - pos)
        exc = np.zeros(length)
        m = max(4, int(rng.uniform(1e-3, 2e-3) * rate))
        exc[:m] = rng.standard_normal(m) * np.exp(-np.arange(m) / (m / 3))
        burst = np.zeros(length)
        for _ in range(2):
            f = rng.uniform(1500, 3500)
            r = np.exp(-1.0 / (rng.uniform(0.008, 0.02) * rate))
            burst += lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / rate), r * r], exc)
        k = min(int(0.02 * rate), length)
        burst[length - k :] *= 0.5 * (1 + np.cos(np.pi * np.arange(k) / k))
        out[pos : pos + length] += 0.4 * burst / np.max(np.abs(burst))
        pos += int(rate * rng.uniform(0.08, 0.25))
    return out / np.max(np.abs(out)) * 0.6


def add_clicks(
    x: np.ndarray,
    rate: int,
    count: int,
    rng: np.random.Generator,
    *,
    max_width: int = 40,
    min_amp: float = 0.05,
    max_amp: float = 0.6,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Add ``count`` clicks of width 1..max_width samples, varied shape, amplitude and polarity.

    Returns the damaged copy and the (start, stop) of each click. Clicks do not overlap.
    """
    y = x.copy()
    n = x.shape[-1]
    slots = np.sort(
        rng.choice(np.arange(rate // 20, n - rate // 20, 3 * max_width), count, replace=False)
    )
    truth = []
    for s in slots:
        w = int(rng.integers(1, max_width + 1))
        amp = rng.uniform(min_amp, max_amp) * rng.choice([-1.0, 1.0])
        shape = rng.integers(0, 3)
        k = np.arange(w)
        if shape == 0:
            env = np.sin(np.pi * (k + 0.5) / w)
        elif shape == 1:
            env = np.exp(-k / max(1.0, w / 4)) * np.cos(np.pi * k / max(2.0, w / 2))
        else:
            env = rng.uniform(-1, 1, w)
            env[0] = 1.0
        y[..., s : s + w] += amp * env
        truth.append((int(s), int(s + w)))
    return y, truth
