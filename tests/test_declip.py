"""Known-answer tests of the declip stage on seeded, hard- and softly-clipped signals."""

from __future__ import annotations

import numpy as np
import pytest

from audio_restorer.errors import ParameterError
from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.declip import ClipHistogram, Declip, clip_levels
from audio_restorer.stages.registry import create_stage

RATE = 44100


def harmonic_tone(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Notes of a few harmonics with vibrato and decay, normalised to peak 1."""
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    for start in np.arange(0.0, seconds, 0.4):
        f0 = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        tt = np.clip(t - start, 0, None)
        on = t >= start
        vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * tt)
        for h in range(1, 6):
            out += on * (0.7 / h) * np.sin(2 * np.pi * f0 * h * tt * vib) * np.exp(-2.5 * tt)
    return out / np.max(np.abs(out))


@pytest.fixture(scope="module")
def tone():
    return harmonic_tone(3.0, np.random.default_rng(4))


def test_hard_clipping_is_found_and_rebuilt_consistently(tone):
    clipped = np.clip(tone, -0.5, 0.5).astype(np.float32)[None]
    stage = Declip()
    levels = stage.levels(clipped, None)
    assert np.allclose(levels, 0.5, rtol=2e-3)
    out = stage(clipped, RATE)
    mask = stage.clipped_mask(clipped, levels)
    # unclipped samples bit-exact, rebuilt ones beyond the level with the same sign
    assert np.array_equal(out[~mask], clipped[~mask])
    assert np.all(np.sign(out[mask]) == np.sign(clipped[mask]))
    assert np.all(np.abs(out[mask]) >= np.repeat(levels[:, :1], mask.sum()) - 1e-6)
    assert si_sdr(tone, out[0]) >= si_sdr(tone, clipped[0]) + 4.0


def test_clip_level_found_after_gain_and_mild_filtering(tone):
    clipped = np.clip(tone, -0.6, 0.6) * 0.3
    smooth = np.convolve(clipped, [0.05, 0.9, 0.05], mode="same").astype(np.float32)[None]
    levels = Declip().levels(smooth, None)
    assert np.all(levels > 0.15) and np.all(levels <= 0.18)


def test_unclipped_music_is_untouched(tone):
    x = (0.9 * tone).astype(np.float32)[None]
    stage = Declip()
    assert np.all(stage.levels(x, None) == 0)
    assert np.array_equal(stage(x, RATE), x)


def test_block_wise_equals_whole_file(tone):
    clipped = np.stack([np.clip(tone, -0.5, 0.4), np.clip(-tone, -0.45, 0.5)]).astype(np.float32)
    stage = Declip()
    hist = ClipHistogram(2)
    hist.update(clipped)
    analysis = hist.result()
    whole = stage.process(clipped, RATE, analysis=analysis)
    blocks = process_in_blocks(stage, clipped, RATE, 10007, analysis)
    assert blocks.shape == whole.shape
    assert np.array_equal(blocks, whole)
    assert np.isfinite(whole).all()
    assert np.array_equal(clip_levels(analysis, sensitivity=0.5) > 0, np.ones((2, 2), bool))


def test_fixed_clip_level_and_parameters():
    assert isinstance(create_stage("declip"), Declip)
    assert Declip.offers_removed
    stage = Declip(clip_level_db=-6.0)
    lv = stage.levels(np.zeros((1, 10), np.float32), None)
    assert np.allclose(lv, 10 ** (-6 / 20))
    with pytest.raises(ParameterError, match="max_run_ms"):
        Declip(max_run_ms=0.0)
