"""Wow & flutter: known speed curves recovered, length kept, block-wise == whole, vibrato."""

from __future__ import annotations

import numpy as np
import pytest

from _time_signals import make_clip, speed_curve
from audio_restorer.errors import ParameterError
from audio_restorer.stages._timewarp import read_at
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.wowflutter import CENTS, WowFlutter

RATE = 22050
WOW_FLUTTER = [(0.55, 0.003, 0.3), (6.0, 0.001, 1.0)]  # 78 rpm eccentricity + 6 Hz flutter


def _analyse(stage: WowFlutter, audio: np.ndarray):
    analyzer = stage.analyzer(RATE, audio.shape[0])
    for i in range(0, audio.shape[1], 10000):
        analyzer.update(audio[:, i : i + 10000])
    return analyzer.result()


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


@pytest.fixture(scope="module")
def warped_clip():
    return make_clip(6.0, RATE, WOW_FLUTTER, seed=3, voices=3)


def test_known_speed_curve_is_recovered(warped_clip):
    _, warped = warped_clip
    tm = _analyse(WowFlutter(), warped)
    t = np.arange(tm.correction_cents.size) * tm.hop_s
    true = np.log(speed_curve(t, WOW_FLUTTER)) * CENTS
    core = slice(50, -50)
    err = tm.correction_cents[core] - (true - true.mean())[core]
    assert _rms(true) > 3.5
    assert _rms(err) < 0.7 * _rms(true)
    assert np.corrcoef(tm.correction_cents[core], true[core])[0, 1] > 0.8


def test_residual_deviation_after_correction_is_small(warped_clip):
    _, warped = warped_clip
    stage = WowFlutter()
    out = stage(warped, RATE)
    assert out.shape == warped.shape  # length kept
    assert np.isfinite(out).all()
    before = _analyse(WowFlutter(vibrato_protection=0.0), warped).correction_cents[50:-50]
    after = _analyse(WowFlutter(vibrato_protection=0.0), out).correction_cents[50:-50]
    assert _rms(after) < 0.6 * _rms(before)
    assert _rms(after) < 3.0


def test_blockwise_equals_whole(warped_clip):
    _, warped = warped_clip
    stage = WowFlutter()
    tm = _analyse(stage, warped)
    whole = stage.process(warped, RATE, analysis=tm)
    blocks = process_in_blocks(stage, warped, RATE, 30001, tm)
    np.testing.assert_allclose(blocks, whole, atol=1e-5)


def test_steady_music_gets_only_a_small_correction():
    # The tracker's false wander on steady music stays well below audibility (a few cents).
    # NOTE: the "SI-SDR loss < 0.5 dB" is NOT met yet: sub-millisecond time shifts
    # from that wander already cost SI-SDR; see docs/bench/time.md.
    clean, _ = make_clip(5.0, RATE, [(1.0, 0.0, 0.0)], seed=4, voices=3)
    noisy = clean + 0.01 * np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    tm = _analyse(WowFlutter(), noisy)
    assert _rms(tm.correction_cents[50:-50]) < 2.5
    out = WowFlutter().process(noisy, RATE, analysis=tm)
    assert out.shape == noisy.shape


def _fast(cents: np.ndarray) -> np.ndarray:
    from scipy import signal

    sos = signal.butter(4, 3.0, "highpass", fs=100.0, output="sos")
    return signal.sosfiltfilt(sos, cents)[50:-50]


def test_vibrato_on_some_notes_is_protected():
    clean, _ = make_clip(6.0, RATE, [(1.0, 0.0, 0.0)], seed=5, voices=1, vibrato_notes=0.3)
    spared = _analyse(WowFlutter(vibrato_protection=1.0), clean).correction_cents
    naive = _analyse(WowFlutter(vibrato_protection=0.0), clean).correction_cents
    assert _rms(_fast(spared)) < 0.7 * _rms(_fast(naive))


def test_interpolator_reads_band_limited_values():
    t = np.arange(4000) / RATE
    x = np.sin(2 * np.pi * 1234.5 * t).astype(np.float32)[None]
    pos = np.linspace(100.0, 3800.0, 777)
    expected = np.sin(2 * np.pi * 1234.5 * pos / RATE)
    np.testing.assert_allclose(read_at(x, pos)[0], expected, atol=2e-3)


def test_process_needs_its_analysis():
    with pytest.raises(ParameterError, match="analysis"):
        WowFlutter().process(np.zeros((1, 100), np.float32), RATE)


def test_crepe_engine_tracks_wow():
    pytest.importorskip("torch")
    comp = [(0.75, 0.004, 0.0)]
    _, warped = make_clip(2.5, RATE, comp, seed=1, voices=1)
    tm = _analyse(WowFlutter(engine="crepe", model="tiny"), warped)
    t = np.arange(tm.correction_cents.size) * tm.hop_s
    true = np.log(speed_curve(t, comp)) * CENTS
    core = slice(30, -30)
    assert np.corrcoef(tm.correction_cents[core], true[core])[0, 1] > 0.7
