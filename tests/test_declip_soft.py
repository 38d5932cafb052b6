"""Soft clipping (tape/valve saturation) through the declip stage, and do-no-harm guards.

Soft clipping is not detected automatically yet (the amplitude histogram of a mildly
saturated signal does not depart measurably from that of a clean one: see
``docs/bench/declip.md``); with the knee given as ``clip_level_db`` the constrained rebuild
``sign(x) * y >= |x|`` is exactly right for it, since a compressive curve only reduces
magnitude. The guards check that densely loud but unclipped signals are left alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.evaluation.simulate import clip_soft
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.declip import Declip
from signals import vibrato_notes

RATE = 44100


@pytest.fixture(scope="module")
def music():
    return vibrato_notes(RATE, 3.0, np.random.default_rng(4))


def test_soft_clipping_with_the_knee_given_is_rebuilt_consistently(music):
    x = music[None].astype(np.float32)
    soft, _ = clip_soft(x, RATE, knee_db=-6.0, hardness=2.0)
    knee_db = 20 * float(np.log10(np.max(np.abs(x)))) - 6.0
    stage = Declip(clip_level_db=round(knee_db, 1))
    out = stage(soft, RATE)
    levels = stage.levels(soft, None)
    mask = stage.clipped_mask(soft, levels)
    assert 0.01 < mask.mean() < 0.2  # a real amount of saturation
    assert np.array_equal(out[~mask], soft[~mask])
    assert np.all(np.abs(out[mask]) >= np.abs(soft[mask]) - 1e-7)
    assert np.all(np.sign(out[mask]) == np.sign(soft[mask]))
    before, after = si_sdr(x[0], soft[0]), si_sdr(x[0], out[0])
    # measured 29.9 -> 38.5 dB; the input is left as it is without the knee (+0 dB)
    assert after >= before + 5.0
    blocks = process_in_blocks(stage, soft, RATE, 9973, None)
    assert np.array_equal(blocks, out)


@pytest.mark.parametrize("kind", ["laplacian", "sines"])
def test_loud_unclipped_signals_are_left_alone(kind):
    rng = np.random.default_rng(3)
    n = 3 * RATE
    if kind == "laplacian":
        # heavy-tailed, dense near zero: a compressed master's amplitude distribution
        x = rng.laplace(size=n)
    else:
        t = np.arange(n) / RATE
        f = rng.uniform(80, 4000, 12)
        x = np.sum(np.sin(2 * np.pi * f[:, None] * t + rng.uniform(0, 6, 12)[:, None]), 0)
    x = (0.98 * x / np.max(np.abs(x))).astype(np.float32)[None]
    stage = Declip()
    assert np.all(stage.levels(x, None) == 0)
    assert np.array_equal(stage(x, RATE), x)
