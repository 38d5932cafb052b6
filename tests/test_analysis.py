import numpy as np
import pyloudnorm as pyln
import pytest

from audio_restorer.analysis import integrated_loudness, measure, true_peak_dbtp
from audio_restorer.analysis.loudness import LoudnessMeter
from audio_restorer.analysis.truepeak import TruePeakMeter
from signals import music_like


@pytest.mark.parametrize("rate", [8000, 44100, 48000, 96000])
def test_integrated_loudness_matches_pyloudnorm(rate):
    x = music_like(rate, 6.0, 2, seed=3)
    assert integrated_loudness(x, rate) == pytest.approx(
        pyln.Meter(rate).integrated_loudness(x.T.astype(np.float64)), abs=0.01
    )


def test_loudness_is_the_same_block_wise():
    x = music_like(44100, 5.0, 2, seed=4)
    meter = LoudnessMeter(44100, 2)
    for i in range(0, x.shape[1], 3001):
        meter.update(x[:, i : i + 3001])
    assert meter.integrated() == pytest.approx(integrated_loudness(x, 44100), abs=1e-9)


def test_997hz_sine_at_minus_20dbfs_reads_minus_20_lufs_per_channel():
    rate = 48000
    t = np.arange(rate * 10) / rate
    x = (10 ** (-20 / 20) * np.sin(2 * np.pi * 997 * t)).astype(np.float32)[None]
    # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS
    assert integrated_loudness(x, rate) == pytest.approx(-23.01, abs=0.05)


def test_true_peak_finds_inter_sample_overs():
    rate = 48000
    t = np.arange(rate) / rate
    x = np.sin(2 * np.pi * rate / 4 * t + np.pi / 4).astype(np.float32)[None]  # samples at ±0.707
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(x) == pytest.approx(0.0, abs=0.1)
    meter = TruePeakMeter(1)
    for i in range(0, x.shape[1], 999):
        meter.update(x[:, i : i + 999])
    assert meter.result() == pytest.approx(true_peak_dbtp(x), abs=1e-9)


def test_measurements_of_known_signals():
    rate = 44100
    rng = np.random.default_rng(0)
    x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate * 4) / rate)).astype(np.float32)
    x = np.stack([x + 0.01, x - 0.02]).astype(np.float32)
    m = measure(x, rate)
    assert m.peak_dbfs == pytest.approx(20 * np.log10(0.52), abs=0.01)
    assert m.dc_offset == pytest.approx([0.01, -0.02], abs=1e-4)
    assert m.clipped_ratio == 0.0
    clipped = np.clip(x * 4, -0.8, 0.8)
    assert measure(clipped, rate).clipped_ratio > 0.3
    # noise floor: quiet noise between loud bursts
    y = (rng.standard_normal((1, rate * 4)) * 0.001).astype(np.float32)
    y[:, :rate] += 0.3 * rng.standard_normal((1, rate)).astype(np.float32)
    assert measure(y, rate).noise_floor_dbfs == pytest.approx(-60, abs=1.5)


def test_bandwidth_of_a_band_limited_signal():
    from scipy import signal

    rate = 44100
    noise = np.random.default_rng(1).standard_normal((1, rate * 3))
    # the sharp low-pass of a codec or resampler (a gentle slope reports its -60 dB point)
    fir = signal.firwin(1001, 8000, fs=rate)
    limited = signal.lfilter(fir, 1.0, noise).astype(np.float32)
    assert measure(limited, rate).bandwidth_hz == pytest.approx(8000, rel=0.05)
    assert measure(noise.astype(np.float32), rate).bandwidth_hz > 21000
