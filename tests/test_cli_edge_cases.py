"""Edge cases an audit of the CLI found: nothing lost, nothing silently skipped, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from audio_restorer.cli.main import main
from audio_restorer.util import sha256_file


def run(*args: object) -> int:
    return main([str(a) for a in args])


def test_report_on_the_output_path_is_refused_before_any_work(tmp_path, wav_file, capsys):
    src = wav_file()
    out = tmp_path / "x.wav"
    assert run("restore", src, "-o", out, "--report", out, "-q") == 1
    assert "report path is the output" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_a_name_too_long_is_a_clear_error(tmp_path, wav_file, capsys):
    src = wav_file()
    assert run("restore", src, "-o", tmp_path / ("a" * 300 + ".wav"), "-q") == 1
    err = capsys.readouterr().err
    assert "File name too long" in err and "Traceback" not in err
    # the name fits, the report's sidecar name does not: refused before any work
    name = "b" * 245 + ".wav"
    assert run("restore", src, "-o", tmp_path / name, "-q") == 1
    assert "unusable output path" in capsys.readouterr().err
    assert not list(tmp_path.glob(".b*"))


def test_unforeseen_failure_of_one_file_does_not_stop_the_batch(
    tmp_path, wav_file, monkeypatch, capsys
):
    from audio_restorer.cli import restore as cli_restore

    real = cli_restore.restore_file

    def flaky(src, dst, *args, **kwargs):
        if src.name == "b.wav":
            raise ValueError("something unforeseen")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(cli_restore, "restore_file", flaky)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        wav_file(f"in/{name}", seconds=0.5)
    out = tmp_path / "out"
    assert run("batch", folder, "--out-dir", out, "--stages", "gain", "-q") == 1
    assert sorted(p.name for p in out.glob("*.wav")) == ["a.restored.wav", "c.restored.wav"]
    assert "internal error: ValueError: something unforeseen" in capsys.readouterr().err


def test_samples_far_beyond_full_scale_give_a_sound_output_and_report(tmp_path, capsys):
    src = tmp_path / "huge.wav"
    t = np.arange(44100) / 44100
    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)) * 1e18
    sf.write(str(src), x, 44100, subtype="FLOAT")
    code = run("restore", src, "-o", tmp_path / "o.wav", "--preset", "tape", "-q")
    assert code == 0 and "Traceback" not in capsys.readouterr().err
    out, _ = sf.read(str(tmp_path / "o.wav"))
    assert np.isfinite(out).all() and np.max(np.abs(out)) <= 1.0
    report = json.loads((tmp_path / "o.wav.restoration.json").read_text())  # no NaN in it
    assert report["output"]["frames"] == x.size


def test_batch_into_its_own_folder_is_refused(tmp_path, wav_file, capsys):
    (tmp_path / "tapes").mkdir()
    wav_file("tapes/t1.wav", seconds=0.5)
    assert run("batch", tmp_path / "tapes", "--out-dir", tmp_path / "tapes") == 2
    assert run("batch", tmp_path / "tapes", "--out-dir", tmp_path) == 2
    assert "is the input folder or contains it" in capsys.readouterr().err
    # a folder inside the input folder is fine
    assert run("batch", tmp_path / "tapes", "--out-dir", tmp_path / "tapes" / "r", "-q") == 0
    assert (tmp_path / "tapes" / "r" / "t1.restored.wav").exists()


def test_batch_report_option_is_refused(tmp_path, wav_file, capsys):
    (tmp_path / "in").mkdir()
    wav_file("in/a.wav", seconds=0.5)
    code = run("batch", tmp_path / "in", "--out-dir", tmp_path / "o", "--report", tmp_path / "r")
    assert code == 2 and "--report takes one input" in capsys.readouterr().err


def test_extension_and_format_must_agree(tmp_path, wav_file, capsys):
    src = wav_file()
    assert run("restore", src, "-o", tmp_path / "g.flac", "--format", "wav") == 2
    assert "make them agree" in capsys.readouterr().err
    assert run("restore", src, "-o", tmp_path / "g.flac", "--format", "flac", "-q") == 0


def test_a_noise_range_can_be_given_by_two_set_options(tmp_path, wav_file):
    src = wav_file(seconds=3.0)
    out = tmp_path / "d.wav"
    args = ["--stages", "denoise", "-q"]
    start, end = "--set=denoise.profile_start_s=0.5", "--set=denoise.profile_end_s=1.5"
    assert run("restore", src, "-o", out, *args, start, end) == 0
    report = json.loads((tmp_path / "d.wav.restoration.json").read_text())
    params = report["chain"][0]["params"]
    assert params["profile_start_s"] == 0.5 and params["profile_end_s"] == 1.5
    # only one of them is still an error, after all the options are in
    assert run("restore", src, "-o", tmp_path / "e.wav", *args, start) == 2


def test_enabled_must_be_a_boolean_in_a_preset_file(tmp_path, wav_file, capsys):
    preset = tmp_path / "p.json"
    chain = [{"stage": "gain", "enabled": "false", "params": {"gain_db": -20}}]
    preset.write_text(
        json.dumps({"format": "audio-restorer-preset", "version": 1, "name": "x", "chain": chain})
    )
    assert run("restore", wav_file(), "-o", tmp_path / "p.wav", "--preset", preset) == 2
    assert "'enabled' of stage 'gain' must be true or false" in capsys.readouterr().err


def test_short_file_findings_say_why_loudness_is_missing(tmp_path, capsys):
    src = tmp_path / "short.wav"
    t = np.arange(int(0.3 * 44100)) / 44100
    sf.write(str(src), 0.3 * np.sin(2 * np.pi * 440 * t), 44100)
    assert run("restore", src, "-o", tmp_path / "s.wav", "--stages", "loudness") == 0
    err = capsys.readouterr().err
    assert "nan" not in err and "shorter than one 0.4 s block" in err


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_removes_partial_files(tmp_path, signum):
    src = tmp_path / "long.wav"
    rate = 44100
    t = np.arange(60 * rate) / rate
    sf.write(str(src), 0.3 * np.sin(2 * np.pi * 220 * t), rate, subtype="PCM_16")
    before = sha256_file(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "o.wav"
    cmd = [sys.executable, "-m", "audio_restorer", "restore", str(src), "-o", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--preset", "tape", "-q"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()) and time.monotonic() < deadline:  # work has begun
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "terminated; no partial output was kept" in err
    assert not list(out_dir.iterdir())
    assert sha256_file(src) == before


def test_removed_names_an_enabled_stage_that_offers_it(tmp_path, wav_file, capsys):
    src = wav_file()
    out = tmp_path / "r.wav"
    assert run("restore", src, "-o", out, "--stages", "gain", "--removed", "declick") == 2
    assert "not an enabled stage of the chain (gain)" in capsys.readouterr().err
    assert run("restore", src, "-o", out, "--stages", "gain", "--removed", "gain") == 2
    assert "does not offer a 'removed' signal" in capsys.readouterr().err
    args = ["--stages", "declick,gain", "--set", "declick.enabled=false", "--removed", "declick"]
    assert run("restore", src, "-o", out, *args) == 2
    assert not out.exists()


def test_a_chain_that_leaves_no_audio_fails_and_writes_nothing(tmp_path, capsys):
    src = tmp_path / "one.wav"
    sf.write(str(src), np.array([0.1]), 44100)
    out = tmp_path / "o.wav"
    assert run("restore", src, "-o", out, "--rate", "8000", "-q") == 1
    assert "left no audio" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".*"))


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_termination_of_a_parallel_batch_stops_its_workers_cleanly(tmp_path):
    rate = 44100
    t = np.arange(60 * rate) / rate
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c"):
        sf.write(str(folder / f"{name}.wav"), 0.3 * np.sin(2 * np.pi * 220 * t), rate)
    out_dir = tmp_path / "out"
    cmd = [sys.executable, "-m", "audio_restorer", "batch", str(folder), "--out-dir", str(out_dir)]
    proc = subprocess.Popen(
        [*cmd, "--jobs", "2", "--preset", "shellac78", "-q"], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (out_dir.is_dir() and any(out_dir.iterdir())):
        time.sleep(0.05)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 143, err
    assert time.monotonic() - started < 5  # the running files stopped, the queued one never began
    assert not list(out_dir.iterdir())  # no partial file, and no file finished after the signal
