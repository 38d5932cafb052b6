"""Edge inputs of the block reader: sequential-only codecs, cut-off files, non-UTF-8 names."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_restorer.audio.bwf import data_extent, read_bext, safe_text
from audio_restorer.audio.io import AudioReader
from audio_restorer.cli.main import main

RATE = 8000


def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A seeded harmonic tone with a little noise, ``(frames, channels)`` for soundfile."""
    t = np.arange(round(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t + 0.3)
    x = x + 0.01 * np.random.default_rng(7).standard_normal(t.size)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of our own, so the decode folders can be watched."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _decode_folders(root: Path) -> list[Path]:
    return sorted(root.glob("audio-restorer-decode-*"))


@pytest.mark.parametrize("subtype", ["GSM610", "G721_32"])
def test_sequential_codec_reads_like_a_whole_read(tmp_path, private_tmp, subtype):
    src = tmp_path / f"{subtype}.wav"
    sf.write(str(src), _tone(2.0, RATE), RATE, subtype=subtype)
    with sf.SoundFile(str(src)) as f:
        assert not f.seekable()  # the premise: libsndfile reads this codec only in order
        whole = f.read(f.frames, dtype="float32", always_2d=True).T
    progress: list[float] = []
    with AudioReader(src, decode_progress=progress.append) as reader:
        assert reader.info.format == "WAV" and reader.info.subtype == subtype
        assert reader.info.frames == whole.shape[1]
        assert [p.name.split("-")[3] for p in _decode_folders(private_tmp)] == [str(os.getpid())]
        first = np.concatenate(list(reader.blocks(3001)), axis=1)
        np.testing.assert_array_equal(first, whole)
        reader.seek(0)
        second = np.concatenate(list(reader.blocks(4096)), axis=1)
        np.testing.assert_array_equal(second, whole)
        np.testing.assert_array_equal(reader.read(5000, 1234), whole[:, 5000:6234])
        reader.seek(7000)  # blocks go on from a seek
        np.testing.assert_array_equal(next(reader.blocks(100)), whole[:, 7000:7100])
        assert reader.warnings == []
    assert progress and progress[-1] == pytest.approx(1.0)
    assert _decode_folders(private_tmp) == []  # removed on close


def test_sequential_codec_folder_removed_when_the_decode_is_cancelled(tmp_path, private_tmp):
    src = tmp_path / "g.wav"
    sf.write(str(src), _tone(1.0, RATE), RATE, subtype="GSM610")

    def cancel(fraction: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        AudioReader(src, decode_progress=cancel)
    assert _decode_folders(private_tmp) == []


@pytest.mark.parametrize("subtype", ["GSM610", "G721_32"])
def test_cli_restores_a_sequential_codec_file(tmp_path, private_tmp, subtype):
    src = tmp_path / "speech.wav"
    sf.write(str(src), _tone(1.5, RATE), RATE, subtype=subtype)
    frames = sf.info(str(src)).frames
    out = tmp_path / "out.wav"
    assert main(["restore", str(src), "-o", str(out), "--stages", "gain,rumble", "-q"]) == 0
    info = sf.info(str(out))
    assert (info.frames, info.samplerate) == (frames, RATE)
    assert _decode_folders(private_tmp) == []


def _truncated_wav(tmp_path: Path, seconds: float = 3.0) -> Path:
    src = tmp_path / "whole.wav"
    sf.write(str(src), _tone(seconds, 22050, 2), 22050, subtype="PCM_16")
    data = src.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_data_extent_sees_a_cut_off_header(tmp_path):
    cut = _truncated_wav(tmp_path)
    assert data_extent(tmp_path / "whole.wav") == (3 * 22050 * 4, 3 * 22050 * 4)
    stated, present = data_extent(cut)
    assert stated == 3 * 22050 * 4 and present == cut.stat().st_size - 44
    for fmt, ext in [("AIFF", "aiff"), ("W64", "w64"), ("RF64", "wav")]:
        path = tmp_path / f"x.{fmt}.{ext}"
        sf.write(str(path), _tone(0.5, 22050, 2), 22050, format=fmt, subtype="PCM_16")
        assert data_extent(path) == (0.5 * 22050 * 4, 0.5 * 22050 * 4)
        path.write_bytes(path.read_bytes()[:-1000])
        stated, present = data_extent(path)
        assert (stated, present) == (0.5 * 22050 * 4, 0.5 * 22050 * 4 - 1000)


def test_cut_off_wav_warns_once_over_several_passes(tmp_path):
    cut = _truncated_wav(tmp_path)
    with AudioReader(cut) as reader:
        frames = sum(b.shape[1] for b in reader.blocks(10000))
        assert frames == pytest.approx(1.5 * 22050, abs=10)
        reader.seek(0)
        assert sum(b.shape[1] for b in reader.blocks(7000)) == frames
        reader.read(0)
        assert len(reader.warnings) == 1
        warning = reader.warnings[0]
    assert warning.startswith("cut.wav: decoded 1.50 s of the 3.00 s")
    assert "cut short" in warning


def test_intact_and_slightly_short_files_do_not_warn(tmp_path):
    src = tmp_path / "whole.wav"
    sf.write(str(src), _tone(3.0, 22050, 2), 22050, subtype="PCM_16")
    with AudioReader(src) as reader:
        for _ in reader.blocks(10000):
            pass
        reader.read(100, 10**6)
        assert reader.warnings == []
    # 2000 frames missing: within the allowance for codec padding
    data = src.read_bytes()
    src.write_bytes(data[: len(data) - 2000 * 4])
    with AudioReader(src) as reader:
        for _ in reader.blocks(10000):
            pass
        assert reader.warnings == []


def test_cut_off_mp3_warns(tmp_path):
    src = tmp_path / "whole.mp3"
    sf.write(str(src), _tone(3.0, 22050, 1), 22050, format="MP3")
    with AudioReader(src) as reader:
        for _ in reader.blocks():
            pass
        assert reader.warnings == []
    data = src.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    with AudioReader(cut) as reader:
        for _ in reader.blocks():
            pass
        assert len(reader.warnings) == 1 and "of the 3.00 s" in reader.warnings[0]


def test_cli_warns_about_a_cut_off_wav(tmp_path, capsys):
    cut = _truncated_wav(tmp_path)
    out = tmp_path / "out.wav"
    assert main(["restore", str(cut), "-o", str(out), "--stages", "gain,rumble"]) == 0
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "cut.wav: decoded 1.50 s of the 3.00 s the container states" in err
    assert sf.info(str(out)).frames == pytest.approx(1.5 * 22050, abs=10)

    intact = tmp_path / "whole.wav"
    assert main(["restore", str(intact), "-o", str(tmp_path / "o2.wav"), "--stages", "gain"]) == 0
    assert "cut short" not in capsys.readouterr().err


def test_safe_text_replaces_surrogate_escapes():
    name = os.fsdecode(b"bad\xffname.wav") if os.name == "posix" else "bad\udcffname.wav"
    assert safe_text(name) == "bad?name.wav"
    assert safe_text("Caruso – 1907") == "Caruso – 1907"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="file system needs valid names")
def test_cli_restores_a_file_with_a_non_utf8_name(tmp_path):
    folder = os.fsencode(tmp_path)
    raw = os.path.join(folder, b"bad\xffname.wav")
    try:
        with open(raw, "wb"):
            pass
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    src = Path(os.fsdecode(raw))
    sf.write(os.fsencode(src), _tone(1.0, 22050, 2), 22050, subtype="PCM_16")
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    assert main(["restore", str(src), "--out-dir", str(out_dir), "--stages", "gain", "-q"]) == 0
    out = out_dir / os.fsdecode(b"bad\xffname.restored.wav")
    assert os.path.exists(os.fsencode(out))
    assert sf.info(os.fsencode(out)).frames == 22050
    with AudioReader(out) as reader:  # libsndfile read it directly, not through ffmpeg
        assert reader.info.decoder is None
    bext = read_bext(os.fsencode(out))
    assert bext is not None and "bad?name.wav" in bext["description"]


def test_cut_off_sequential_codec_warns_once(tmp_path, private_tmp):
    src = tmp_path / "g.wav"
    sf.write(str(src), _tone(3.0, RATE), RATE, subtype="GSM610")
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with AudioReader(src) as reader:
        for _ in range(2):
            reader.seek(0)
            assert sum(b.shape[1] for b in reader.blocks(5000)) == reader.info.frames
        assert reader.info.frames == pytest.approx(1.5 * RATE, rel=0.02)
        assert len(reader.warnings) == 1 and "cut short" in reader.warnings[0]
