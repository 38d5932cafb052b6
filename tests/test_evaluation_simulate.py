"""Tests of the degradation simulator and the ``simulate`` CLI sub-command."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import soundfile as sf

from audio_restorer.cli import simulate as cli
from audio_restorer.errors import ParameterError
from audio_restorer.evaluation import metrics as M  # noqa: N812
from audio_restorer.evaluation import simulate as S  # noqa: N812

RATE = 22050


def _music(seconds: float = 3.0, channels: int = 2, rate: int = RATE) -> np.ndarray:
    """A seeded chord with vibrato and a decaying envelope per note: music-like, not a sine."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros((channels, t.size))
    for f0 in (196.0, 247.0, 294.0, 392.0):
        phase = 2 * np.pi * f0 * t + 0.5 * np.sin(2 * np.pi * 5 * t)
        env = np.exp(-((t % 0.75) * 3))
        for ch in range(channels):
            note = sum(np.sin(k * phase + rng.uniform(0, 6)) / k**1.5 for k in range(1, 8))
            out[ch] += env * note * rng.uniform(0.7, 1.0)
    return (0.25 * out / np.abs(out).max()).astype(np.float32)


@pytest.mark.parametrize("carrier", sorted(S.CARRIERS))
def test_every_carrier_is_deterministic_and_keeps_the_contract(carrier):
    clean = _music(2.0)
    a = S.simulate(clean, RATE, carrier=carrier, seed=3)
    b = S.simulate(clean, RATE, carrier=carrier, seed=3)
    c = S.simulate(clean, RATE, carrier=carrier, seed=4)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.audio, c.audio)
    assert a.audio.shape == clean.shape and a.audio.dtype == np.float32
    assert np.isfinite(a.audio).all()
    np.testing.assert_array_equal(a.reference, clean)
    if a.time_map is not None:  # the warped reference is the clean signal on the time map
        assert M.si_sdr(a.warped_reference, S.warp(clean, a.time_map)) > 100
    assert a.click_mask.shape == clean.shape and a.clip_mask.shape == clean.shape
    assert a.params["carrier"] == carrier and a.params["steps"]
    json.dumps(a.params)  # the recorded settings are plain JSON
    np.testing.assert_array_equal(clean, _music(2.0))  # input untouched


def test_shellac78_has_clicks_where_the_mask_says():
    clean = _music(3.0, channels=1)
    d = S.simulate(clean, RATE, carrier="shellac78", seed=11)
    assert d.click_mask.mean() > 0.005
    assert min(abs(d.hum_hz - 50.0), abs(d.hum_hz - 60.0)) < 0.2

    # the same recipe with the impulses drawn (same random stream) but not added
    def drawn_not_added(fn):
        def step(audio, rate, **kwargs):
            _, info = fn(audio, rate, **kwargs)
            return audio, info

        return step

    rng = np.random.default_rng(11)
    steps = [
        (name, drawn_not_added(fn) if name in ("add_clicks", "add_crackle") else fn, kw)
        for name, fn, kw in S.CARRIERS["shellac78"](rng, RATE)
    ]
    smooth = S.apply_steps(clean, RATE, steps, rng=rng).audio
    diff = np.abs(d.audio - smooth)
    assert diff[~d.click_mask].max() < 1e-5  # nothing outside the mask
    assert np.mean(diff[d.click_mask] > 1e-4) > 0.9  # and an impulse nearly everywhere in it


def test_clicks_mask_and_levels():
    clean = np.zeros((2, RATE * 2), dtype=np.float32)
    out, info = S.add_clicks(clean, RATE, rng=np.random.default_rng(0), per_second=10)
    mask = info["mask"]
    assert info["count"] > 5
    np.testing.assert_array_equal(out != 0, mask)  # on silence, non-zero exactly in the mask
    runs = M._runs(mask[0])
    lengths = runs[:, 1] - runs[:, 0]
    assert lengths.max() <= 40 and np.abs(out).max() <= 0.81


@pytest.mark.parametrize(("snr_db", "colour"), [(10.0, "white"), (20.0, "pink"), (25.0, "tape")])
def test_hiss_has_the_requested_snr(snr_db, colour):
    clean = _music(2.0)
    noisy, _ = S.add_hiss(clean, RATE, rng=np.random.default_rng(1), snr_db=snr_db, colour=colour)
    assert M.snr(clean, noisy) == pytest.approx(snr_db, abs=0.5)


def test_pink_noise_falls_3_db_per_octave():
    noise = S.coloured_noise(2**18, 44100, rng=np.random.default_rng(2), colour="pink")[0]
    spec = np.abs(np.fft.rfft(noise)) ** 2
    f = np.fft.rfftfreq(noise.size, 1 / 44100)

    def band(lo):
        return spec[(f >= lo) & (f < 2 * lo)].mean()

    assert 10 * np.log10(band(500) / band(4000)) == pytest.approx(9.0, abs=0.7)


def test_hum_level_and_frequency():
    clean = _music(3.0, channels=1)
    out, info = S.add_hum(clean, RATE, rng=np.random.default_rng(5), mains_hz=60.0, level_db=-30)
    level = M.hum_level_db(out, RATE, 60.0, reference=clean)
    assert level == pytest.approx(-30.0, abs=1.0)
    assert info["mean_hz"] == pytest.approx(60.0, abs=0.1)


def test_hard_clip_mask_matches_changed_samples():
    clean = _music(1.0)
    out, info = S.clip_hard(clean, RATE, ceiling_db=-6.0)
    np.testing.assert_array_equal(info["mask"], out != clean)
    assert np.abs(out).max() == pytest.approx(np.abs(clean).max() * 10 ** (-6 / 20), rel=1e-5)
    soft, sinfo = S.clip_soft(clean, RATE, knee_db=-6.0)
    changed = soft != clean
    assert not (changed & ~sinfo["mask"]).any()  # nothing changed outside the mask
    assert changed[sinfo["mask"]].mean() > 0.9  # (barely-above-knee samples round back)


def test_band_limit_removes_the_top_band():
    noise = S.coloured_noise(RATE * 2, RATE, rng=np.random.default_rng(0), channels=1)
    out, _ = S.band_limit(noise.astype(np.float32), RATE, low_hz=None, high_hz=3000.0)
    spec = np.abs(np.fft.rfft(out[0])) ** 2
    f = np.fft.rfftfreq(out.shape[1], 1 / RATE)
    pass_band, stop_band = spec[(f > 500) & (f < 2000)].mean(), spec[f > 6000].mean()
    assert 10 * np.log10(pass_band / stop_band) > 45


def test_wow_flutter_time_map_and_metric():
    clean = _music(3.0, channels=1)
    out, info = S.wow_flutter(
        clean, RATE, rng=np.random.default_rng(0), wow_percent=0.3, wow_hz=1.3, random_percent=0
    )
    # the warped output is the clean signal read along the time map
    n = np.arange(clean.shape[1])
    expected = np.interp(info["time_map"], n, clean[0])
    inner = slice(200, -200)
    assert M.snr(expected[inner], out[0, inner]) > 30
    peak = 1200 * np.log2(1.003)
    np.testing.assert_array_equal(S.warp(clean, info["time_map"]), out)
    measured = M.pitch_deviation_cents(clean, out, RATE)
    assert 0.5 * peak / np.sqrt(2) < measured < 1.5 * peak / np.sqrt(2)


def test_mp3_round_trip_is_aligned():
    clean = _music(2.0)
    out, _info = S.mp3_artefacts(clean, RATE, bitrate_kbps=96)
    assert out.shape == clean.shape
    assert M.si_sdr(clean, out) > 10  # aligned (misaligned by even 1 ms would be < 0 dB)


def test_dropouts_dip_the_level():
    clean = _music(3.0, channels=1)
    out, info = S.dropouts(clean, RATE, rng=np.random.default_rng(2), per_second=2.0)
    assert info["mask"].any()
    outside = ~info["mask"]
    np.testing.assert_allclose(out[0, outside], clean[0, outside], atol=1e-6)
    assert np.sum(out[0, info["mask"]] ** 2) < 0.9 * np.sum(clean[0, info["mask"]] ** 2)


def test_bad_parameters_are_rejected():
    clean = _music(0.5)
    with pytest.raises(ParameterError, match="carrier must be one of"):
        S.simulate(clean, RATE, carrier="wire")
    with pytest.raises(ParameterError, match="noise colour"):
        S.add_hiss(clean, RATE, rng=np.random.default_rng(0), colour="purple")
    with pytest.raises(ParameterError, match="float32"):
        S.simulate(clean.astype(np.float64), RATE)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="audio-restorer")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_writes_output_reference_and_truth(tmp_path):
    src = tmp_path / "clean.wav"
    sf.write(src, _music(1.5).T, RATE, subtype="PCM_16")
    out = tmp_path / "damaged.flac"
    args = _parse(["simulate", str(src), "-o", str(out), "--carrier", "tape", "--seed", "5"])
    assert args.func(args) == 0
    damaged, rate = sf.read(out, always_2d=True)
    reference, _ = sf.read(tmp_path / "damaged.reference.flac", always_2d=True)
    assert rate == RATE and damaged.shape == reference.shape == (int(1.5 * RATE), 2)
    truth = json.loads((tmp_path / "damaged.truth.json").read_text())
    assert truth["params"]["carrier"] == "tape" and truth["params"]["seed"] == 5
    masks = np.load(tmp_path / "damaged.truth.npz")
    assert masks["clip_mask"].shape == (2, int(1.5 * RATE))
    assert "time_map" in masks


def test_cli_reports_a_missing_file_and_bad_output(tmp_path, capsys):
    args = _parse(["simulate", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.wav")])
    assert args.func(args) == 1
    assert "nope.wav" in capsys.readouterr().err
    args = _parse(["simulate", str(tmp_path / "a.wav"), "-o", str(tmp_path / "x.ogg")])
    assert args.func(args) == 2
