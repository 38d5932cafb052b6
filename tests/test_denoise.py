"""Tests of the denoise stage: known-answer quality floors on seeded signals, the noise
estimate, invariants (length, block-wise == whole, per-channel, determinism, no NaN)."""

from __future__ import annotations

import numpy as np
import pytest

from audio_restorer.errors import ParameterError
from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.denoise import Denoise, NoiseAnalysis
from audio_restorer.stages.registry import get_stage_class

RATE = 22050


def tone(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Music-like test signal: notes of a harmonic tone with vibrato and decays, separated by
    short pauses, after a 1 s lead-in of silence. float64 (frames,)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    t0 = 1.0
    while t0 < seconds - 0.3:
        dur = rng.uniform(0.4, 0.9)
        f = rng.choice([196.0, 220.0, 261.6, 329.6, 392.0])
        idx = np.arange(int(t0 * rate), min(n, int((t0 + dur) * rate)))
        t = (idx - idx[0]) / rate
        inst = f * (1 + 0.006 * np.sin(2 * np.pi * 5.5 * t))
        ph = 2 * np.pi * np.cumsum(inst) / rate
        env = np.exp(-t * 2.5) * np.minimum(1.0, t / 0.01)
        out[idx] += env * sum(np.sin(k * ph) / k for k in range(1, 9))
        t0 += dur + rng.uniform(0.05, 0.2)
    return 0.3 * out / np.max(np.abs(out))


def white(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def shellac(n: int, seed: int, rate: int = RATE) -> np.ndarray:
    """Band-limited (0.5-5 kHz) noise with a 1.3 Hz rotation modulation."""
    w = np.random.default_rng(seed).standard_normal(n)
    f = np.maximum(np.fft.rfftfreq(n, 1 / rate), 1.0)
    shape = 1.0 / (1 + (500.0 / f) ** 4) / (1 + (f / 5000.0) ** 2)
    band = np.fft.irfft(np.fft.rfft(w) * shape, n=n)
    t = np.arange(n) / rate
    return band * (1.0 + 0.3 * np.sin(2 * np.pi * 1.3 * t))


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    g = np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return clean + g * noise


def as_audio(*chans: np.ndarray) -> np.ndarray:
    return np.stack(chans).astype(np.float32)


def test_registered_and_offers_removed():
    assert get_stage_class("denoise") is Denoise
    assert Denoise.offers_removed


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [(1.0, None, "together"), (None, 2.0, "together"), (2.0, 1.0, "after")],
)
def test_profile_range_must_be_complete_and_ordered(start, end, match):
    with pytest.raises(ParameterError, match=match):
        Denoise(profile_start_s=start, profile_end_s=end)


@pytest.mark.parametrize(("snr", "floor"), [(10.0, 9.0), (20.0, 8.0)])
def test_white_noise_improvement_floor(snr, floor):
    clean = tone(4.0)
    noisy = as_audio(mix(clean, white(clean.size, 1), snr))
    ref = as_audio(clean)
    out = Denoise()(noisy, RATE)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert si_sdr(ref, out) - si_sdr(ref, noisy) >= floor


def test_shellac_noise_improvement_floor():
    clean = tone(4.0, seed=3)
    noisy = as_audio(mix(clean, shellac(clean.size, 2), 10.0))
    ref = as_audio(clean)
    gain = si_sdr(ref, Denoise()(noisy, RATE)) - si_sdr(ref, noisy)
    assert gain >= 7.0


def test_automatic_estimate_matches_true_noise_spectrum():
    clean = tone(4.0)
    noise = 0.02 * shellac(clean.size, 5)
    noisy = as_audio(clean + noise)
    stage = Denoise()
    an = stage.analyzer(RATE, 1)
    an.update(noisy)
    est = an.result()
    assert est.source == "auto"
    truth = stage.analyzer(RATE, 1)
    truth.update(as_audio(noise))
    true_base = truth.result().base
    band = slice(40, 200)  # ~430 Hz to 2.1 kHz at 22.05 kHz / 1024 points
    err_db = 10 * np.log10(est.base[0, band] / true_base[0, band])
    assert abs(np.median(err_db)) < 1.5


def test_user_profile_is_used():
    clean = tone(4.0)
    noisy = as_audio(mix(clean, white(clean.size, 7), 10.0))
    stage = Denoise(profile_start_s=0.1, profile_end_s=0.9)
    an = stage.analyzer(RATE, 1)
    an.update(noisy)
    res = an.result()
    assert res.source == "profile"
    noise_power = np.mean((noisy[0, :RATE] - clean[:RATE]) ** 2)
    # white noise through the sqrt-Hann window: E|X|^2 = sigma^2 * n_fft / 2
    expected = noise_power * 1024 / 2
    assert abs(10 * np.log10(np.median(res.base[0, 5:-5]) / expected)) < 0.5


def test_tracker_follows_drifting_noise():
    n = 8 * RATE
    ramp = 10 ** (np.linspace(0.0, 6.0, n) / 20)  # noise rises by 6 dB
    noisy = as_audio(0.01 * white(n, 9) * ramp)
    an = Denoise().analyzer(RATE, 1)
    an.update(noisy)
    drift_db = 10 * np.log10(an.result().drift[:, 0])
    assert drift_db[-2] - drift_db[1] > 3.0
    flat = Denoise(track_drift=False).analyzer(RATE, 1)
    flat.update(noisy)
    assert np.all(flat.result().drift == 1.0)


def test_reduction_limit_lowers_noise_without_gating():
    noisy = as_audio(0.05 * white(3 * RATE, 11))
    for limit in (6.0, 18.0):
        out = Denoise(reduction_db=limit)(noisy, RATE)
        mid = slice(RATE // 2, -RATE // 2)
        drop = 10 * np.log10(np.mean(noisy[:, mid] ** 2) / np.mean(out[:, mid] ** 2))
        assert limit - 2.0 < drop < limit + 1.0


def test_do_no_harm_on_clean_input():
    # digital silence, then quiet and loud notes with no noise floor: nothing is noise-only,
    # so the stage must leave the audio untouched (the old "quietest second" rule did not)
    clean = as_audio(tone(4.0, seed=4) * np.linspace(0.05, 1.0, 4 * RATE))
    an = Denoise().analyzer(RATE, 1)
    an.update(clean)
    assert an.result().source == "none"
    assert np.array_equal(Denoise()(clean, RATE), clean)


def dense(seconds: float, seed: int) -> np.ndarray:
    """Overlapping harmonic notes with no pauses, after a 0.5 s silent lead-in."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n)
    t = np.arange(n) / RATE
    for start in np.arange(0.5, seconds - 0.2, 0.25):
        f = rng.uniform(150.0, 600.0)
        env = np.exp(-(t - start) * 1.5) * (t >= start)
        out += env * sum(np.sin(2 * np.pi * k * f * t + k) / k for k in range(1, 7))
    return 0.3 * out / np.max(np.abs(out))


@pytest.mark.parametrize("snr", [20.0, 30.0])
def test_low_noise_under_continuous_music(snr):
    # the noise is found in the 0.5 s lead-in, not in the quietest (musical) seconds: even a
    # low floor is lowered, and the music is not eaten
    clean = dense(4.0, seed=8)
    noisy = as_audio(mix(clean, white(clean.size, 13), snr))
    ref = as_audio(clean)
    an = Denoise().analyzer(RATE, 1)
    an.update(noisy)
    assert an.result().source == "auto"
    gain = si_sdr(ref, Denoise()(noisy, RATE)) - si_sdr(ref, noisy)
    assert gain >= 4.0


def test_blockwise_equals_whole_file():
    clean = tone(5.0)
    noisy = as_audio(mix(clean, white(clean.size, 12), 15.0), 0.5 * clean)
    stage = Denoise()
    an = stage.analyzer(RATE, 2)
    for i in range(0, noisy.shape[1], 7777):  # the analysis is fed in blocks too
        an.update(noisy[:, i : i + 7777])
    res = an.result()
    whole = stage(noisy, RATE)
    stage.preferred_block_frames = lambda rate: 8192  # force many windows
    blocks = process_in_blocks(stage, noisy, RATE, 10_001, res)
    assert blocks.shape == whole.shape
    assert np.max(np.abs(blocks - whole)) < 1e-5


def test_stereo_shares_the_music_and_is_deterministic():
    # the same music in both channels (one 70 % as loud) under independent hiss: the joint
    # (whitened principal-axis) path beats denoising each channel alone
    clean = tone(4.0)
    a = mix(clean, white(clean.size, 20), 10.0)
    b = mix(0.7 * clean, white(clean.size, 21), 8.0)
    stereo = as_audio(a, b)
    ref = as_audio(clean, 0.7 * clean)
    out = Denoise()(stereo, RATE)
    alone = np.concatenate([Denoise()(as_audio(a), RATE), Denoise()(as_audio(b), RATE)])
    assert Denoise().analyze(stereo, RATE).joint is not None
    assert si_sdr(ref, out) > si_sdr(ref, alone) + 1.0
    assert np.array_equal(out, Denoise()(stereo, RATE))
    # block-wise equals whole on the joint path too
    stage = Denoise()
    res = stage.analyze(stereo, RATE)
    stage.preferred_block_frames = lambda rate: 8192
    blocks = process_in_blocks(stage, stereo, RATE, 10_001, res)
    assert np.max(np.abs(blocks - out)) < 1e-5
    # a user-marked range gives the joint path as well
    marked = Denoise(profile_start_s=0.1, profile_end_s=0.9)
    assert marked.analyze(stereo, RATE).joint is not None
    assert si_sdr(ref, marked(stereo, RATE)) > si_sdr(ref, alone) + 0.5


def test_stereo_with_independent_music_is_not_worse_than_per_channel():
    # nothing shared: the rotation finds no common direction and costs (almost) nothing
    a = mix(tone(4.0, seed=1), white(int(4.0 * RATE), 22), 10.0)
    b = mix(tone(4.0, seed=2), shellac(int(4.0 * RATE), 23), 12.0)
    ref = as_audio(tone(4.0, seed=1), tone(4.0, seed=2))
    out = Denoise()(as_audio(a, b), RATE)
    alone = np.concatenate([Denoise()(as_audio(a), RATE), Denoise()(as_audio(b), RATE)])
    assert si_sdr(ref, out) > si_sdr(ref, alone) - 0.3


def test_dual_mono_noise_is_handled_and_the_transform_inverts():
    # identical noise in both channels (a mono transfer written twice): the noise covariance
    # is singular and is regularised; the result matches the mono result
    clean = tone(4.0)
    a = mix(clean, white(clean.size, 24), 10.0)
    out = Denoise()(as_audio(a, a), RATE)
    mono = Denoise()(as_audio(a), RATE)
    assert np.all(np.isfinite(out))
    assert si_sdr(as_audio(clean, clean), out) > si_sdr(as_audio(clean), mono) - 0.5
    # with no reduction allowed, the whitening and rotation give the input back
    b = mix(0.5 * clean, white(clean.size, 25), 10.0)
    stereo = as_audio(a, b)
    same = Denoise(reduction_db=0.0)(stereo, RATE)
    assert np.max(np.abs(same - stereo)) < 1e-5


@pytest.mark.parametrize("frames", [0, 100, 3000])
def test_silence_and_short_input(frames):
    audio = np.zeros((2, frames), dtype=np.float32)
    out = Denoise()(audio, RATE)
    assert out.shape == audio.shape
    assert not np.isnan(out).any()
    noisy = (0.1 * np.random.default_rng(0).standard_normal((1, frames))).astype(np.float32)
    out = Denoise()(noisy, RATE)
    assert out.shape == noisy.shape and np.isfinite(out).all()


def test_input_not_modified_and_analysis_is_small():
    noisy = as_audio(0.05 * white(4 * RATE, 30))
    copy = noisy.copy()
    stage = Denoise()
    an = stage.analyzer(RATE, 1)
    an.update(noisy)
    res = an.result()
    assert isinstance(res, NoiseAnalysis)
    stage.process(noisy, RATE, analysis=res)
    assert np.array_equal(noisy, copy)
    assert res.base.nbytes + res.drift.nbytes < 20_000


def continuous(seconds: float, seed: int) -> np.ndarray:
    """Music with no pause and no lead-in: a chord at 0 s, then a new harmonic note every
    0.3 s over the ringing ones, each with vibrato (float64, frames)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    starts = np.concatenate([[0.0, 0.0, 0.0], np.arange(0.3, seconds - 0.1, 0.3)])
    for start in starts:
        f = rng.uniform(150.0, 700.0)
        tt = np.maximum(t - start, 0.0)
        ph = 2 * np.pi * f * (tt + 0.004 / 5.0 * np.sin(2 * np.pi * 5.0 * tt))
        env = np.exp(-tt * 2.0) * (t >= start)
        out += env * sum(np.sin(k * ph + k) / k**1.2 for k in range(1, 9))
    return 0.3 * out / np.max(np.abs(out))


@pytest.mark.parametrize("seed", [0, 1])
def test_music_without_pause_gets_a_floor_estimate(seed):
    # no lead-in and no pause: no passage is noise only, so the noise floor that the music
    # keeps falling back to (per band, over the file) must be found; clean, it must not be
    clean = continuous(5.0, seed)
    noisy = as_audio(mix(clean, white(clean.size, 50 + seed), 15.0))
    ref = as_audio(clean)
    an = Denoise().analyzer(RATE, 1)
    an.update(noisy)
    res = an.result()
    assert res.source == "floor"
    truth = Denoise().analyzer(RATE, 1)
    truth.update(noisy - ref)
    err_db = 10 * np.log10(res.base[0, 20:400] / truth.result().base[0, 20:400])
    assert abs(np.median(err_db)) < 2.0
    gain = si_sdr(ref, Denoise()(noisy, RATE)) - si_sdr(ref, noisy)
    assert gain >= 3.5  # measured 4.4 and 5.1 dB; 6.0 and 6.3 dB with the true noise spectrum
    out = Denoise()(ref, RATE)
    assert np.array_equal(out, ref) or si_sdr(ref, out) > 40.0


def test_peaks_of_the_profile_are_cut():
    # a steady partial inside the only noise-like passage must not enter the profile
    n = 3 * RATE
    t = np.arange(n) / RATE
    noise = 0.01 * white(n, 60)
    clean = np.where(t > 1.0, 0.2, 0.02) * np.sin(2 * np.pi * 1000.0 * t)
    stage = Denoise()
    an = stage.analyzer(RATE, 1)
    an.update(as_audio(clean + noise))
    res = an.result()
    assert res.source == "auto"
    k = round(1000.0 * 1024 / RATE)
    # uncut, the partial's bin would stand ~29 dB above the noise; the cut leaves the lobe at
    # most ~3 dB above the median of the bands around it (6 dB measured at the main lobe)
    assert 10 * np.log10(res.base[0, k] / np.median(res.base[0, k - 30 : k + 30])) < 8.0
