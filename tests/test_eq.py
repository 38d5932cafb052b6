"""Playback EQ: every curve against its analog time-constant formula, known gains, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from audio_restorer.errors import ParameterError
from audio_restorer.stages.base import process_in_blocks
from audio_restorer.stages.eq import CURVES, Eq, analog_response_db
from audio_restorer.stages.registry import create_stage

NAMED = [k for k in CURVES if k != "custom"]


def reference_db(low_us, turnover_us, rolloff_us, f):
    """Independent closed form: |(1+sτt)/((1+sτl)(1+sτr))| re 1 kHz (τl=inf: no shelf)."""

    def mag(freq):
        w = 2 * np.pi * np.asarray(freq, dtype=float)
        h = np.ones_like(w)
        if turnover_us:
            t = turnover_us * 1e-6
            if low_us is None or math.isinf(low_us):
                h = h * np.abs(1 + 1j * w * t) / (w * t)
            else:
                h = h * np.abs(1 + 1j * w * t) / np.abs(1 + 1j * w * low_us * 1e-6)
        if rolloff_us:
            h = h / np.abs(1 + 1j * w * rolloff_us * 1e-6)
        return h

    return 20 * np.log10(mag(f) / mag(1000.0))


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("rate", [44100, 48000])
def test_curve_matches_analog_within_0_2_db(name, rate):
    stage = Eq(curve=name, rumble_hz=0)
    f = np.geomspace(20, 20000, 1500)
    _, h = signal.sosfreqz(stage.sos(rate), worN=f, fs=rate)
    c = CURVES[name]
    if c.bass_cut_us:  # the tape correction: check the module's formula by hand at one point
        ref = analog_response_db(c, f)
        w = 2 * np.pi * np.array([100.0, 1000.0])
        t1, t2, t3 = 3180e-6, 50e-6, 70e-6
        m = np.abs(1j * w * t1 / (1 + 1j * w * t1) * (1 + 1j * w * t2) / (1 + 1j * w * t3))
        assert analog_response_db(c, [100.0])[0] == pytest.approx(20 * np.log10(m[0] / m[1]))
    else:
        ref = reference_db(c.low_us, c.turnover_us, c.rolloff_us, f)
    err = 20 * np.log10(np.abs(h)) - ref
    assert np.max(np.abs(err)) < 0.2


@pytest.mark.parametrize(
    ("name", "tcs", "at_20", "at_10k"),
    [
        ("riaa", (3180, 318, 75), 19.27, -13.73),  # published RIAA table values
        ("emi250", (math.inf, 636, None), None, -0.26),
        ("columbia78", (math.inf, 530, 100), None, -15.0),
        ("teldec", (3180, 318, 50), None, -10.9),
        ("nab1942", (math.inf, 318, 100), None, -15.59),
    ],
)
def test_known_gains_at_1k_and_10k(name, tcs, at_20, at_10k):
    rate = 44100
    stage = Eq(curve=name, rumble_hz=0)
    freqs = np.array([20.0, 1000.0, 10000.0])
    _, h = signal.sosfreqz(stage.sos(rate), worN=freqs, fs=rate)
    got = 20 * np.log10(np.abs(h))
    ref = reference_db(*tcs, freqs)
    assert abs(got[1]) < 0.05  # normalised at 1 kHz
    assert abs(got[2] - ref[2]) < 0.1
    assert abs(got[2] - at_10k) < 0.1
    if at_20 is not None:
        assert abs(got[0] - at_20) < 0.1


def test_american78_rolls_off_6_db_at_10k():
    curve = CURVES["american78"]
    # the rolloff factor alone is -6 dB at 10 kHz
    w = 2 * np.pi * 1e4 * curve.rolloff_us * 1e-6
    assert abs(-10 * np.log10(1 + w * w) + 6.0) < 0.01


def test_filtered_sine_gain_matches_curve():
    rate = 44100
    t = np.arange(rate * 2) / rate
    x = np.vstack([0.1 * np.sin(2 * np.pi * 1000 * t), 0.1 * np.sin(2 * np.pi * 10000 * t)])
    y = Eq(curve="riaa", rumble_hz=0)(x.astype(np.float32), rate)
    tail = slice(rate, None)
    gains = 20 * np.log10(np.std(y[:, tail], axis=1) / np.std(x[:, tail], axis=1))
    assert abs(gains[0]) < 0.05
    assert abs(gains[1] + 13.73) < 0.1


def test_custom_equals_named_curve():
    rate = 44100
    a = Eq(curve="riaa").sos(rate)
    b = Eq(curve="custom", low_us=3180, turnover_us=318, rolloff_us=75).sos(rate)
    np.testing.assert_allclose(a, b)


def test_custom_rejects_shelf_above_turnover():
    with pytest.raises(ParameterError, match="low_us must exceed"):
        Eq(curve="custom", low_us=100, turnover_us=318).sos(44100)


def test_unknown_curve_rejected():
    with pytest.raises(ParameterError, match=r"eq\.curve must be one of"):
        create_stage("eq", {"curve": "edison"})


def test_rumble_and_lowpass():
    rate = 22050
    f = np.array([5.0, 1000.0, 10000.0])
    _, h = signal.sosfreqz(
        Eq(curve="flat", rumble_hz=40, lowpass_hz=5000).sos(rate), worN=f, fs=rate
    )
    db = 20 * np.log10(np.abs(h))
    assert db[0] < -60 and abs(db[1]) < 0.1 and db[2] < -20


def test_blockwise_equals_whole_and_per_channel():
    rate = 22050
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((2, rate * 2))).astype(np.float32)
    stage = Eq(curve="columbia78", lowpass_hz=6000)
    whole = stage(x, rate)
    blocks = process_in_blocks(stage, x, rate, 3001)
    np.testing.assert_array_equal(whole, blocks)
    left = stage(x[:1], rate)
    np.testing.assert_array_equal(whole[:1], left)
    assert whole.dtype == np.float32 and whole.shape == x.shape
    assert np.all(np.isfinite(whole))


def test_help_lists_curves_and_flat_transfer_rule():
    help_text = Eq.Params.info("curve").spec.help
    assert "flat" in help_text and "3180/318/75" in help_text and "EMI 250" in help_text
