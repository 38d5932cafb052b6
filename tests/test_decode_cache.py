"""One ffmpeg decode per file and session (DecodeCache), and clean-up after killed processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_restorer.audio import ffmpeg
from audio_restorer.audio.io import AudioReader
from audio_restorer.errors import Cancelled
from signals import music_like

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg/ffprobe not on PATH (scripts/install_system_deps.sh installs them)",
)

RATE = 44100


def _m4a(folder: Path, name: str = "clip.m4a", seconds: float = 2.0, seed: int = 3) -> Path:
    wav = folder / f"{name}.wav"
    sf.write(str(wav), 0.5 * music_like(RATE, seconds, channels=2, seed=seed).T, RATE)
    out = folder / name
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", str(out)],
        check=True,
    )
    wav.unlink()
    return out


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Temporary folders under tmp_path/tmp; returns the list of decoded sources."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    calls: list[Path] = []
    real = ffmpeg.decode

    def decode(path, *args, **kwargs):
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ffmpeg, "decode", decode)
    return calls


def _folders(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob("audio-restorer-decode-*"))


@needs_ffmpeg
def test_readers_share_one_decode_until_the_cache_closes(tmp_path, counted):
    src = _m4a(tmp_path)
    cache = ffmpeg.DecodeCache()
    with AudioReader(src) as plain:
        whole = plain.read()
    assert len(counted) == 1 and not _folders(tmp_path)  # uncached: decoded and removed
    with AudioReader(src, decode_cache=cache) as a, AudioReader(src, decode_cache=cache) as b:
        np.testing.assert_array_equal(a.read(), whole)
        np.testing.assert_array_equal(b.read(1000, 500), whole[:, 1000:1500])
        assert a.warnings == b.warnings == []
    assert len(counted) == 2  # one more decode for both cached readers
    with AudioReader(src, decode_cache=cache) as c:
        np.testing.assert_array_equal(c.read(), whole)
    assert len(counted) == 2 and len(_folders(tmp_path)) == 1 and len(cache) == 1
    # a changed file is decoded afresh
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10**9))
    with AudioReader(src, decode_cache=cache):
        pass
    assert len(counted) == 3
    cache.close()
    assert not _folders(tmp_path) and len(cache) == 0


@needs_ffmpeg
def test_least_recently_used_copy_goes_but_not_while_open(tmp_path, counted):
    one, two = _m4a(tmp_path, "one.m4a"), _m4a(tmp_path, "two.m4a", seed=4)
    cache = ffmpeg.DecodeCache(keep=1)
    held = AudioReader(one, decode_cache=cache)
    first = held._decoded.folder
    with AudioReader(two, decode_cache=cache):
        assert first.exists()  # over the limit, but still being read
    assert first.exists()
    held.close()
    assert not first.exists() and len(_folders(tmp_path)) == 1
    # dropping a file (removed from the queue) while a reader still uses it
    reader = AudioReader(two, decode_cache=cache)
    folder = reader._decoded.folder
    cache.discard(two)
    assert folder.exists() and len(cache) == 0
    np.testing.assert_equal(reader.read(0, 10).shape, (2, 10))
    reader.close()
    assert not folder.exists() and not _folders(tmp_path)


@needs_ffmpeg
def test_a_second_thread_waits_for_the_decode_and_may_cancel_meanwhile(tmp_path, counted):
    src = _m4a(tmp_path, seconds=4.0)
    cache = ffmpeg.DecodeCache()
    started, release = threading.Event(), threading.Event()

    def slow(fraction: float) -> None:
        started.set()
        release.wait(10)

    results: dict[str, object] = {}

    def first() -> None:
        with AudioReader(src, decode_progress=slow, decode_cache=cache) as r:
            results["first"] = r.info.frames

    t1 = threading.Thread(target=first)
    t1.start()
    assert started.wait(10)
    waits: list[float] = []

    def cancel(fraction: float) -> None:
        waits.append(fraction)
        raise Cancelled("cancelled by the user")

    with pytest.raises(Cancelled):  # waiting for t1's decode, the cancel is still heard
        AudioReader(src, decode_progress=cancel, decode_cache=cache)
    assert waits == [0.0]

    def second() -> None:
        with AudioReader(src, decode_progress=lambda f: None, decode_cache=cache) as r:
            results["second"] = r.info.frames

    t2 = threading.Thread(target=second)
    t2.start()
    time.sleep(0.3)
    release.set()
    t1.join(30)
    t2.join(30)
    assert results["first"] == results["second"] and len(counted) == 1
    cache.close()
    assert not _folders(tmp_path)


@needs_ffmpeg
def test_a_cancelled_decode_is_not_cached(tmp_path, counted):
    src = _m4a(tmp_path)
    cache = ffmpeg.DecodeCache()

    def cancel(fraction: float) -> None:
        raise Cancelled("cancelled by the user")

    with pytest.raises(Cancelled):
        AudioReader(src, decode_progress=cancel, decode_cache=cache)
    assert len(cache) == 0 and not _folders(tmp_path)
    with AudioReader(src, decode_cache=cache) as r:
        assert r.info.frames > RATE
    assert len(counted) == 2
    cache.close()


@pytest.mark.skipif(os.name != "posix", reason="process-id test is POSIX only")
def test_sweep_removes_only_folders_of_dead_processes(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folders = {
        "dead": tmp_path / f"audio-restorer-decode-{gone.pid}-abc",
        "alive": tmp_path / f"audio-restorer-decode-{os.getppid()}-def",
        "mine": tmp_path / f"audio-restorer-decode-{os.getpid()}-ghi",
        "old style": tmp_path / "audio-restorer-decode-xyz",
        "other": tmp_path / "something-else-1",
    }
    for folder in folders.values():
        folder.mkdir()
        (folder / "decoded.wav").write_bytes(b"RIFF")
    removed = ffmpeg.sweep_stale(tmp_path)
    assert removed == [folders["dead"]]
    assert not folders["dead"].exists()
    assert all(f.exists() for k, f in folders.items() if k != "dead")


@needs_ffmpeg
def test_decode_folders_carry_the_process_id(tmp_path, counted):
    src = _m4a(tmp_path)
    with AudioReader(src) as reader:
        assert reader._decoded.folder.name.startswith(f"audio-restorer-decode-{os.getpid()}-")


@pytest.mark.skipif(os.name != "posix", reason="process-id test is POSIX only")
def test_sweep_takes_other_prefixes_too(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    preview = tmp_path / f"audio-restorer-preview-{gone.pid}-abc"
    decode = tmp_path / f"audio-restorer-decode-{gone.pid}-abc"
    preview.mkdir()
    decode.mkdir()
    assert ffmpeg.sweep_stale(tmp_path, prefix="audio-restorer-preview-") == [preview]
    assert decode.exists() and not preview.exists()
