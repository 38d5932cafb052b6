"""Clicks just before musical onsets: the loudness test must look at the click, not the note.

On a worn disc clicks land anywhere, including a few milliseconds before a note starts. The
declicker rejects a burst as an onset when the music after it is much louder than before it
(12 ms windows); a click 6-12 ms before a note used to be taken for that note's onset and left
in place. Known-answer tests on seeded synthetic notes with known onset times.
"""

from __future__ import annotations

import numpy as np

from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.stages.declick import Declick

RATE = 44100


def notes_with_onsets(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Decaying harmonic notes with 1 ms attacks; returns (signal, onset sample indices).

    Each note starts after the previous one has decayed by ~25-35 dB, so every onset is a
    clear > 5 dB rise in loudness (the situation in which the onset test must be careful).
    """
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    onsets = []
    onset = 0.1
    while onset < seconds - 0.1:
        f0 = 110.0 * 2 ** (rng.integers(0, 30) / 12)
        i0 = int(onset * RATE)
        onsets.append(i0)
        tt = t[i0:] - onset
        for h in range(1, 7):
            out[i0:] += (
                (0.5 / h)
                * np.sin(2 * np.pi * f0 * h * tt + rng.uniform(0, 2 * np.pi))
                * np.exp(-tt * (12.0 + 3.0 * h))
                * np.minimum(1.0, tt * RATE / 44)
            )
        onset += rng.uniform(0.25, 0.4)
    return out / np.max(np.abs(out)) * 0.5, np.array(onsets)


def clicks_before(x, onsets, rng, lead_ms=(7.0, 11.0)):
    """One click (spike or ringing, 1-12 samples, 0.1-0.4) ending ``lead_ms`` before each onset."""
    y = x.copy()
    truth = []
    for i0 in onsets:
        w = int(rng.integers(1, 13))
        s = i0 - int(rng.uniform(*lead_ms) * 1e-3 * RATE) - w
        k = np.arange(w)
        if rng.random() < 0.5:
            env = np.zeros(w)
            env[rng.integers(0, w)] = 1.0
        else:
            env = np.exp(-k / max(1.0, w / 4)) * np.cos(np.pi * k / 2.5)
        y[s : s + w] += rng.uniform(0.1, 0.4) * rng.choice([-1.0, 1.0]) * env
        truth.append((s, s + w))
    return y, truth


def test_clicks_just_before_onsets_are_found():
    rng = np.random.default_rng(21)
    x, onsets = notes_with_onsets(5.0, rng)
    y, truth = clicks_before(x, onsets, rng)
    audio = y[None].astype(np.float32)
    mask = Declick().detect(audio, RATE)[0]
    found = sum(bool(mask[s:e].any()) for s, e in truth)
    # with the loudness rise measured over 12 ms only, none of these 16 was found (and the
    # SI-SDR did not improve); the rise must now also show within the first 6 ms
    assert len(truth) >= 14
    assert found >= len(truth) - 2, (found, len(truth))
    out = Declick()(audio, RATE)[0]
    assert si_sdr(x, out) >= si_sdr(x, y) + 10.0


def test_onsets_themselves_are_still_left_alone():
    rng = np.random.default_rng(22)
    x, _ = notes_with_onsets(5.0, rng)
    audio = x[None].astype(np.float32)
    out = Declick()(audio, RATE)[0]
    assert si_sdr(x, out) > 50.0
