"""air, transient, clarity and codec: known-answer tests on seeded synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from audio_restorer.stages.air import Air, detect_bandwidth
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.codec import Codec
from audio_restorer.stages.dynamics import Clarity, Transient

RATE = 44100


def harmonic_music(rate, seconds, seed=0):
    """Plucked harmonic tones with vibrato and noisy attacks, rich up to Nyquist (stereo)."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    x = np.zeros(n)
    for i, f0 in enumerate((220.0, 330.0, 554.0)):
        phase = 2 * np.pi * f0 * np.cumsum(1 + 0.003 * np.sin(2 * np.pi * 5 * t + i)) / rate
        env = np.exp(-((t * 2 + i * 0.3) % 1.0) * 3)
        for h in range(1, int(rate / 2 / f0)):
            x += env * np.sin(h * phase) / h
    x += 0.05 * rng.standard_normal(n) * np.exp(-((t * 4) % 1) * 20)
    x = np.vstack([x, np.roll(x, 100)])
    return x / (2 * np.max(np.abs(x)))


def band_limit(x, rate, cutoff):
    sos = signal.butter(16, cutoff, fs=rate, output="sos")
    return signal.sosfiltfilt(sos, x, axis=1).astype(np.float32)


def lsd_db(ref, est, rate, lo, hi, nperseg=2048):
    """Log-spectral distance (dB) between two signals over [lo, hi) Hz, mean over frames."""
    f, _, r = signal.stft(ref, fs=rate, nperseg=nperseg)
    _, _, e = signal.stft(est, fs=rate, nperseg=nperseg)
    band = (f >= lo) & (f < hi)
    rl = 10 * np.log10(np.abs(r[..., band, :]) ** 2 + 1e-10)
    el = 10 * np.log10(np.abs(e[..., band, :]) ** 2 + 1e-10)
    return float(np.mean(np.sqrt(np.mean((rl - el) ** 2, axis=-2))))


def run(stage, x, rate):
    analyzer = stage.analyzer(rate, x.shape[0])
    result = None
    if analyzer is not None:
        analyzer.update(x)
        result = analyzer.result()
    return stage.process(x, rate, analysis=result), result


# -- air -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cutoff", [5000.0, 8000.0, 11000.0])
def test_air_detects_cutoff_and_reduces_lsd(cutoff):
    full = harmonic_music(RATE, 3.0)
    limited = band_limit(full, RATE, cutoff)
    y, found = run(Air(), limited, RATE)
    assert found.cutoff_hz == pytest.approx(cutoff, rel=0.1)  # knee detector: 5 kHz reads 4.61
    hi = min(2 * found.cutoff_hz, RATE / 2)
    before = lsd_db(full, limited, RATE, found.cutoff_hz, hi)
    after = lsd_db(full, y, RATE, found.cutoff_hz, hi)
    # filled at roughly the right level (the envelope is continued with a conservative bias,
    # so a synthetic spectrum that keeps its -6 dB/oct to Nyquist is under-filled a little)
    assert after < before - 3.0
    assert lsd_db(full, y, RATE, 20, RATE / 2) < lsd_db(full, limited, RATE, 20, RATE / 2)


def test_air_adds_nothing_below_the_cutoff():
    limited = band_limit(harmonic_music(RATE, 3.0, seed=2), RATE, 7000.0)
    y, found = run(Air(amount=1.0, shelf_db=12.0), limited, RATE)
    f, added = signal.welch(y - limited, fs=RATE, nperseg=4096)
    _, ref = signal.welch(limited, fs=RATE, nperseg=4096)
    below = f < found.cutoff_hz
    assert np.all(added[:, below].sum(-1) < 1e-6 * ref[:, below].sum(-1))  # under -60 dB
    above = (f > found.cutoff_hz * 1.2) & (f < found.cutoff_hz * 1.8)
    assert np.all(added[:, above].sum(-1) > 100 * ref[:, above].sum(-1))  # and a lot above


def test_air_leaves_full_band_audio_alone():
    x = harmonic_music(RATE, 2.0).astype(np.float32)
    y, found = run(Air(), x, RATE)
    assert found.cutoff_hz is None
    np.testing.assert_array_equal(y, x)


def test_detector_on_synthetic_spectrum():
    freqs = np.linspace(0, 22050, 2049)
    power = 10 ** ((-6 * np.log2(np.maximum(freqs, 50) / 1000)) / 10)
    power[freqs > 9000] *= 1e-5  # a 50 dB wall at 9 kHz
    found = detect_bandwidth(freqs, power)
    assert found.cutoff_hz == pytest.approx(9000, abs=150)
    assert found.slope_db_per_oct == pytest.approx(-6.0, abs=1.0)
    gentle = 10 ** ((-12 * np.log2(np.maximum(freqs, 50) / 1000)) / 10)
    assert detect_bandwidth(freqs, gentle).cutoff_hz is None


def test_air_blockwise_equals_whole_and_mix_zero_is_identity():
    limited = band_limit(harmonic_music(RATE, 2.0), RATE, 8000.0)
    stage = Air()
    whole, found = run(stage, limited, RATE)
    blocks = process_in_blocks(stage, limited, RATE, 20001, found)
    np.testing.assert_allclose(whole, blocks, atol=1e-6)
    dry, _ = run(Air(mix=0.0), limited, RATE)
    np.testing.assert_array_equal(dry, limited)


# -- transient ---------------------------------------------------------------------------------


def plucks(rate, seconds, seed=4):
    """Notes every 0.5 s with an instant onset and slow decay; harmonics through 8 kHz."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    since = t % 0.5
    env = np.exp(-since * 4)
    x = sum(np.sin(2 * np.pi * 262 * h * t) / h for h in range(1, 30)) * env
    x = x + 0.002 * rng.standard_normal(n)
    return (0.2 * np.vstack([x, x])).astype(np.float32), since


def band_energy_db(x, rate, mask):
    sos = signal.butter(4, [1800, 7500], btype="bandpass", fs=rate, output="sos")
    b = signal.sosfilt(sos, x[0].astype(np.float64))
    return 10 * np.log10(np.mean(b[mask] ** 2))


def test_transient_lifts_attacks_not_sustain():
    x, since = plucks(RATE, 3.0)
    y = Transient(amount_db=6.0)(x, RATE)
    settled = np.arange(x.shape[1]) > RATE // 2
    early = settled & (since < 0.012)
    late = settled & (since > 0.25) & (since < 0.45)
    early_gain = band_energy_db(y, RATE, early) - band_energy_db(x, RATE, early)
    late_gain = band_energy_db(y, RATE, late) - band_energy_db(x, RATE, late)
    assert early_gain > 2.0
    assert abs(late_gain) < 0.5


def test_transient_blockwise_and_steady_tone_untouched():
    x, _ = plucks(RATE, 2.0)
    stage = Transient()
    np.testing.assert_array_equal(stage(x, RATE), process_in_blocks(stage, x, RATE, 7001))
    t = np.arange(RATE * 2) / RATE
    tone = np.vstack([0.3 * np.sin(2 * np.pi * 3000 * t)] * 2).astype(np.float32)
    y = stage(tone, RATE)
    tail = slice(RATE // 2, None)
    assert np.max(np.abs(y[:, tail] - tone[:, tail])) < 0.01 * 0.3


# -- clarity -----------------------------------------------------------------------------------


def fading_brightness(rate, seconds, seed=5):
    """Harmonic tone whose presence band fades by 12 dB across the clip (a dulling side)."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    fade = 10 ** (-12 * (t / seconds) / 20)
    x = np.zeros(n)
    for h in range(1, 40):
        f = 196 * h
        if f > 0.45 * rate:
            break
        gain = fade if f > 2500 else 1.0
        x += gain * np.sin(2 * np.pi * f * t + h) / h**0.7
    return (0.1 * np.vstack([x, x])).astype(np.float32)


def tilt_db(x, rate, sl):
    hi = signal.sosfilt(signal.butter(4, 3000, "highpass", fs=rate, output="sos"), x[0, sl])
    lo = signal.sosfilt(signal.butter(4, [200, 2000], "bandpass", fs=rate, output="sos"), x[0, sl])
    return 10 * np.log10(np.mean(hi**2) / np.mean(lo**2))


def test_clarity_steadies_presence():
    rate = 22050
    x = fading_brightness(rate, 8.0)
    y = Clarity(strength=1.0, window_s=2.0, max_db=10.0)(x, rate)
    first, last = slice(rate // 2, 2 * rate), slice(6 * rate, int(7.5 * rate))
    before = tilt_db(x, rate, first) - tilt_db(x, rate, last)
    after = tilt_db(y, rate, first) - tilt_db(y, rate, last)
    assert before > 6.0
    assert abs(after) < 0.5 * before, (before, after)


def test_clarity_blockwise_equals_whole():
    rate = 22050
    x = fading_brightness(rate, 4.0)
    stage = Clarity()
    whole, found = run(stage, x, rate)
    np.testing.assert_allclose(whole, process_in_blocks(stage, x, rate, 3333, found), atol=1e-6)
    steady = fading_brightness(rate, 4.0)[:, :1] * np.ones((1, 4 * rate), np.float32)
    assert np.all(np.isfinite(Clarity()(steady, rate)))


# -- codec -------------------------------------------------------------------------------------


def with_hiss(rate, seconds, seed=7):
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    hp = signal.butter(2, 3000, "highpass", fs=rate, output="sos")
    air = signal.sosfilt(hp, rng.standard_normal((2, n))) * 0.05 * (1 + 0.5 * np.sin(np.pi * t))
    return harmonic_music(rate, seconds, seed) + air


def codec_holes(x, rate, probability, seed=8):
    """Drop random 8-bin bands above 3 kHz in 1152-sample frames, as a starved coder does."""
    rng = np.random.default_rng(seed)
    f, _, spec = signal.stft(x, fs=rate, nperseg=1152, noverlap=576)
    high = spec[:, f > 3000, :]
    bands = high.shape[1] // 8
    kill = np.repeat(rng.random((1, bands, high.shape[2])) < probability, 8, axis=1)
    part = high[:, : bands * 8]
    part[np.broadcast_to(kill, part.shape)] = 0
    high[:, : bands * 8] = part
    spec[:, f > 3000, :] = high
    _, y = signal.istft(spec, fs=rate, nperseg=1152, noverlap=576)
    return y[:, : x.shape[1]].astype(np.float32)


def lsd_codec(ref, est, rate):
    return lsd_db(ref, est, rate, 3000, 16000, nperseg=1024)


def test_codec_fills_holes():
    x = with_hiss(RATE, 3.0)
    damaged = codec_holes(x, RATE, 0.3)
    y = Codec()(damaged, RATE)
    assert lsd_codec(x, y, RATE) < lsd_codec(x, damaged, RATE) - 0.8


def test_codec_nearly_transparent_on_clean_audio():
    x = with_hiss(RATE, 3.0).astype(np.float32)
    y = Codec()(x, RATE)
    snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((y - x) ** 2.0))
    assert snr > 25.0
    assert lsd_codec(x, y, RATE) < 1.5


def test_codec_suppresses_pre_echo():
    rate = RATE
    rng = np.random.default_rng(9)
    n = rate * 2
    hp = signal.butter(4, 3000, "highpass", fs=rate, output="sos")
    x = np.zeros(n)
    onset = rate
    x[onset : onset + rate // 4] = rng.standard_normal(rate // 4) * np.exp(
        -np.arange(rate // 4) / 3000
    )
    x = signal.sosfilt(hp, x) * 0.3 + 0.001 * signal.sosfilt(hp, rng.standard_normal(n))
    smear = slice(onset - int(0.02 * rate), onset - int(0.006 * rate))
    damaged = x.copy()
    damaged[smear] += 0.02 * signal.sosfilt(hp, rng.standard_normal(smear.stop - smear.start))
    y = Codec()(damaged[None].astype(np.float32), rate)[0]

    def db(a, sl):
        return 10 * np.log10(np.mean(a[sl].astype(np.float64) ** 2))

    assert db(y, smear) < db(damaged, smear) - 6.0
    burst = slice(onset + 200, onset + 3000)
    assert abs(db(y, burst) - db(x, burst)) < 1.0


def test_codec_blockwise_equals_whole():
    x = codec_holes(with_hiss(RATE, 2.0), RATE, 0.2)
    stage = Codec()
    np.testing.assert_allclose(stage(x, RATE), process_in_blocks(stage, x, RATE, 15001), atol=1e-6)


# -- registry ----------------------------------------------------------------------------------


def test_tone_stages_registered_with_described_parameters():
    from audio_restorer.stages.registry import get_stage_class, stage_names

    names = ("eq", "air", "transient", "codec", "clarity", "loudness", "limiter")
    assert set(names) <= set(stage_names())
    for name in names:
        cls = get_stage_class(name)
        assert cls.title and cls.summary
        for info in cls.Params.infos():
            assert info.spec.help, (name, info.name)
            if info.kind in (int, float):
                assert info.spec.min is not None and info.spec.max is not None, (name, info.name)
