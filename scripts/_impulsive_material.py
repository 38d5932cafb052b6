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
    """Plucked strings (Karplus–Strong) at random pitches and times."""
    n = int(rate * seconds)
    out = np.zeros(n)
    pos = 0
    while pos < n:
        period = int(rate / (82.0 * 2 ** (rng.integers(0, 30) / 12)))
        length = min(n - pos, int(rate * 1.2))
        buf = rng.uniform(-1, 1, period)
        for _ in range(2):  # a finger or plectrum excites mostly the lower harmonics
            buf = 0.5 * (buf + np.roll(buf, 1))
        y = np.zeros(length)
        for i in range(0, length, period):
            seg = buf[: min(period, length - i)]
            y[i : i + seg.size] = seg
            buf = 0.996 * 0.5 * (buf + np.roll(buf, -1))
        out[pos : pos + length] += y
        pos += int(rate * rng.uniform(0.2, 0.6))
    return out / np.max(np.abs(out)) * 0.5


def castanets(rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Castanet-like strokes: a short noisy impact (1-2 ms) ringing two body resonances
    (1.5-3.5 kHz, 8-20 ms decay), over a soft tone."""
    from scipy.signal import lfilter

    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = 0.05 * np.sin(2 * np.pi * 220 * t)
    pos = int(0.05 * rate)
    while pos < n - rate // 10:
        length = int(rate * 0.06)
        exc = np.zeros(length)
        m = max(4, int(rng.uniform(1e-3, 2e-3) * rate))
        exc[:m] = rng.standard_normal(m) * np.exp(-np.arange(m) / (m / 3))
        burst = np.zeros(length)
        for _ in range(2):
            f = rng.uniform(1500, 3500)
            r = np.exp(-1.0 / (rng.uniform(0.008, 0.02) * rate))
            burst += lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / rate), r * r], exc)
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
