"""Rebuild resources/samples/demo-shellac78.flac: a few seconds of synthetic "78 rpm" audio.

The music is synthesised here (additive piano-like notes over a soft string pad, a public-domain
melody), then degraded the way a worn shellac disc is: band-limited to about 5 kHz, surface
noise, crackle, clicks, a little 50 Hz hum and rumble. Everything is seeded, so the file is
reproducible; it is ours and released under CC0 (see resources/samples/README.md).

    python scripts/make_demo_sample.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal

from audio_restorer.audio.io import write_audio

RATE = 44100
SECONDS = 8.0
# "Frère Jacques" (traditional), as (semitones above A3, beats)
MELODY = [
    (3, 1),
    (5, 1),
    (7, 1),
    (3, 1),
    (3, 1),
    (5, 1),
    (7, 1),
    (3, 1),
    (7, 1),
    (8, 1),
    (10, 2),
    (7, 1),
    (8, 1),
    (10, 2),
]


def piano_note(freq: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    note = np.zeros_like(t)
    for k in range(1, 12):
        fk = freq * k * np.sqrt(1 + 0.0004 * k * k)  # slight inharmonicity
        if fk > RATE / 2:
            break
        note += (
            np.sin(2 * np.pi * fk * t + rng.uniform(0, 2 * np.pi))
            / k**1.3
            * np.exp(-t * (1.5 + 0.6 * k))
        )
    attack = np.minimum(t / 0.004, 1.0)
    return note * attack


def music(rng: np.random.Generator) -> np.ndarray:
    n = int(SECONDS * RATE)
    out = np.zeros(n)
    beat = 0.5
    pos = 0.25
    for semitone, beats in MELODY:
        start = int(pos * RATE)
        if start >= n:
            break
        note = piano_note(220.0 * 2 ** (semitone / 12), beats * beat + 0.6, rng)
        stop = min(n, start + note.size)
        out[start:stop] += 0.35 * note[: stop - start]
        pos += beats * beat
    t = np.arange(n) / RATE
    vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(110.0 * 2 ** (3 / 12) * vibrato) / RATE
    pad = sum(np.sin(k * phase) / k**2 for k in range(1, 8))
    out += 0.08 * pad * np.minimum(t / 1.5, 1.0)
    return out


def degrade(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = x.size
    t = np.arange(n) / RATE
    band = signal.butter(4, [80, 5000], btype="bandpass", fs=RATE, output="sos")
    y = signal.sosfilt(band, x)
    noise = signal.sosfilt(
        signal.butter(2, [300, 7000], btype="bandpass", fs=RATE, output="sos"),
        rng.standard_normal(n),
    )
    noise *= 1 + 0.3 * np.sin(2 * np.pi * 1.3 * t)  # once-per-revolution swish
    y += noise * np.std(y) / np.std(noise) * 10 ** (-18 / 20)
    y += 0.004 * np.sin(2 * np.pi * 50.1 * t) + 0.002 * np.sin(2 * np.pi * 150.3 * t)
    y += 0.01 * np.sin(2 * np.pi * 12 * t)
    crackle = rng.random(n) < 0.0015
    y[crackle] += rng.normal(0, 0.04, crackle.sum())
    for pos in rng.choice(n - 60, 45, replace=False):
        width = int(rng.integers(2, 40))
        shape = np.hanning(width + 2)[1:-1] * rng.choice([-1, 1]) * rng.uniform(0.2, 0.8)
        y[pos : pos + width] += shape
    return (y / np.abs(y).max() * 0.89).astype(np.float32)


def main() -> None:
    rng = np.random.default_rng(78)
    out = Path(__file__).resolve().parents[1] / "resources" / "samples" / "demo-shellac78.flac"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_audio(out, degrade(music(rng), rng)[None], RATE, bit_depth="16")
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
