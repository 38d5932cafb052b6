"""Groove-wall decoding, azimuth, swap/polarity and mono-compatible pseudo-stereo."""

from __future__ import annotations

import numpy as np
import pytest

from _time_signals import make_clip
from audio_restorer.errors import ParameterError
from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.stages._timewarp import read_at
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.channels import Channels, Widen

RATE = 22050


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    clean, _ = make_clip(3.0, RATE, [(1.0, 0.0, 0.0)], seed=3, voices=3)
    return clean


def _walls(music: np.ndarray, seed: int = 0) -> np.ndarray:
    """A mono disc read by a stereo pickup: the same music, independent noise and clicks."""
    rng = np.random.default_rng(seed)
    m = music[0]
    nl = 0.02 * rng.standard_normal(m.size)
    nr = 0.05 * rng.standard_normal(m.size)
    for i in rng.integers(0, m.size // 2, 20):
        nr[i : i + 20] += rng.uniform(-0.8, 0.8)
    for i in rng.integers(m.size // 2, m.size - 20, 20):
        nl[i : i + 20] += rng.uniform(-0.8, 0.8)
    return np.stack([m + nl, m + nr]).astype(np.float32)


@pytest.mark.parametrize("tau", [0.37, -2.6, 5.25])
def test_azimuth_delay_recovered_within_a_tenth_of_a_sample(music, tau):
    rng = np.random.default_rng(1)
    right = read_at(music, np.arange(music.shape[1]) - tau)[0]
    x = np.stack([music[0], right]).astype(np.float32)
    x += 0.01 * rng.standard_normal(x.shape).astype(np.float32)
    analyzer = Channels().analyzer(RATE, 2)
    analyzer.update(x)
    assert abs(analyzer.result() - tau) < 0.1


def test_azimuth_correction_aligns_the_walls(music):
    tau = 3.4
    right = read_at(music, np.arange(music.shape[1]) - tau)[0]
    x = np.stack([music[0], right]).astype(np.float32)
    y = Channels()(x, RATE)
    core = slice(1000, -1000)
    assert si_sdr(y[0, core], y[1, core]) > 30.0
    assert si_sdr(x[0, core], x[1, core]) < 10.0


def test_best_wall_beats_plain_sum(music):
    x = _walls(music)
    lateral = Channels(mode="lateral", azimuth=False)(x, RATE)
    best = Channels(mode="best", azimuth=False)(x, RATE)
    assert best.shape == (1, x.shape[1])
    assert si_sdr(music, best) > si_sdr(music, lateral) + 1.0


def test_best_wall_blockwise_equals_whole(music):
    x = _walls(music)
    stage = Channels(mode="best")
    analyzer = stage.analyzer(RATE, 2)
    analyzer.update(x)
    analysis = analyzer.result()
    whole = stage.process(x, RATE, analysis=analysis)
    blocks = process_in_blocks(stage, x, RATE, 30001, analysis)
    assert blocks.shape == whole.shape
    np.testing.assert_allclose(blocks, whole, atol=1e-5)


def test_simple_modes_swap_and_polarity():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1000)).astype(np.float32)
    np.testing.assert_allclose(Channels(mode="left", azimuth=False)(x, RATE), x[:1])
    np.testing.assert_allclose(Channels(mode="right", azimuth=False)(x, RATE), x[1:])
    np.testing.assert_allclose(
        Channels(mode="lateral", azimuth=False)(x, RATE)[0], 0.5 * (x[0] + x[1]), atol=1e-6
    )
    np.testing.assert_allclose(
        Channels(mode="vertical", azimuth=False)(x, RATE)[0], 0.5 * (x[0] - x[1]), atol=1e-6
    )
    swapped = Channels(swap=True, invert_left=True, azimuth=False)(x, RATE)
    np.testing.assert_allclose(swapped, np.stack([-x[1], x[0]]))
    assert Channels(mode="best").output_channels(2) == 1


def test_vertical_needs_two_channels():
    with pytest.raises(ParameterError, match="2 channels"):
        Channels(mode="vertical")(np.zeros((1, 100), np.float32), RATE)


@pytest.mark.parametrize("channels", [1, 2])
def test_widen_is_mono_compatible_and_wide(music, channels):
    x = np.repeat(music, channels, axis=0)
    y = Widen()(x, RATE)
    assert y.shape == (2, x.shape[1])
    fold = y.mean(axis=0)
    err = 10 * np.log10(np.sum((fold - x.mean(axis=0)) ** 2) / np.sum(x[0] ** 2))
    assert err < -40.0
    assert np.corrcoef(y)[0, 1] < 0.95  # really decorrelated
    blocks = process_in_blocks(Widen(), x, RATE, 7001)
    np.testing.assert_array_equal(blocks, y)
