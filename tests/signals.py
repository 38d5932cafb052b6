"""Seeded test signals shared by the test modules."""

from __future__ import annotations

import numpy as np


def music_like(rate: int, seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Decaying harmonic notes plus a little noise: a stand-in for music in I/O tests."""
    r = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = np.zeros((channels, n))
    note_len = max(1, int(rate * 0.4))
    for start in range(0, n, note_len):
        f0 = 110.0 * 2 ** (r.integers(0, 24) / 12)
        seg = t[start : start + note_len] - t[start]
        tone = sum(np.sin(2 * np.pi * f0 * k * seg) / k for k in range(1, 6) if f0 * k < rate / 2)
        env = np.exp(-seg * 4.0)
        for c in range(channels):
            out[c, start : start + note_len] += 0.25 * env * tone * (1.0 - 0.2 * c)
    out += 0.003 * r.standard_normal(out.shape)
    return out.astype(np.float32)


def vibrato_notes(rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Overlapping decaying notes (a new one every 0.4 s) of five harmonics with vibrato,
    normalised to peak 1. float64 (frames,)."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = np.zeros(n)
    for start in np.arange(0.0, seconds, 0.4):
        f0 = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        tt = np.clip(t - start, 0, None)
        on = t >= start
        vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * tt)
        for h in range(1, 6):
            out += on * (0.7 / h) * np.sin(2 * np.pi * f0 * h * tt * vib) * np.exp(-2.5 * tt)
    return out / np.max(np.abs(out))
