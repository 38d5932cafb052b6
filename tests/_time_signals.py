"""Seeded test material for the time-domain stages: harmonic tones warped by known speed curves.

The signal is defined in its own ("true") time u and evaluated at the warped times u(t) of the
recording, so the warp is exact: y(t) = x(u(t)) with du/dt = speed(t).
"""

from __future__ import annotations

import numpy as np


def notes_signal(
    u: np.ndarray,
    rng: np.random.Generator,
    *,
    note_s: float = 0.8,
    voices: int = 2,
    partials: int = 6,
    vibrato_notes: float = 0.0,
    vibrato_cents: float = 40.0,
    vibrato_voice: int | None = None,
    vibrato_hz: float | None = None,
) -> np.ndarray:
    """Sustained polyphonic harmonic notes evaluated at true times ``u`` (seconds).

    Each voice plays a sequence of notes (random pitches on a 12-TET grid, A4 = 440 Hz) of
    ``note_s`` seconds, offset between voices so note changes do not coincide. A fraction
    ``vibrato_notes`` of the notes carries a 5-7 Hz vibrato of ``vibrato_cents`` depth
    (every note of voice ``vibrato_voice`` when given; at ``vibrato_hz`` when given).
    """
    out = np.zeros_like(u)
    total = float(u.max()) + note_s
    for v in range(voices):
        start = -note_s * v / voices
        while start < total:
            stop = start + note_s
            semis = rng.integers(-14, 10) + 12 * (v - voices // 2) * 0
            f0 = 440.0 * 2.0 ** (semis / 12.0) * (0.5 if v == 0 else 1.0)
            seg = (u >= start) & (u < stop)
            if np.any(seg):
                tu = u[seg] - start
                phase_dev = 0.0
                draw = rng.random()
                if draw < vibrato_notes or v == vibrato_voice:
                    rate = rng.uniform(5.0, 7.0) if vibrato_hz is None else vibrato_hz
                    depth = (2.0 ** (vibrato_cents / 1200.0) - 1.0) * f0
                    phase_dev = depth / rate * (1.0 - np.cos(2 * np.pi * rate * tu))
                env = np.minimum(1.0, tu / 0.02) * np.minimum(1.0, (note_s - tu) / 0.02)
                env = env * np.exp(-tu * 0.5)
                for k in range(1, partials + 1):
                    amp = 0.3 / k
                    out[seg] += (
                        amp
                        * env
                        * np.sin(2 * np.pi * k * (f0 * tu + phase_dev) + rng.uniform(0, 6.28))
                    )
            start = stop
    return out


def speed_curve(t: np.ndarray, components: list[tuple[float, float, float]]) -> np.ndarray:
    """Speed ratio ``1 + sum(depth * sin(2 pi f t + phase))`` for (f_hz, depth, phase)."""
    s = np.ones_like(t)
    for f, depth, phase in components:
        s += depth * np.sin(2 * np.pi * f * t + phase)
    return s


def warped_times(t: np.ndarray, components: list[tuple[float, float, float]]) -> np.ndarray:
    """u(t) = integral of the speed curve, in closed form."""
    u = t.copy()
    for f, depth, phase in components:
        u += depth / (2 * np.pi * f) * (np.cos(phase) - np.cos(2 * np.pi * f * t + phase))
    return u


def make_clip(
    seconds: float,
    rate: int,
    components: list[tuple[float, float, float]],
    *,
    seed: int = 0,
    **kwargs: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(clean, warped) mono clips, shape ``(1, frames)`` float32 each."""
    t = np.arange(int(seconds * rate)) / rate
    clean = notes_signal(t, np.random.default_rng(seed), **kwargs)
    warped = notes_signal(warped_times(t, components), np.random.default_rng(seed), **kwargs)
    return clean[None].astype(np.float32), warped[None].astype(np.float32)
