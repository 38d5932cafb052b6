import json
import os

import numpy as np
import pytest
import soundfile as sf

from audio_restorer.audio.bwf import read_bext
from audio_restorer.audio.io import read_audio
from audio_restorer.errors import Cancelled, InvalidAudioError, OutputError, ParameterError
from audio_restorer.pipeline.cancel import CancelToken
from audio_restorer.pipeline.chain import Chain
from audio_restorer.pipeline.runner import RestoreOptions, restore_file
from audio_restorer.stages import create_stage
from audio_restorer.util import sha256_file

FLOAT = RestoreOptions(bit_depth="32f", report=False)


def chain_rumble_peak() -> Chain:
    """rumble (streaming) then a peak normaliser (analysis pass → two passes, one spill)."""
    chain = Chain.of("rumble", "gain")
    chain.set_value("gain.mode", "peak")
    return chain


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 96000, 384000])
@pytest.mark.parametrize("seconds", [0.00002, 0.5, 1.37])
def test_length_rate_and_channels_are_kept(tmp_path, wav_file, rate, seconds):
    src = wav_file(rate=rate, seconds=max(seconds, 1 / rate), channels=1)
    frames = sf.info(str(src)).frames
    res = restore_file(
        src,
        tmp_path / "out.wav",
        chain_rumble_peak(),
        RestoreOptions(block_frames=4096, report=False),
    )
    info = sf.info(str(tmp_path / "out.wav"))
    assert (info.frames, info.samplerate, info.channels) == (frames, rate, 1)
    assert res.frames_out == frames


@pytest.mark.parametrize("channels", [1, 2, 8, 12])
def test_many_channels(tmp_path, wav_file, channels):
    src = wav_file(channels=channels, seconds=0.3)
    restore_file(src, tmp_path / "o.wav", Chain.of("rumble"), RestoreOptions(report=False))
    assert sf.info(str(tmp_path / "o.wav")).channels == channels


def test_formats_that_cannot_hold_the_audio_fail_before_any_work(tmp_path, wav_file):
    src = wav_file(channels=12, seconds=0.3)
    with pytest.raises(ParameterError, match="FLAC holds at most 8 channels"):
        restore_file(src, tmp_path / "o.flac", Chain.of("rumble"))
    with pytest.raises(ParameterError, match="MP3 holds 1 or 2 channels"):
        restore_file(src, tmp_path / "o.mp3", Chain.of("rumble"))
    assert sorted(os.listdir(tmp_path)) == ["in.wav"]


@pytest.mark.parametrize("block", [1000, 4097, 1 << 16])
def test_block_wise_equals_whole_file(tmp_path, wav_file, block):
    src = wav_file(seconds=1.5, subtype="FLOAT")
    x, rate = read_audio(src)
    expected = create_stage("gain", {"mode": "peak"})(create_stage("rumble")(x, rate), rate)
    opts = RestoreOptions(bit_depth="32f", report=False, block_frames=block)
    restore_file(src, tmp_path / "o.wav", chain_rumble_peak(), opts)
    y, _ = read_audio(tmp_path / "o.wav")
    np.testing.assert_allclose(y, expected, atol=1e-6)


def test_same_run_twice_gives_identical_bytes(tmp_path, wav_file):
    src = wav_file(seconds=1.0)
    for name in ("a.wav", "b.wav"):
        restore_file(src, tmp_path / name, chain_rumble_peak(), RestoreOptions(bit_depth="16"))
    assert sha256_file(tmp_path / "a.wav") == sha256_file(tmp_path / "b.wav")


def test_cancel_mid_file_leaves_nothing(tmp_path, wav_file):
    src = wav_file(seconds=3.0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    token = CancelToken()

    def progress(fraction, message):
        if fraction > 0.4:
            token.cancel()

    with pytest.raises(Cancelled):
        restore_file(
            src,
            out_dir / "o.wav",
            chain_rumble_peak(),
            RestoreOptions(block_frames=4096),
            progress=progress,
            cancel=token,
        )
    assert os.listdir(out_dir) == []


def test_existing_output_survives_a_cancel(tmp_path, wav_file):
    src = wav_file(seconds=2.0)
    out = tmp_path / "o.wav"
    out.write_bytes(b"previous result")
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        restore_file(src, out, Chain.of("rumble"), cancel=token)
    assert out.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["in.wav", "o.wav"]


def test_progress_is_monotonic_and_ends_at_one(tmp_path, wav_file):
    src = wav_file(seconds=2.0)
    seen = []
    restore_file(
        src,
        tmp_path / "o.wav",
        chain_rumble_peak(),
        RestoreOptions(block_frames=8192),
        progress=lambda f, m: seen.append((f, m)),
    )
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("pass 2/2" in m for _, m in seen)


def test_output_equal_to_input_is_refused(wav_file):
    src = wav_file()
    before = sha256_file(src)
    with pytest.raises(OutputError, match="output path is the input file"):
        restore_file(src, src, Chain.of("rumble"))
    assert sha256_file(src) == before


def test_removed_signal_is_input_minus_output(tmp_path, wav_file):
    src = wav_file(seconds=1.0, subtype="FLOAT")
    x, rate = read_audio(src)

    class Removing(type(create_stage("rumble"))):
        offers_removed = True

    stage = Removing()
    restore_file(
        src,
        tmp_path / "r.wav",
        [stage],
        RestoreOptions(bit_depth="32f", report=False, removed="rumble"),
    )
    removed, _ = read_audio(tmp_path / "r.wav")
    np.testing.assert_allclose(removed, x - stage(x, rate), atol=1e-6)
    with pytest.raises(ParameterError, match="does not offer"):
        restore_file(src, tmp_path / "r2.wav", Chain.of("gain"), RestoreOptions(removed="gain"))


def test_output_rate_conversion(tmp_path, wav_file):
    src = wav_file(seconds=1.0)
    res = restore_file(
        src, tmp_path / "o.flac", Chain(), RestoreOptions(rate=48000, bit_depth="16")
    )
    info = sf.info(str(tmp_path / "o.flac"))
    assert (info.samplerate, info.frames) == (48000, 48000)
    assert res.rate == 48000


def test_provenance_sidecar_and_bext(tmp_path, wav_file):
    src = wav_file(seconds=1.0)
    out = tmp_path / "restored.wav"
    res = restore_file(src, out, chain_rumble_peak(), RestoreOptions(preset="demo"))
    doc = json.loads((tmp_path / "restored.wav.restoration.json").read_text())
    assert res.report_path == tmp_path / "restored.wav.restoration.json"
    assert doc["input"]["sha256"] == sha256_file(src)
    assert doc["output"]["sha256"] == sha256_file(out)
    assert doc["input"]["size_bytes"] == src.stat().st_size
    assert [s["stage"] for s in doc["chain"]] == ["rumble", "gain"]
    assert doc["chain"][1]["params"]["mode"] == "peak"
    assert doc["chain"][0]["params"] == {"cutoff_hz": 25.0, "order": 4, "phase": "linear"}
    assert doc["software"]["dependencies"]["numpy"]
    assert doc["device"] == "cpu" and doc["preset"] == "demo"
    assert doc["measurements"]["after"]["peak_dbfs"] == pytest.approx(-1.0, abs=0.01)
    assert doc["measurements"]["before"]["frames"] == 44100
    bext = read_bext(out)
    assert bext["originator_reference"] == doc["input"]["sha256"][:32]
    history = bext["coding_history"]
    assert history[0].startswith("A=PCM,F=44100,W=16,M=stereo,T=source in.wav")
    assert "rumble(cutoff_hz=25.0; order=4; phase=linear)" in history[1]
    assert "gain(mode=peak" in history[2]


def test_clipping_in_the_output_is_reported(tmp_path, wav_file):
    src = wav_file(seconds=0.5)
    chain = Chain.of("gain")
    chain.set_value("gain.gain_db", "20")
    res = restore_file(src, tmp_path / "o.wav", chain, RestoreOptions(bit_depth="16"))
    assert res.warnings and "clipped" in res.warnings[0]


def test_nan_input_fails_cleanly_and_leaves_nothing(tmp_path):
    x = np.zeros((1, 44100), dtype=np.float32)
    x[0, 30000] = np.inf
    src = tmp_path / "in.wav"
    sf.write(str(src), x.T, 44100, subtype="FLOAT")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InvalidAudioError, match=r"in\.wav: contains NaN or infinite samples"):
        restore_file(src, out_dir / "o.wav", Chain.of("rumble"), RestoreOptions(block_frames=4096))
    assert os.listdir(out_dir) == []


def test_disk_full_mid_run_leaves_nothing(tmp_path, wav_file, monkeypatch):
    import errno

    src = wav_file(seconds=2.0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    calls = {"n": 0}
    original = sf.SoundFile.write

    def write_until_full(self, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", write_until_full)
    with pytest.raises(OutputError, match="disk full while writing"):
        restore_file(src, out_dir / "o.wav", chain_rumble_peak(), RestoreOptions(block_frames=4096))
    assert calls["n"] == 3
    assert os.listdir(out_dir) == []


def test_unicode_paths_end_to_end(tmp_path, wav_file):
    src = wav_file("Ænima — Caruso «1907».wav", seconds=0.5)
    out = tmp_path / "résultat 復元.flac"
    res = restore_file(src, out, Chain.of("rumble"))
    assert out.exists() and res.report_path.exists()
    assert json.loads(res.report_path.read_text(encoding="utf-8"))["input"]["path"].endswith(
        "Ænima — Caruso «1907».wav"
    )


def test_stems_are_exported_next_to_the_mix_and_sum_to_it(tmp_path, wav_file):
    from audio_restorer.cli.main import main

    src = wav_file(seconds=1.5, subtype="FLOAT")
    out = tmp_path / "mix.wav"
    code = main(
        [
            "restore",
            str(src),
            "-o",
            str(out),
            "--stages",
            "separate",
            "--set",
            "separate.export=raw",
            "--bit-depth",
            "32f",
            "-q",
        ]
    )
    assert code == 0
    stems = sorted(p.name for p in tmp_path.glob("mix.*.wav"))
    assert stems == ["mix.harmonic.wav", "mix.percussive.wav", "mix.residual.wav"]
    total = sum(read_audio(tmp_path / name)[0] for name in stems)
    mix, _ = read_audio(out)
    np.testing.assert_allclose(total, mix, atol=1e-5)
    doc = json.loads((tmp_path / "mix.wav.restoration.json").read_text())
    assert sorted(s["stem"] for s in doc["stems"]) == ["harmonic", "percussive", "residual"]
    assert all(len(s["sha256"]) == 64 for s in doc["stems"])


def test_cancel_leaves_no_stem_files(tmp_path, wav_file):
    src = wav_file(seconds=2.0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    chain = Chain.of("separate")
    chain.set_value("separate.export", "both")
    token = CancelToken()

    def progress(fraction, message):
        if fraction > 0.3:
            token.cancel()

    with pytest.raises(Cancelled):
        restore_file(
            src,
            out_dir / "mix.wav",
            chain,
            RestoreOptions(block_frames=4096),
            progress=progress,
            cancel=token,
        )
    assert os.listdir(out_dir) == []


def test_big_releases_reach_the_next_stage_in_bounded_pieces(tmp_path, wav_file, monkeypatch):
    # dehum releases whole windows (tens of seconds); the next stage's analysis and stream
    # must get them in pieces (memory), with the same output whatever the piece size
    from audio_restorer.stages import base
    from audio_restorer.stages.denoise import NoiseAnalyzer

    src = wav_file(rate=8000, seconds=6.0, channels=2)
    chain = Chain.of("dehum", "denoise")
    whole = tmp_path / "whole.wav"
    restore_file(src, whole, chain, FLOAT)
    seen: list[int] = []
    original = NoiseAnalyzer.update

    def spy(self, block):
        seen.append(block.shape[1])
        return original(self, block)

    monkeypatch.setattr(NoiseAnalyzer, "update", spy)
    monkeypatch.setattr(base, "HANDOFF_FRAMES", 1000)
    pieces = tmp_path / "pieces.wav"
    restore_file(src, pieces, chain, FLOAT)
    assert seen and max(seen) <= 1000
    np.testing.assert_allclose(sf.read(str(pieces))[0], sf.read(str(whole))[0], atol=1e-6)


def test_what_the_analyses_decided_is_reported(tmp_path, capsys):
    """dehum and denoise say what they found (mains, noise profile and level) in the result,
    the report and the CLI's summary; a chain of stages that decide nothing reports nothing."""
    from audio_restorer.cli.main import main

    rate = 22050
    t = np.arange(6 * rate) / rate
    rng = np.random.default_rng(5)
    music = 0.3 * np.sin(2 * np.pi * 330 * t) * (t > 1.5)
    x = music + 0.01 * np.sin(2 * np.pi * 50.02 * t) + 0.003 * rng.standard_normal(t.size)
    src = tmp_path / "in.wav"
    sf.write(str(src), x, rate, subtype="FLOAT")
    res = restore_file(src, tmp_path / "out.wav", Chain.of("dehum", "denoise"))
    found = {f["stage"]: f for f in res.findings}
    assert found["dehum"]["mains_hz"] == 50.0 and found["dehum"]["found_by"] == "spectrum"
    assert 49.9 < found["dehum"]["fundamental_hz"][0] <= found["dehum"]["fundamental_hz"][1] < 50.1
    assert found["denoise"]["noise_profile"] == "auto"
    # the hum is gone before denoise measures: the level is the hiss's, -50.5 dBFS RMS
    assert abs(found["denoise"]["noise_rms_dbfs"][0] - 20 * np.log10(0.003)) < 1.0
    doc = json.loads(res.report_path.read_text(encoding="utf-8"))
    assert [f["stage"] for f in doc["findings"]] == ["dehum", "denoise"]
    assert restore_file(src, tmp_path / "o2.wav", Chain.of("rumble"), FLOAT).findings == []

    assert main(["restore", str(src), "-o", str(tmp_path / "cli.wav"), "--stages", "dehum"]) == 0
    assert "dehum: 50 Hz hum found in the spectrum" in capsys.readouterr().err
