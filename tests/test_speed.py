"""Speed/pitch correction: exact stream lengths, factors, turntable speeds, tuning."""

from __future__ import annotations

import numpy as np
import pytest

from audio_restorer.errors import ParameterError
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.speed import Speed

RATE = 22050


def _tone(f0: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))
    return (0.2 * x).astype(np.float32)[None]


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x[0] * np.hanning(x.shape[1])))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / x.shape[1]


@pytest.mark.parametrize("factor", [80.0 / 78.26, 0.9, 1.3333])
@pytest.mark.parametrize("block", [1000, 4097, 70000])
def test_stream_length_matches_output_frames(factor, block):
    x = np.random.default_rng(0).standard_normal((2, RATE * 2 + 17)).astype(np.float32)
    stage = Speed(factor=factor)
    y = process_in_blocks(stage, x, RATE, block)
    assert y.shape == (2, stage.output_frames(x.shape[1], RATE))


def test_blockwise_equals_whole():
    x = _tone(330.0)
    stage = Speed(factor=1.05)
    np.testing.assert_allclose(process_in_blocks(stage, x, RATE, 3001), stage(x, RATE), atol=1e-5)


def test_rpm_mode_moves_pitch_by_speed_ratio():
    x = _tone(440.0)
    y = Speed(mode="rpm", recorded_rpm=80.0, played_rpm=78.26)(x, RATE)
    assert y.shape[1] == round(x.shape[1] * 78.26 / 80.0)
    assert _peak_hz(y) == pytest.approx(440.0 * 80.0 / 78.26, rel=2e-4)


def test_identity_factor_is_exact():
    x = _tone(200.0)
    np.testing.assert_array_equal(Speed(factor=1.0)(x, RATE), x)


@pytest.mark.parametrize("cents", [-35.0, 12.0, 30.0])
def test_pitch_mode_measures_and_corrects_tuning(cents):
    # a chord (C#4 and A4 with harmonics) tuned `cents` away from A4 = 440 Hz
    t = np.arange(3 * RATE) / RATE
    shift = 2.0 ** (cents / 1200.0)
    x = sum(np.sin(2 * np.pi * k * f * shift * t) / k for f in (440.0, 277.18) for k in range(1, 5))
    x = (0.1 * x).astype(np.float32)[None]
    stage = Speed(mode="pitch")
    analyzer = stage.analyzer(RATE, 1)
    analyzer.update(x)
    a4 = analyzer.result()
    assert 1200 * np.log2(a4 / 440.0) == pytest.approx(cents, abs=1.5)
    y = stage.process(x, RATE, analysis=a4)
    assert y.shape[1] == stage.output_frames(x.shape[1], RATE, a4)
    analyzer = Speed(mode="pitch").analyzer(RATE, 1)
    analyzer.update(y)
    assert abs(1200 * np.log2(analyzer.result() / 440.0)) < 1.5


def test_pitch_mode_with_given_a4_needs_no_analysis():
    stage = Speed(mode="pitch", measured_hz=435.0)
    assert stage.analyzer(RATE, 1) is None
    assert stage.factor() == pytest.approx(440.0 / 435.0)


def test_out_of_range_factor_is_rejected():
    with pytest.raises(ParameterError, match="factor"):
        Speed(factor=5.0)
