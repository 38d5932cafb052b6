"""Known-answer tests of the dehum stage on simulator-like hum: six harmonics with amplitudes
1/k (odd ones boosted, rectifier buzz) on a fundamental that drifts as a random walk of
+-0.1 Hz, 25 dB below a music-like signal (notes with vibrato, attacks and decays).

The hum left is measured against the true hum, not the stage's own estimate: the output minus
the clean music is projected, harmonic by harmonic, onto the true cosine and sine of that
harmonic's phase (least squares over the file's interior, the first and last second left out:
there the per-second track is held constant and the file has no future to average).
"""

from __future__ import annotations

import numpy as np
import pytest

from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.stages.dehum import Dehum

RATE = 22050
NOTES = (130.8, 164.8, 174.6, 220.0, 261.6, 329.6, 392.0, 440.0)  # C3 E3 F3 A3 C4 E4 G4 A4


def simulated_hum(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Harmonics 1..6 [shape=(6, n)] and the fundamental's phase [shape=(n,)] (radians)."""
    knots = n // RATE + 2
    walk = np.cumsum(rng.standard_normal(knots))
    walk -= walk.mean()
    walk *= 0.1 / np.max(np.abs(walk))
    f0 = 50.0 + np.interp(np.arange(n) / RATE, np.arange(knots), walk)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    amps = [(1.0 / k) * (1.3 if k % 2 and k > 1 else 1.0) for k in range(1, 7)]
    parts = [a * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k, a in enumerate(amps, 1)]
    return np.array(parts), phase


def melody(n: int, rng: np.random.Generator) -> np.ndarray:
    """Notes 0.3-0.8 s long, five partials, 5 Hz vibrato, 30 ms attack and release."""
    out = np.zeros(n)
    t0 = 0
    while t0 < n:
        f = rng.choice(NOTES)
        t = np.arange(min(int(rng.uniform(0.3, 0.8) * RATE), n - t0)) / RATE
        ph = 2 * np.pi * np.cumsum(f * (1 + 0.004 * np.sin(2 * np.pi * 5 * t))) / RATE
        env = np.minimum(1, t / 0.03) * np.exp(-2 * t) * np.minimum(1, (t[-1] - t) / 0.03)
        out[t0 : t0 + t.size] += env * sum(np.sin(k * ph) / k for k in range(1, 6))
        t0 += t.size
    return 0.3 * out / np.max(np.abs(out))


def hum_left_db(error: np.ndarray, phase: np.ndarray, hum: np.ndarray) -> float:
    """Power of the true hum's harmonics in ``error``, relative to the hum's power, dB."""
    inner = slice(RATE, -RATE)
    e, ph = error[inner], phase[inner]
    left = 0.0
    for k in range(1, 7):
        basis = np.stack([np.cos(k * ph), np.sin(k * ph)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, e, rcond=None)
        left += float(np.sum((basis @ coef) ** 2))
    return 10 * np.log10(left / np.sum(hum[inner] ** 2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drifting_six_harmonic_hum_is_35_db_down_and_the_music_kept(seed):
    rng = np.random.default_rng(seed)
    n = 12 * RATE
    m = melody(n, rng)
    parts, phase = simulated_hum(n, rng)
    parts *= np.sqrt(np.mean(m**2) * 10 ** (-25 / 10) / np.mean(parts.sum(0) ** 2))
    h = parts.sum(0)
    x = np.stack([m + h]).astype(np.float32)
    stage = Dehum()
    res = stage.analyze(x, RATE)
    assert res.mains_hz == 50.0
    out = stage.process(x, RATE, analysis=res)[0].astype(np.float64)
    # the hum left, projected on the true hum's harmonics, 35 dB below the input's hum
    assert hum_left_db(out - m, phase, h) < -35.0
    # the music taken: the same (linear, given the steering signal) removal applied to the
    # music alone; it is over 30 dB below the input's hum (so, measured against the input's
    # SI-SDR of 25 dB, the music loss costs < 0.01 dB) and the SI-SDR rises by > 25 dB
    taken = stage.hum(m[None], RATE, res, steer=x)[0]
    assert 10 * np.log10(np.sum(taken**2) / np.sum(m**2)) < -25.0 - 30.0
    assert si_sdr(m[None], out[None]) > si_sdr(m[None], x) + 25.0


def test_forced_mains_on_hum_free_music_takes_almost_nothing():
    """With the mains forced (so the removal runs) on music without hum, every line is left:
    the music there outweighs the (absent) hum."""
    rng = np.random.default_rng(5)
    m = melody(10 * RATE, rng)
    x = np.stack([m, 0.7 * m]).astype(np.float32)
    out = Dehum(mains="50")(x, RATE)
    assert si_sdr(x, out) > 45.0  # the music changed by < -45 dB: SI-SDR loss well < 0.3 dB


def test_clean_music_is_untouched():
    rng = np.random.default_rng(6)
    x = np.stack([melody(8 * RATE, rng)]).astype(np.float32)
    assert np.array_equal(Dehum()(x, RATE), x)


def test_hum_level_step_is_followed():
    """The hum's level doubles half-way (a transfer's gain changed). The 20 s level average
    cannot follow a step; where a faster (3 s) average departs from it by more than the music
    explains, the faster one is used: the hum is 35 dB down away from the step and the three
    seconds after it keep 17 dB (the slow average alone: 16.2 dB; measured 18.8 dB)."""
    rng = np.random.default_rng(3)
    n = 30 * RATE
    m = melody(n, rng)
    parts, _ = simulated_hum(n, rng)
    h = parts.sum(0) * np.where(np.arange(n) < 15 * RATE, 1.0, 2.0)
    h *= np.sqrt(np.mean(m**2) * 10 ** (-25 / 10) / np.mean(h**2))
    x = np.stack([m + h]).astype(np.float32)
    stage = Dehum()
    res = stage.analyze(x, RATE)
    left = h - stage.hum(h[None], RATE, res, steer=x)[0]

    def att(start: float, stop: float) -> float:
        sl = slice(int(start * RATE), int(stop * RATE))
        return 10 * np.log10(np.sum(h[sl] ** 2) / np.sum(left[sl] ** 2))

    assert att(1, 9) > 35.0 and att(21, 29) > 35.0
    assert att(15, 18) > 17.0
    assert att(0, 30) > 20.0
