"""Tests of the dehum stage: mains decision and tracking on seeded synthetic hum, removal depth,
music preservation, DC/rumble filter, and the invariants (block-wise == whole, no NaN)."""

from __future__ import annotations

import numpy as np
import pytest

from audio_restorer.errors import ParameterError
from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.dehum import Dehum, HumAnalysis
from audio_restorer.stages.registry import get_stage_class

RATE = 22050
HARMONICS = ((1, 1.0), (2, 0.5), (3, 0.6), (5, 0.25))


def music(seconds: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """Notes of a harmonic tone with vibrato (some near hum harmonics), float64 (frames,)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    t0 = 0.0
    while t0 < seconds - 0.3:
        dur = rng.uniform(0.3, 0.8)
        f = rng.choice([98.0, 110.0, 146.8, 196.0, 246.9, 293.7])
        idx = np.arange(int(t0 * rate), min(n, int((t0 + dur) * rate)))
        t = (idx - idx[0]) / rate
        ph = 2 * np.pi * np.cumsum(f * (1 + 0.005 * np.sin(2 * np.pi * 5 * t))) / rate
        env = np.exp(-3 * t) * np.minimum(1.0, t / 0.01)
        out[idx] += env * sum(np.sin(k * ph) / k for k in range(1, 7))
        t0 += dur
    return 0.3 * out / np.max(np.abs(out))


def hum(n: int, mains: float, drift_hz: float = 0.0, rate: int = RATE) -> tuple:
    """Hum with harmonics 1, 2, 3, 5 whose fundamental drifts linearly by ``drift_hz``."""
    f0 = mains + drift_hz * np.linspace(-0.5, 0.5, n)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(a * np.cos(h * phase + 0.7 * h) for h, a in HARMONICS)
    return x / np.sqrt(np.mean(x**2)), f0


def at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    return noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))


def analyse(stage: Dehum, audio: np.ndarray) -> HumAnalysis:
    an = stage.analyzer(RATE, audio.shape[0])
    an.update(audio)
    return an.result()


def test_registered():
    assert get_stage_class("dehum") is Dehum
    assert Dehum.offers_removed


def test_bad_mains_choice():
    with pytest.raises(ParameterError, match="mains"):
        Dehum(mains="55")


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_detects_mains_and_harmonics_and_tracks_drift(mains):
    m = music(6.0, seed=1)
    h, f0 = hum(m.size, mains, drift_hz=0.3)
    audio = np.stack([m + at_snr(m, h, 15.0)]).astype(np.float32)
    res = analyse(Dehum(), audio)
    assert res.mains_hz == mains
    assert {1, 2, 3} <= set(res.harmonics)  # the weak 5th is masked by notes in some windows
    assert 4 not in res.harmonics
    assert np.max(np.abs(res.track_error(f0, RATE))) < 0.05


def test_removes_hum_deeply_and_spares_the_music():
    m = music(6.0, seed=2)
    h, _ = hum(m.size, 50.0, drift_hz=0.1)
    h = at_snr(m, h, 10.0)
    noisy = np.stack([m + h]).astype(np.float32)
    stage = Dehum()
    res = analyse(stage, noisy)
    # given the analysis (and the steering signal) the removal is linear: split the output
    hum_left = h - stage.hum(h[None], RATE, res, steer=noisy)[0]
    music_left = m - stage.hum(m[None], RATE, res, steer=noisy)[0]
    mid = slice(RATE, -RATE)
    attenuation = 10 * np.log10(np.sum(h[mid] ** 2) / np.sum(hum_left[mid] ** 2))
    music_sdr = 10 * np.log10(np.sum(m**2) / np.sum((m - music_left) ** 2))
    assert attenuation > 35.0
    # the notes include G2 = 98 Hz and D3 = 146.8 Hz, 2-3 Hz from hum lines, with 10 ms
    # attacks whose spectra reach the lines: some of that is taken with the hum
    assert music_sdr > 20.0
    out = stage.process(noisy, RATE, analysis=res)
    assert si_sdr(m[None], out) - si_sdr(m[None], noisy) > 9.0


def test_no_hum_means_no_change():
    m = np.stack([music(4.0, seed=3), music(4.0, seed=4)]).astype(np.float32)
    res = analyse(Dehum(), m)
    assert res.mains_hz is None
    assert np.array_equal(Dehum()(m, RATE), m)


def test_forced_mains_and_harmonic_count():
    m = music(4.0, seed=5)
    h, _ = hum(m.size, 60.0)
    audio = np.stack([m + at_snr(m, h, 20.0)]).astype(np.float32)
    res = analyse(Dehum(mains="60", harmonics=6), audio)
    assert res.mains_hz == 60.0 and res.harmonics == (1, 2, 3, 4, 5, 6)


def test_dc_and_rumble_filter():
    t = np.arange(3 * RATE) / RATE
    rumble = 0.2 * np.sin(2 * np.pi * 8 * t)
    tone = 0.2 * np.sin(2 * np.pi * 1000 * t)
    audio = np.stack([0.1 + rumble + tone]).astype(np.float32)
    out = Dehum(remove_dc=True, rumble_hz=40.0)(audio, RATE)[0]
    mid = slice(RATE // 2, -RATE // 2)
    assert abs(np.mean(out[mid])) < 1e-3
    left = out[mid] - tone[mid]
    assert 10 * np.log10(np.sum(rumble[mid] ** 2) / np.sum(left**2)) > 20.0
    assert si_sdr(tone[None, mid], out[None, mid]) > 30.0


@pytest.mark.parametrize(
    ("drift", "seconds", "bandwidth"), [(0.0, 7.0, 0.05), (0.6, 7.0, 0.05), (0.1, 16.0, 0.5)]
)
def test_blockwise_equals_whole_file(drift, seconds, bandwidth):
    # the default context (~40 s) exceeds a short test file; with a 0.5 Hz average it is ~6 s,
    # so the 16 s file is really cut into windows whose contexts are shorter than the file
    m = music(seconds, seed=6)
    h, _ = hum(m.size, 50.0, drift_hz=drift)
    audio = np.stack([m + at_snr(m, h, 12.0), 0.5 * m + at_snr(m, h, 15.0)]).astype(np.float32)
    stage = Dehum(remove_dc=True, bandwidth_hz=bandwidth)
    if seconds > 10:
        assert stage.context_frames(RATE) < audio.shape[1] / 2
    an = stage.analyzer(RATE, 2)
    for i in range(0, audio.shape[1], 5003):  # analysis fed in odd blocks too
        an.update(audio[:, i : i + 5003])
    res = an.result()
    whole = stage.process(audio, RATE, analysis=res)
    stage.preferred_block_frames = lambda rate: 8820  # force many windows
    blocks = process_in_blocks(stage, audio, RATE, 10_007, res)
    assert blocks.shape == whole.shape
    assert np.max(np.abs(blocks - whole)) < 1e-5
    assert np.isfinite(blocks).all()


def test_analysis_blockwise_equals_whole():
    m = music(5.0, seed=7)
    h, _ = hum(m.size, 60.0, drift_hz=0.2)
    audio = np.stack([m + at_snr(m, h, 12.0)]).astype(np.float32)
    a = analyse(Dehum(), audio)
    an = Dehum().analyzer(RATE, 1)
    for i in range(0, audio.shape[1], 3001):
        an.update(audio[:, i : i + 3001])
    b = an.result()
    assert a.harmonics == b.harmonics
    assert np.array_equal(a.f0, b.f0) and np.array_equal(a.knots, b.knots)


@pytest.mark.parametrize("frames", [0, 50, 4000])
def test_short_and_silent_input(frames):
    audio = np.zeros((1, frames), dtype=np.float32)
    out = Dehum(remove_dc=True)(audio, RATE)
    assert out.shape == audio.shape and np.isfinite(out).all()


def test_weak_phase_locked_harmonic_is_removed_and_music_lines_are_not():
    """A weak 4th harmonic (20 % of the fundamental's amplitude, below the prominence rule) is
    found by its phase lock to the hum series; harmonics where only music lives stay
    incoherent (notes away from the hum lines: C3, E3, A3 with vibrato)."""
    rng = np.random.default_rng(7)
    n = 10 * RATE
    t = np.arange(n) / RATE
    m = np.zeros(n)
    for start in np.arange(0.0, 9.6, 0.4):
        f = rng.choice([130.8, 164.8, 220.0, 261.6])
        idx = np.arange(int(start * RATE), int((start + 0.4) * RATE))
        tt = t[idx] - start
        ph = 2 * np.pi * np.cumsum(f * (1 + 0.004 * np.sin(2 * np.pi * 5 * tt))) / RATE
        m[idx] += np.exp(-2 * tt) * sum(np.sin(k * ph) / k for k in range(1, 6))
    m *= 0.3 / np.max(np.abs(m))
    f0 = 50.0 + 0.08 * np.sin(2 * np.pi * t / 9.0)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = np.cos(phase) + 0.5 * np.cos(2 * phase + 1.0) + 0.6 * np.cos(3 * phase + 2.0)
    h = at_snr(m, x, 20.0)
    weak = 0.2 * np.cos(4 * phase + 0.3) * h.std() / x.std()
    audio = np.stack([m + h + weak]).astype(np.float32)
    res = analyse(Dehum(), audio)
    assert res.mains_hz == 50.0
    assert res.prominence_db[3] < 12.0 and res.prominence_db[1] < 12.0  # not "strong"
    assert res.coherence[3] > 0.5
    assert 4 in res.harmonics
    assert np.median(res.coherence[6:20]) < 0.3
    out = Dehum()(audio, RATE)[0].astype(np.float64)
    z = np.exp(-1j * 4 * phase)
    before = abs(np.mean((audio[0] - m) * z))
    after = abs(np.mean((out - m) * z))
    assert after < 0.2 * before


def test_sieve_without_any_agreeing_peak_finds_no_fundamental():
    # a prominent peak that is no multiple of any candidate near 50 Hz: no hum (it used to
    # return NaN, which crashed the analysis of a long 96 kHz file)
    from audio_restorer.stages.dehum import _sieve

    hs = np.arange(1.0, 4.0)
    freqs = np.array([np.nan, np.nan, 170.0])
    proms = np.array([0.0, 0.0, 30.0])
    assert _sieve(freqs, proms, hs, 50.0, 1.0) is None


def bass_and_drums(seconds: float, seed: int) -> np.ndarray:
    """A hand-played kick drum (a sine falling from ~90 to 40-48 Hz, irregular spacing) and a
    bass line (E1, A1, D2, E2 with partials): loud at the hum frequencies most of the time."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n)
    start = 0.0
    while start < seconds - 0.3:
        i0 = int(start * RATE)
        tt = np.arange(min(n - i0, int(0.4 * RATE))) / RATE
        low = rng.uniform(40.0, 48.0)
        f = low + low * np.exp(-tt / rng.uniform(0.02, 0.05))
        decay = np.exp(-tt / rng.uniform(0.08, 0.2))
        out[i0 : i0 + tt.size] += rng.uniform(0.6, 1.0) * decay * np.sin(np.cumsum(f) * TAU)
        start += rng.choice([0.25, 0.5, 0.75]) + rng.normal(0.0, 0.015)
    t0 = 0.0
    while t0 < seconds - 0.3:
        dur = rng.choice([0.5, 1.0])
        f = rng.choice([41.2, 55.0, 73.4, 82.4])
        idx = np.arange(int(t0 * RATE), min(n, int((t0 + dur) * RATE)))
        tt = (idx - idx[0]) / RATE
        env = 0.6 * np.exp(-2 * tt) * np.minimum(1.0, tt / 0.01)
        out[idx] += env * sum(np.sin(k * f * RATE * tt * TAU) / k**1.5 for k in range(1, 5))
        t0 += dur
    return 0.5 * out / np.max(np.abs(out))


TAU = 2 * np.pi / RATE


@pytest.mark.parametrize(("seed", "mains"), [(0, 50.0), (0, 60.0), (1, 60.0)])
def test_hum_under_bass_is_found_by_its_phase(seed, mains):
    """Under a kick drum and a bass line the hum lines never stand out in the 2 s spectra
    (prominence 0 on the fundamental); between the beats they are alone, and the phase-tracking
    second opinion finds them, decides 50 or 60 Hz, and the removal gains several dB."""
    m = bass_and_drums(12.0, seed)
    h, _ = hum(m.size, mains, drift_hz=0.1)
    audio = np.stack([m + at_snr(m, h, 25.0)]).astype(np.float32)
    res = analyse(Dehum(), audio)
    assert res.weak and res.mains_hz == mains
    assert res.prominence_db[0] < 12.0
    out = Dehum()(audio, RATE)[0].astype(np.float64)
    assert si_sdr(m, out) - si_sdr(m, audio[0]) > 5.0
    # the same analysis block by block
    an = Dehum().analyzer(RATE, 1)
    for i in range(0, audio.shape[1], 7919):
        an.update(audio[:, i : i + 7919])
    b = an.result()
    assert b.weak and np.array_equal(b.f0, res.f0) and np.array_equal(b.knots, res.knots)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bass_and_drums_without_hum_are_left_alone(seed):
    audio = np.stack([bass_and_drums(12.0, seed)]).astype(np.float32)
    assert analyse(Dehum(), audio).mains_hz is None
    assert np.array_equal(Dehum()(audio, RATE), audio)


def test_a_lone_held_note_on_a_high_harmonic_is_not_taken_for_hum():
    """A note held through the file 0.1 Hz from 11 x 60 Hz stands out like a hum line and keeps
    its phase; alone far above the hum's series it is taken for music, and kept. A buzz whose
    harmonics run on up to the 15th is removed whole."""
    m = music(12.0, seed=3)
    t = np.arange(m.size) / RATE
    note = 0.05 * np.sin(2 * np.pi * 660.1 * t) * np.minimum(1.0, t / 0.05)
    h, f0 = hum(m.size, 60.0, drift_hz=0.05)
    audio = np.stack([m + note + at_snr(m, h, 20.0)]).astype(np.float32)
    res = analyse(Dehum(), audio)
    assert res.mains_hz == 60.0 and res.prominence_db[10] >= 12.0  # it does stand out
    assert 11 not in res.harmonics
    out = Dehum()(audio, RATE)[0].astype(np.float64)
    z = np.exp(-2j * np.pi * 660.1 * t)
    assert abs(np.mean(out * z)) > 0.9 * abs(np.mean(note * z))

    phase = 2 * np.pi * np.cumsum(f0) / RATE
    buzz = sum(np.cos(k * phase + k) / k for k in range(1, 16))
    audio = np.stack([m + at_snr(m, buzz, 20.0)]).astype(np.float32)
    assert set(range(7, 13)) <= set(analyse(Dehum(), audio).harmonics)
