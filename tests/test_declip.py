"""Known-answer tests of the declip stage on seeded, hard- and softly-clipped signals."""

from __future__ import annotations

import numpy as np
import pytest

from audio_restorer.errors import ParameterError
from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.stages import _declip_lsar as _lsar
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.declip import ClipHistogram, Declip, clip_levels
from audio_restorer.stages.registry import create_stage
from signals import vibrato_notes

RATE = 44100


@pytest.fixture(scope="module")
def tone():
    return vibrato_notes(RATE, 3.0, np.random.default_rng(4))


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


# -- the high-order, tile-wise LSAR (issue 4: declip at -6 dB) ---------------------------------


def piano_chord(seconds: float, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Chords of three low piano-like notes: 30 slightly inharmonic partials, decaying."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = np.zeros(n)
    for start in np.arange(0.0, seconds, 0.5):
        tt = np.clip(t - start, 0, None)
        on = t >= start
        for f0 in 55.0 * 2 ** (rng.integers(0, 30, 3) / 12):
            for h in range(1, 31):
                f = f0 * h * np.sqrt(1 + 4e-4 * h * h)
                if f > 0.45 * rate:
                    break
                phase = rng.uniform(0, 2 * np.pi)
                out += on * np.sin(2 * np.pi * f * tt + phase) * np.exp(-(1.5 + 0.3 * h) * tt) / h
    return out / np.max(np.abs(out))


@pytest.fixture(scope="module")
def chord():
    return piano_chord(2.0, np.random.default_rng(2))


def test_lsar_fills_a_gap_in_a_sinusoid_exactly():
    # x[n] = 2 cos(w) x[n-1] - x[n-2]: a pure tone is predicted without error by this filter,
    # so the least-squares interpolation of a 20-sample gap is the tone itself
    n = 4000
    w = 2 * np.pi * 440 / RATE
    x = np.sin(w * np.arange(n) + 0.3)
    y = x.copy()
    y[1000:1020] = 0.0
    c = np.zeros((2, 9))
    c[:, :3] = [1.0, -2 * np.cos(w), 1.0]
    rc = _lsar.filter_acf(c)
    out = _lsar.solve_tiles(
        y,
        np.array([1000]),
        np.array([1020]),
        np.zeros(n),
        rc,
        offset=0,
        hop=2000,
        tile_len=1000,
        shift=0,
        frame0=0,
    )
    assert np.max(np.abs(out - x)) < 1e-6
    assert np.array_equal(out[:1000], x[:1000]) and np.array_equal(out[1020:], x[1020:])


def test_model_order_is_chosen_per_frame():
    rng = np.random.default_rng(5)
    n = 3 * 4096
    t = np.arange(n) / RATE
    freqs = rng.uniform(100, 8000, 60)
    tones = np.sum(np.sin(2 * np.pi * freqs[:, None] * t + rng.uniform(0, 6, 60)[:, None]), 0)
    noise = rng.standard_normal(n)
    x = np.stack([tones + 1e-3 * noise, noise])
    filt = _lsar.frame_models(x, offset=0, hop=2048, win=4096, candidates=(16, 32, 64, 128, 256))
    order = np.array([[np.flatnonzero(f)[-1] for f in ch[1:-1]] for ch in filt])
    assert np.all(order[0] >= 128)  # 60 partials need >= 120 poles
    assert np.all(order[1] == 16)  # white noise: the shortest filter


def test_piano_chord_clipped_at_minus_6_db_is_rebuilt_well(chord):
    clipped = np.clip(chord, -0.5, 0.5).astype(np.float32)[None]
    stage = Declip()
    out = stage(clipped, RATE)
    mask = stage.clipped_mask(clipped, stage.levels(clipped, None))
    assert 0.02 < mask.mean() < 0.06
    assert np.isfinite(out).all()
    assert np.array_equal(out[~mask], clipped[~mask])
    # consistent: each rebuilt sample at least as far out as the clipped one, same side
    assert np.all(out[mask] * np.sign(clipped[mask]) >= np.abs(clipped[mask]))
    assert np.count_nonzero(out[mask] != clipped[mask]) > 0.9 * mask.sum()
    # the order-32 LSAR of the previous version gained +4.7 dB here
    assert si_sdr(chord, out[0]) >= si_sdr(chord, clipped[0]) + 6.0


def test_stereo_equals_per_channel_and_blocks_at_another_rate(chord, tone):
    rate = 22050
    a = np.clip(chord[::2], -0.45, 0.5)
    b = np.clip(tone[: a.size], -0.5, 0.4)
    clipped = np.stack([a, b]).astype(np.float32)
    stage = Declip()
    hist = ClipHistogram(2)
    hist.update(clipped)
    whole = stage.process(clipped, rate, analysis=hist.result())
    for c in range(2):
        h1 = ClipHistogram(1)
        h1.update(clipped[c : c + 1])
        alone = stage.process(clipped[c : c + 1], rate, analysis=h1.result())
        assert np.array_equal(alone[0], whole[c])
    blocks = process_in_blocks(stage, clipped, rate, 7919, hist.result())
    assert np.array_equal(blocks, whole)


def test_heavy_clipping_stays_consistent_and_improves(tone):
    clipped = np.clip(tone, -0.3, 0.3).astype(np.float32)[None]
    stage = Declip()
    out = stage(clipped, RATE)
    mask = stage.clipped_mask(clipped, stage.levels(clipped, None))
    assert mask.mean() > 0.15
    assert np.isfinite(out).all()
    assert np.array_equal(out[~mask], clipped[~mask])
    assert np.all(out[mask] * np.sign(clipped[mask]) >= np.abs(clipped[mask]))
    assert si_sdr(tone, out[0]) >= si_sdr(tone, clipped[0]) + 3.0


def test_runs_beyond_the_limit_and_edge_cases_are_left_alone():
    stage = Declip(clip_level_db=-6.0)
    lvl = np.float32(10 ** (-6 / 20))
    # a square wave: every run is half a period (10 ms), longer than max_run_ms
    square = np.sign(np.sin(2 * np.pi * 50 * np.arange(RATE) / RATE)).astype(np.float32) * lvl
    assert np.array_equal(stage(square[None], RATE), square[None])
    # digital silence with a few isolated full-scale samples: rebuilt, finite, consistent
    x = np.zeros((1, RATE // 2), np.float32)
    x[0, [1000, 5000, 5001, 9000]] = [lvl, -lvl, -lvl, lvl]
    out = stage(x, RATE)
    assert np.isfinite(out).all()
    assert np.all(np.abs(out[0, [1000, 5000, 5001, 9000]]) >= lvl)
    assert np.array_equal(out[0, x[0] == 0], x[0, x[0] == 0])
    # too short to model
    short = np.full((2, 100), lvl, np.float32)
    assert np.array_equal(stage(short, RATE), short)
