"""Known-answer tests of the quality metrics."""

from __future__ import annotations

import numpy as np
import pytest

from audio_restorer.errors import ParameterError
from audio_restorer.evaluation import metrics as M  # noqa: N812

RATE = 22050


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _orthogonal_noise(ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(ref.shape)
    noise -= noise.mean(axis=-1, keepdims=True)
    r = ref - ref.mean(axis=-1, keepdims=True)
    return noise - r * (np.sum(noise * r) / np.sum(r * r))


@pytest.mark.parametrize("target_db", [-5.0, 0.0, 12.0, 30.0])
def test_si_sdr_matches_the_analytic_ratio(rng, target_db):
    ref = rng.standard_normal((2, 8000))
    noise = _orthogonal_noise(ref, rng)
    r = ref - ref.mean(axis=-1, keepdims=True)
    noise *= np.sqrt(np.sum(r * r) / np.sum(noise * noise) / 10 ** (target_db / 10))
    # scaling the estimate must not change SI-SDR
    est = 0.37 * (ref + noise)
    assert M.si_sdr(ref, est) == pytest.approx(target_db, abs=1e-6)
    assert M.si_sdr_improvement(ref, ref + 3 * noise, est) == pytest.approx(
        20 * np.log10(3), abs=1e-6
    )


def test_snr_penalises_gain_but_si_sdr_does_not(rng):
    ref = rng.standard_normal(4000)
    assert M.snr(ref, 0.5 * ref) == pytest.approx(20 * np.log10(2), abs=1e-9)
    assert M.si_sdr(ref, 0.5 * ref) > 100


def test_metrics_reject_mismatched_or_silent_input():
    with pytest.raises(ParameterError, match="shapes differ"):
        M.si_sdr(np.ones(10), np.ones(11))
    with pytest.raises(ParameterError, match="silent"):
        M.snr(np.zeros(10), np.ones(10))


def test_log_spectral_distance_of_a_known_gain(rng):
    ref = rng.standard_normal((1, RATE))
    assert M.log_spectral_distance(ref, ref, RATE) == pytest.approx(0.0, abs=1e-9)
    # a broadband gain of 6 dB moves every bin by 6.02 dB (up to the floor, far below)
    assert M.log_spectral_distance(ref, 2 * ref, RATE) == pytest.approx(6.0206, abs=1e-3)


def test_click_detection_counts_events_with_tolerance():
    truth = np.zeros(1000, bool)
    truth[[100, 101, 102]] = True  # one 3-sample click
    truth[500:520] = True  # one 20-sample click
    truth[800] = True  # one missed click
    found = np.zeros(1000, bool)
    found[104] = True  # within tolerance of the first
    found[510] = True  # inside the second
    found[300] = True  # a false alarm
    score = M.click_detection(truth, found, tolerance=4)
    assert (score.true_positives, score.false_positives, score.false_negatives) == (2, 1, 1)
    assert score.precision == pytest.approx(2 / 3)
    assert score.recall == pytest.approx(2 / 3)
    strict = M.click_detection(truth, found, tolerance=0)
    assert strict.recall == pytest.approx(1 / 3)


def test_changed_samples_finds_what_a_system_changed(rng):
    x = 0.01 * rng.standard_normal((1, 5000))
    fixed = x.copy()
    fixed[0, 1000:1010] += 0.3
    mask = M.changed_samples(x, fixed)
    assert mask[0, 1000:1010].all() and mask.sum() == 10


def test_hum_level_of_a_pure_tone():
    t = np.arange(2 * RATE) / RATE
    tone = 0.1 * np.sin(2 * np.pi * 50 * t + 0.3)
    assert M.hum_level_db(tone, RATE, 50.0) == pytest.approx(10 * np.log10(0.005), abs=0.05)
    # relative to a reference: hum 0.01 amplitude on a 0.5 amplitude 440 Hz tone
    music = 0.5 * np.sin(2 * np.pi * 440 * t)
    hum = 0.01 * np.sin(2 * np.pi * 60 * t)
    level = M.hum_level_db(music + hum, RATE, 60.0, reference=music)
    assert level == pytest.approx(20 * np.log10(0.01 / 0.5), abs=0.1)
    assert M.hum_level_db(music, RATE, 60.0, reference=music) < -200
    # broadband noise 20 dB above the hum does not read as hum
    noise = 0.1 * np.random.default_rng(3).standard_normal(t.size)
    noisy = M.hum_level_db(music + hum + noise, RATE, 60.0, reference=music)
    assert noisy == pytest.approx(20 * np.log10(0.01 / 0.5), abs=1.5)


def test_pitch_deviation_of_a_known_fm_sine():
    rate = 22050
    t = np.arange(3 * rate) / rate
    f0, depth_cents = 330.0, 20.0
    inst = f0 * 2 ** (depth_cents / 1200 * np.sin(2 * np.pi * 1.5 * t))
    fm = np.sin(2 * np.pi * np.cumsum(inst) / rate)
    steady = np.sin(2 * np.pi * f0 * t)
    measured = M.pitch_deviation_cents(steady, fm, rate)
    assert measured == pytest.approx(depth_cents / np.sqrt(2), rel=0.1)
    assert M.pitch_deviation_cents(steady, steady, rate) < 0.05


def test_pitch_deviation_tracks_flutter_on_a_harmonic_tone():
    from audio_restorer.evaluation.simulate import wow_flutter

    rate = 22050
    t = np.arange(3 * rate) / rate
    tone = sum(np.sin(2 * np.pi * k * 196 * t) / k for k in range(1, 9))
    clean = (0.2 * tone)[None].astype(np.float32)
    warped, info = wow_flutter(
        clean,
        rate,
        rng=np.random.default_rng(0),
        wow_percent=0.0,
        flutter_percent=0.15,
        flutter_hz=8.0,
        random_percent=0.0,
    )
    truth = 1200 * np.log2(info["speed"])
    expected = float(np.sqrt(np.mean((truth - np.median(truth)) ** 2)))
    assert M.pitch_deviation_cents(clean, warped, rate) == pytest.approx(expected, rel=0.1)


def test_speech_metrics_rank_clean_above_noisy(rng):
    pytest.importorskip("pystoi")
    rate = 16000
    t = np.arange(3 * rate) / rate
    # speech-like: harmonic voice with syllabic (4 Hz) amplitude modulation
    voice = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 20))
    voice *= 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    noisy = voice + 0.5 * np.std(voice) * rng.standard_normal(t.size)
    assert M.stoi_score(voice, voice, rate) > 0.99
    assert M.stoi_score(voice, noisy, rate) < M.stoi_score(voice, voice, rate) - 0.05
