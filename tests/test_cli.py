import json
import os
import subprocess
import sys

import pytest
import soundfile as sf

from audio_restorer import __version__
from audio_restorer.cli.main import main
from audio_restorer.util import sha256_file


def run(*args: str) -> int:
    return main([str(a) for a in args])


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        run("--version")
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"audio-restorer {__version__}"


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "audio_restorer", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"audio-restorer {__version__}"


def test_restore_one_file_with_preset_and_set(tmp_path, wav_file):
    src = wav_file()
    before = sha256_file(src)
    out = tmp_path / "o.flac"
    code = run(
        "restore",
        src,
        "-o",
        out,
        "--preset",
        "shellac78",
        "--set",
        "eq.rumble_hz=40",
        "--set",
        "wowflutter.enabled=true",
        "--bit-depth",
        "16",
        "-q",
    )
    assert code == 0
    assert sf.info(str(out)).subtype == "PCM_16"
    doc = json.loads((tmp_path / "o.flac.restoration.json").read_text())
    assert doc["preset"] == "shellac78"
    chain = {c["stage"]: c for c in doc["chain"]}
    assert chain["eq"]["params"]["rumble_hz"] == 40.0
    assert chain["eq"]["params"]["curve"] == "shellac"
    assert "wowflutter" in chain and "declip" not in chain  # switched on / off by default
    assert doc["measurements"]["after"]["integrated_lufs"] == pytest.approx(-16.0, abs=0.1)
    assert doc["measurements"]["after"]["true_peak_dbtp"] <= -1.0
    assert sha256_file(src) == before


def test_stages_alone_and_switching_a_stage_off(tmp_path, wav_file):
    src = wav_file()
    assert run("restore", src, "-o", tmp_path / "a.wav", "--stages", "gain,rumble", "-q") == 0
    chain = json.loads((tmp_path / "a.wav.restoration.json").read_text())["chain"]
    assert [c["stage"] for c in chain] == ["gain", "rumble"]
    assert (
        run(
            "restore",
            src,
            "-o",
            tmp_path / "b.wav",
            "--preset",
            "vinyl",
            "--set",
            "declick.enabled=false",
            "-q",
        )
        == 0
    )
    chain = json.loads((tmp_path / "b.wav.restoration.json").read_text())["chain"]
    assert [c["stage"] for c in chain] == ["decrackle", "eq", "loudness", "limiter"]


def test_out_dir_with_several_inputs_and_a_bad_one(tmp_path, wav_file, capsys):
    good1, good2 = wav_file("one.wav"), wav_file("two.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 10)
    out = tmp_path / "out"
    code = run("restore", good1, bad, good2, "--out-dir", out, "--format", "flac", "-q")
    assert code == 1
    assert sorted(os.listdir(out)) == sorted(
        [
            "one.restored.flac",
            "one.restored.flac.restoration.json",
            "two.restored.flac",
            "two.restored.flac.restoration.json",
        ]
    )
    assert "bad.wav: cannot be decoded" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stages", "nope"], "unknown stage 'nope'"),
        (["--preset", "nope"], "no preset named 'nope'"),
        (["--set", "eq.rumble_hz=1000"], "eq.rumble_hz must be in 0.0..150.0 Hz"),
        (["--set", "gain.gain_db=3"], "stage 'gain' is not in the chain"),
        (["--set", "rumble"], "expects STAGE.PARAM=VALUE"),
    ],
)
def test_bad_usage_exits_2_with_a_message(tmp_path, wav_file, capsys, args, message):
    src = wav_file()
    base = [] if "--preset" in args else ["--preset", "shellac78"]
    assert run("restore", src, "-o", tmp_path / "o.wav", *base, *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()


def test_output_equal_to_input_exits_1_and_keeps_the_source(wav_file, capsys):
    src = wav_file()
    before = sha256_file(src)
    assert run("restore", src, "-o", src, "-q") == 1
    assert "sources are never overwritten" in capsys.readouterr().err
    assert sha256_file(src) == before


def test_o_file_with_two_inputs_is_usage_error(tmp_path, wav_file):
    assert run("restore", wav_file("a.wav"), wav_file("b.wav"), "-o", tmp_path / "x.wav") == 2


def test_batch_recursive_skip_existing(tmp_path, wav_file):
    src_dir = tmp_path / "in"
    (src_dir / "side B").mkdir(parents=True)
    a = wav_file("a.wav")
    a.rename(src_dir / "a.wav")
    wav_file("b.wav").rename(src_dir / "side B" / "b.wav")
    (src_dir / "notes.txt").write_text("liner notes")
    out = tmp_path / "out"
    assert run("batch", src_dir, "--out-dir", out, "--recursive", "--stages", "rumble", "-q") == 0
    assert (out / "a.restored.wav").exists() and (out / "side B" / "b.restored.wav").exists()
    stamp = (out / "a.restored.wav").stat().st_mtime_ns
    assert run("batch", src_dir, "--out-dir", out, "--recursive", "--skip-existing", "-q") == 0
    assert (out / "a.restored.wav").stat().st_mtime_ns == stamp


def test_batch_parallel_jobs(tmp_path, wav_file):
    src_dir = tmp_path / "in"
    src_dir.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        wav_file(name, seconds=0.5).rename(src_dir / name)
    out = tmp_path / "out"
    assert run("batch", src_dir, "--out-dir", out, "--jobs", "2", "--stages", "rumble", "-q") == 0
    assert len(list(out.glob("*.wav"))) == 3


def test_stages_and_presets_listings(capsys):
    assert run("stages") == 0
    text = capsys.readouterr().out
    assert "rumble" in text and "cutoff_hz" in text and "Hz" in text
    assert run("stages", "--json") == 0
    docs = json.loads(capsys.readouterr().out)
    rumble = next(d for d in docs if d["name"] == "rumble")
    assert rumble["params"][0] == {
        "name": "cutoff_hz",
        "type": "float",
        "default": 25.0,
        "help": "High-pass corner frequency (-3 dB).",
        "min": 5.0,
        "max": 300.0,
        "step": 1.0,
        "unit": "Hz",
    }
    assert run("presets") == 0
    names = capsys.readouterr().out
    for name in ("shellac78", "cylinder", "tape", "vinyl", "mp3-lofi", "speech-archive", "none"):
        assert name in names


def test_analyze_prints_json(wav_file, capsys):
    src = wav_file(seconds=1.0)
    assert run("analyze", src) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sample_rate"] == 44100 and doc["channels"] == 2
    for key in (
        "peak_dbfs",
        "true_peak_dbtp",
        "integrated_lufs",
        "clipped_ratio",
        "dc_offset",
        "noise_floor_dbfs",
        "bandwidth_hz",
        "duration_s",
    ):
        assert key in doc


def test_analyze_bad_file_exits_1(tmp_path, capsys):
    (tmp_path / "x.wav").write_bytes(b"")
    assert run("analyze", tmp_path / "x.wav") == 1
    assert "x.wav: file is empty" in capsys.readouterr().err
