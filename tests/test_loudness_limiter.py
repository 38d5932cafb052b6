"""Loudness normalisation hits its target (pyloudnorm as the judge); the limiter never overs."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from audio_restorer.analysis import true_peak_dbtp
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.loudness import Limiter, Loudness

RATE = 22050


def music(rate, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    x = np.zeros_like(t)
    for i, f0 in enumerate((196.0, 247.0, 294.0, 392.0)):
        vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t + i)
        env = 0.5 + 0.5 * np.sin(2 * np.pi * (0.3 + 0.1 * i) * t) ** 2
        for h in range(1, 8):
            x += env * np.sin(2 * np.pi * f0 * h * np.cumsum(vib) / rate) / h**1.2
    beats = (np.arange(t.size) % (rate // 2)) < rate // 40
    x += 2.0 * beats * rng.standard_normal(t.size)
    x /= np.max(np.abs(x))
    return np.vstack([x, 0.8 * x + 0.05 * rng.standard_normal(t.size)])


def speech(rate, seconds, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    f0 = 120 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(h * phase) / h for h in range(1, 20))
    syll = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    pauses = (np.sin(2 * np.pi * 0.35 * t) > -0.5).astype(float)
    x = 0.3 * voiced * syll * pauses + 0.02 * rng.standard_normal(t.size) * syll
    return x[None, :]


def tone(rate, seconds):
    t = np.arange(int(rate * seconds)) / rate
    return 0.05 * np.sin(2 * np.pi * 1000 * t)[None, :]


def pyln(x, rate):
    return pyloudnorm.Meter(rate).integrated_loudness(x.T.astype(np.float64))


@pytest.mark.parametrize("make", [music, speech, tone])
@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_integrated_loudness_within_0_1_lu(make, target):
    x = make(RATE, 5.0).astype(np.float32)
    y = Loudness(target_lufs=target)(x, RATE)
    assert abs(pyln(y, RATE) - target) <= 0.1
    assert y.shape == x.shape and y.dtype == np.float32


def test_analysis_reports_loudness_range_and_blockwise_equals_whole():
    x = music(RATE, 6.0).astype(np.float32)
    x[:, : x.shape[1] // 2] *= 0.1  # a quiet first half: a wide loudness range
    stage = Loudness(target_lufs=-23.0)
    analyzer = stage.analyzer(RATE, 2)
    analyzer.update(x)
    result = analyzer.result()
    assert abs(result.integrated_lufs - pyln(x, RATE)) < 0.01
    assert 6.0 < result.loudness_range_lu < 25.0
    whole = stage.process(x, RATE, analysis=result)
    np.testing.assert_array_equal(whole, process_in_blocks(stage, x, RATE, 5001, result))


def test_adaptive_rides_level_and_keeps_target():
    x = speech(RATE, 12.0).astype(np.float32)
    x[:, : x.shape[1] // 2] *= 0.25  # first half 12 dB quieter
    stage = Loudness(target_lufs=-20.0, mode="adaptive", max_change_db=6.0, smoothing_s=2.0)
    analyzer = stage.analyzer(RATE, 1)
    analyzer.update(x)
    result = analyzer.result()
    y = stage.process(x, RATE, analysis=result)
    half = x.shape[1] // 2
    before = pyln(x[:, half:], RATE) - pyln(x[:, :half], RATE)
    after = pyln(y[:, half:], RATE) - pyln(y[:, :half], RATE)
    assert before > 11.0 and after < before - 4.0  # the level step is reduced
    assert abs(pyln(y, RATE) - (-20.0)) < 0.5
    np.testing.assert_allclose(y, process_in_blocks(stage, x, RATE, 4099, result), atol=1e-6)


def test_silence_is_left_alone():
    x = np.zeros((2, RATE), dtype=np.float32)
    np.testing.assert_array_equal(Loudness()(x, RATE), x)


# -- limiter ---------------------------------------------------------------------------------


def overs(rate, seconds, seed=3):
    """Signals built to produce inter-sample peaks."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    square = np.sign(np.sin(2 * np.pi * 441 * t))
    fs4 = np.sin(2 * np.pi * rate / 4 * t + np.pi / 4)
    clipped = np.clip(0.9 * rng.standard_normal(n), -1, 1)
    loud = music(rate, seconds, seed)[0] * 10 ** (12 / 20)  # pushed +12 dB
    alt = np.tile([1.0, 1.0, -1.0, -1.0], n // 4 + 1)[:n]
    return {"square": square, "fs4_45deg": fs4, "clipped": clipped, "music+12": loud, "alt": alt}


@pytest.mark.parametrize("ceiling", [-1.0, 0.0, -6.0])
@pytest.mark.parametrize("rate", [44100, 22050])
def test_true_peak_never_over_ceiling(ceiling, rate):
    for name, sig in overs(rate, 1.5).items():
        x = (1.4 * np.vstack([sig, np.roll(sig, 3)])).astype(np.float32)
        assert true_peak_dbtp(x) > ceiling + 2.0, name  # the test signal really is over
        y = Limiter(ceiling_dbtp=ceiling)(x, rate)
        assert y.shape == x.shape and y.dtype == np.float32
        assert true_peak_dbtp(y) <= ceiling + 0.0, name
        assert true_peak_dbtp(y) > ceiling - 0.3, name  # and not needlessly low


def test_limiter_is_aligned_and_transparent_below_ceiling():
    rng = np.random.default_rng(5)
    x = (0.05 * rng.standard_normal((2, RATE * 2))).astype(np.float32)
    np.testing.assert_array_equal(Limiter()(x, RATE), x)


def test_limiter_blockwise_equals_whole_and_keeps_length():
    sig = overs(RATE, 2.0)["music+12"]
    x = np.vstack([sig, -sig]).astype(np.float32)
    stage = Limiter(lookahead_ms=3.0, release_ms=50.0)
    whole = stage(x, RATE)
    for block in (1000, 4097, 77):
        np.testing.assert_array_equal(whole, process_in_blocks(stage, x, RATE, block))


def test_limiter_gain_recovers_after_a_peak():
    rate = RATE
    x = np.full((1, rate), 0.1, dtype=np.float32) * np.sin(np.arange(rate) * 0.1)
    x[0, rate // 4] = 1.0  # one spike
    y = Limiter(ceiling_dbtp=-6.0, release_ms=50.0)(x.astype(np.float32), rate)
    assert true_peak_dbtp(y) <= -6.0
    # before the look-ahead window and a few release times after, the signal is untouched
    np.testing.assert_allclose(y[0, : rate // 4 - 200], x[0, : rate // 4 - 200], rtol=1e-6)
    late = slice(rate // 4 + rate // 2, None)
    np.testing.assert_allclose(y[0, late], x[0, late], rtol=1e-6)
