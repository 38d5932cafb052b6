"""HPSS backend and the separate stage: energy in the right stem, stems sum to the mix."""

from __future__ import annotations

import numpy as np
import pytest

from audio_restorer.errors import ParameterError
from audio_restorer.separation import create_backend
from audio_restorer.separation.hpss import HpssSettings, hpss, istft, median_along, stft
from audio_restorer.separation.streaming import separate_in_blocks
from audio_restorer.stages import create_stage
from audio_restorer.stages.base import process_in_blocks

RATE = 22050


def tone_and_clicks(rate: int, seconds: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A harmonic tone with vibrato (stereo) and a train of broadband clicks (stereo)."""
    r = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    phase = 2 * np.pi * (220.0 * t + 3.0 * np.sin(2 * np.pi * 5.0 * t) / (2 * np.pi * 5.0))
    tone = sum(0.3 / k * np.sin(k * phase) for k in range(1, 6))
    clicks = np.zeros(n)
    pos = r.choice(np.arange(200, n - 200), 25, replace=False)
    for p in pos:  # short decaying noise bursts, like clicks or a snare's attack
        clicks[p : p + 40] += r.standard_normal(40) * np.exp(-np.arange(40) / 8.0) * 0.6
    harm = np.stack([tone, 0.7 * tone]).astype(np.float32)
    perc = np.stack([clicks, clicks]).astype(np.float32)
    return harm, perc


def energy_share(stem: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of ``ref``'s energy captured by ``stem`` (projection)."""
    return float(np.sum(stem * ref) / np.sum(ref * ref))


def test_stft_roundtrip_is_exact():
    x = np.random.default_rng(0).standard_normal((2, 5000)).astype(np.float32)
    s = HpssSettings(RATE)
    assert np.max(np.abs(istft(stft(x, s), x.shape[1], s) - x)) < 1e-5


def test_fast_median_equals_scipy(rng):
    from scipy import ndimage

    x = rng.random((2, 40, 57)).astype(np.float32)
    for axis, size in ((1, 9), (2, 7)):
        expected = ndimage.median_filter(x, size=size, axes=(axis,), mode="reflect")
        assert np.array_equal(median_along(x, size, axis), expected)


def test_energy_lands_in_the_right_stem():
    harm, perc = tone_and_clicks(RATE, 3.0)
    out = hpss(harm + perc, HpssSettings(RATE))
    # the tone goes to the harmonic stem, the clicks to the percussive one
    assert energy_share(out["harmonic"], harm) > 0.95
    assert energy_share(out["percussive"], perc) > 0.6
    err_h = np.sum((out["harmonic"] - harm) ** 2) / np.sum(harm**2)
    assert 10 * np.log10(1 / err_h) > 15  # harmonic SDR floor (dB)
    # the percussive stem holds little of the tone, the harmonic one little of the clicks
    assert abs(energy_share(out["percussive"], harm)) < 0.05
    assert abs(energy_share(out["harmonic"], perc)) < 0.4


def test_margin_moves_ambiguous_energy_to_the_residual():
    harm, perc = tone_and_clicks(RATE, 2.0)
    mix = harm + perc
    stage1 = create_stage("separate", {"margin": 1.0, "mode": "mix"})
    stage3 = create_stage("separate", {"margin": 3.0, "mode": "mix"})
    res = {}
    for name, stage in (("m1", stage1), ("m3", stage3)):
        got: dict[str, list[np.ndarray]] = {}
        stream = stage.open(RATE, 2)
        stream.stem_sink = lambda s, b, r, got=got: got.setdefault(s, []).append(b)
        stream.push(mix)
        stream.finish()
        res[name] = np.concatenate(got["residual"], axis=1)
    mix_energy = float(np.sum(mix**2))
    assert np.sum(res["m1"] ** 2) / mix_energy < 1e-4  # margin 1: masks sum to one
    assert np.sum(res["m3"] ** 2) / mix_energy > 20 * np.sum(res["m1"] ** 2) / mix_energy


def test_blockwise_equals_whole_file():
    harm, perc = tone_and_clicks(RATE, 3.0)
    mix = harm + perc
    backend = create_backend("hpss", block_s=0.5)
    whole = hpss(mix, backend.settings(RATE))
    blocks = separate_in_blocks(backend.open(RATE, 2), mix, 7777, backend.sources())
    for name in whole:
        assert blocks[name].shape == mix.shape
        assert np.max(np.abs(blocks[name] - whole[name])) < 1e-5


def test_multichannel_equals_per_channel():
    harm, perc = tone_and_clicks(RATE, 1.5)
    mix = harm + perc
    s = HpssSettings(RATE)
    both = hpss(mix, s)
    left = hpss(mix[:1], s)
    assert np.max(np.abs(both["harmonic"][:1] - left["harmonic"])) < 1e-6


@pytest.mark.parametrize("channels", [1, 2])
def test_stems_add_back_up_to_the_mix(channels):
    harm, perc = tone_and_clicks(RATE, 2.0)
    mix = (harm + perc)[:channels]
    stage = create_stage("separate", {"stems": "harmonic", "export": "raw"})
    assert stage.stem_names(channels) == ["harmonic", "residual"]
    got: dict[str, list[np.ndarray]] = {}
    stream = stage.open(RATE, channels)
    stream.stem_sink = lambda s, b, r: got.setdefault(f"{s}:{r}", []).append(b)
    out = [stream.push(mix[:, i : i + 5000]) for i in range(0, mix.shape[1], 5000)]
    out.append(stream.finish())
    remix = sum(np.concatenate(got[f"{s}:False"], axis=1) for s in stage.stem_names(channels))
    assert np.max(np.abs(remix - mix)) < 1e-5
    assert np.array_equal(np.concatenate(out, axis=1), mix)  # nothing to restore: exact


def test_per_stem_chain_and_gain_restore_each_stem():
    harm, perc = tone_and_clicks(RATE, 2.0)
    mix = harm + perc
    stems = {"percussive": {"gain_db": -60.0, "chain": []}}
    stage = create_stage("separate", {}, stems=stems)
    out = stage(mix, RATE)
    # percussive stem attenuated by 60 dB: the output is (almost) the harmonic part alone
    assert energy_share(mix, perc) == pytest.approx(1.0, abs=0.01)
    assert energy_share(out, perc) < 0.3
    assert energy_share(out, harm) > 0.9
    assert np.max(np.abs(out - process_in_blocks(stage, mix, RATE, 6001))) < 1e-5


def test_stem_chain_runs_sub_stages_blockwise():
    harm, perc = tone_and_clicks(RATE, 2.0)
    mix = harm + perc + 0.2  # DC offset the rumble filter in the harmonic chain removes
    stems = {"harmonic": {"chain": [{"stage": "rumble", "params": {"cutoff_hz": 40}}]}}
    stage = create_stage("separate", {"stems": "harmonic,percussive"}, stems=stems)
    restored: dict[str, list[np.ndarray]] = {}
    stream = stage.open(RATE, 2)
    stream.stem_sink = lambda s, b, r: restored.setdefault(f"{s}:{r}", []).append(b)
    out = np.concatenate([stream.push(mix), stream.finish()], axis=1)
    assert out.shape == mix.shape
    h_raw = np.concatenate(restored["harmonic:False"], axis=1)
    h_rest = np.concatenate(restored["harmonic:True"], axis=1)
    tail = slice(RATE, None)
    assert abs(float(h_raw[:, tail].mean())) > 0.05
    assert abs(float(h_rest[:, tail].mean())) < 0.01
    assert abs(float(out[:, tail].mean())) < 0.5 * abs(float(mix[:, tail].mean()))


def test_bad_configurations_are_refused():
    with pytest.raises(ParameterError, match="vocals"):
        create_stage("separate", {"stems": "vocals"}).stem_names()
    with pytest.raises(ParameterError, match="drums"):
        create_stage("separate", {}, stems={"drums": {"chain": []}}).stem_names()
    with pytest.raises(ParameterError, match="gain_db"):
        create_stage("separate", {}, stems={"harmonic": {"gain_db": "loud"}})
    with pytest.raises(ParameterError, match="another separation"):
        create_stage("separate", {}, stems={"harmonic": {"chain": [{"stage": "separate"}]}})
    with pytest.raises(ParameterError, match=r"\{stem\}"):
        create_stage("separate", {"export_pattern": "{name}.wav"})
    with pytest.raises(ParameterError, match="mode"):
        create_stage("separate", {"mode": "karaoke"})


def test_export_targets_and_paths(tmp_path):
    stage = create_stage("separate", {"export": "both", "export_stems": "harmonic"})
    assert stage.export_targets(2) == [("harmonic", False), ("harmonic", True)]
    out = tmp_path / "song.restored.flac"
    assert stage.export_path(out, "harmonic", True) == tmp_path / "song.restored.harmonic.flac"
    assert stage.export_path(out, "harmonic", False).name == "song.restored.harmonic.raw.flac"
    other = create_stage("separate", {"export": "raw", "export_dir": str(tmp_path / "stems")})
    assert other.export_path(out, "residual", False) == (
        tmp_path / "stems" / "song.restored.residual.flac"
    )
    mixonly = create_stage("separate", {"export": "restored", "mode": "mix"})
    assert all(not restored for _, restored in mixonly.export_targets(2))


def test_cli_restore_with_a_per_stem_preset(tmp_path):
    import json

    import soundfile as sf

    from audio_restorer.cli.main import main

    harm, perc = tone_and_clicks(RATE, 2.0)
    mix = 0.5 * (harm + perc)
    src = tmp_path / "in.wav"
    sf.write(src, mix.T, RATE, subtype="FLOAT")
    entry = {
        "stage": "separate",
        "params": {"stems": "harmonic,percussive"},
        "stems": {"percussive": {"gain_db": -60.0, "chain": []}, "harmonic": {"chain": []}},
    }
    preset = tmp_path / "stems.json"
    preset.write_text(
        json.dumps(
            {"format": "audio-restorer-preset", "version": 1, "name": "stems", "chain": [entry]}
        )
    )
    out = tmp_path / "out.wav"
    argv = ["restore", str(src), "-o", str(out), "--preset", str(preset), "--bit-depth", "32f"]
    assert main([*argv, "-q"]) == 0
    got, _ = sf.read(out, dtype="float32", always_2d=True)
    assert energy_share(got.T, 0.5 * harm) > 0.9
    assert energy_share(got.T, 0.5 * perc) < 0.3  # the percussive stem was turned down
    # mode=mix passes the mix through untouched
    assert main([*argv, "-q", "--set", "separate.mode=mix"]) == 0
    got, _ = sf.read(out, dtype="float32", always_2d=True)
    assert np.array_equal(got.T, mix)
