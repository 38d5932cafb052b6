"""Reading M4A/AAC/ALAC and WMA through ffmpeg: content, random access, errors, clean-up, CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import correlate

from audio_restorer.audio import ffmpeg
from audio_restorer.audio.io import READ_EXTENSIONS, AudioReader, probe, read_audio
from audio_restorer.cli.main import main
from audio_restorer.errors import Cancelled, CorruptFileError, UnsupportedFormatError
from audio_restorer.util import sha256_file
from signals import music_like

if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
    pytest.skip(
        "ffmpeg/ffprobe not on PATH (scripts/install_system_deps.sh installs them)",
        allow_module_level=True,
    )

RATE = 44100
SECONDS = 2.0
N = int(RATE * SECONDS)
#: encoders add priming / padding: decoded lengths may differ from the original by this much
LENGTH_TOLERANCE = 2048


def _encode(wav: Path, out: Path, *codec_args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), *codec_args, str(out)],
        check=True,
    )
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A seeded stereo music-like clip, as WAV and encoded by ffmpeg (once for the module)."""
    folder = tmp_path_factory.mktemp("sources")
    x = 0.5 * music_like(RATE, SECONDS, channels=2, seed=7)
    x[1] *= 0.5  # channels differ, so a swap would show
    wav = folder / "orig.wav"
    sf.write(str(wav), x.T, RATE, subtype="PCM_16")
    return {
        "wav": wav,
        "m4a": _encode(wav, folder / "clip.m4a", "-c:a", "aac", "-b:a", "192k"),
        "aac": _encode(wav, folder / "clip.aac", "-c:a", "aac", "-b:a", "192k"),
        "wma": _encode(wav, folder / "clip.wma", "-c:a", "wmav2", "-b:a", "192k"),
        "alac": _encode(wav, folder / "alac.m4a", "-c:a", "alac", "-sample_fmt", "s16p"),
    }


def _aligned_snr_db(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 4096) -> float:
    """SNR (dB) of ``decoded`` against ``reference``, both ``(channels, frames)``, after
    removing the integer delay (either sign, up to ``max_lag``) that best aligns them (encoders
    add priming samples; decoders trim them more or less exactly)."""
    ref, dec = reference.astype(np.float64), decoded.astype(np.float64)
    corr = correlate(dec[0], ref[0], mode="full", method="fft")
    lags = np.arange(-ref.shape[1] + 1, dec.shape[1])
    near = np.abs(lags) <= max_lag
    lag = int(lags[near][np.argmax(corr[near])])
    if lag >= 0:
        dec = dec[:, lag:]
    else:
        ref = ref[:, -lag:]
    length = min(ref.shape[1], dec.shape[1])
    r, d = ref[:, :length], dec[:, :length]
    return float(10 * np.log10(np.sum(r**2) / np.sum((r - d) ** 2)))


# Floors sit well below what ffmpeg 5.1's encoders give at 192 kbps (AAC 24.6 dB, its low-pass
# removes the clip's faint broadband noise; WMA 33.3 dB) and far above a misaligned, swapped or
# wrongly scaled decode (about 0 dB).
@pytest.mark.parametrize(
    ("key", "label", "floor_db"),
    [
        ("m4a", "M4A (AAC, via ffmpeg)", 18.0),
        ("aac", "ADTS (AAC, via ffmpeg)", 18.0),
        ("wma", "WMA (WMA 2, via ffmpeg)", 25.0),
    ],
)
def test_lossy_files_decode_to_the_original(sources, key, label, floor_db):
    reference, _ = sf.read(str(sources["wav"]), dtype="float32", always_2d=True)
    with AudioReader(sources[key]) as reader:
        info = reader.info
        audio = reader.read()
    assert info.format == label
    assert info.decoder == f"ffmpeg {ffmpeg.find_tools().version}"
    assert (info.rate, info.channels) == (RATE, 2)
    assert abs(info.frames - N) <= LENGTH_TOLERANCE
    assert audio.shape == (2, info.frames) and audio.dtype == np.float32
    assert _aligned_snr_db(reference.T, audio) > floor_db
    # the quieter right channel stays the right channel
    ratio = np.std(reference[:, 1]) / np.std(reference[:, 0])
    assert np.std(audio[1]) / np.std(audio[0]) == pytest.approx(ratio, rel=0.05)


def test_lossless_alac_is_exact(sources):
    reference, _ = sf.read(str(sources["wav"]), dtype="float32", always_2d=True)
    audio, rate = read_audio(sources["alac"])
    assert rate == RATE
    np.testing.assert_array_equal(audio, reference.T)


def test_probe_estimates_without_decoding(sources, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    info = probe(sources["m4a"])
    assert info.codec == "aac" and info.subtype == "AAC"
    assert abs(info.frames - N) <= LENGTH_TOLERANCE
    assert info.to_dict()["decoder"].startswith("ffmpeg ")
    assert not list(tmp_path.iterdir())  # nothing decoded, no temporary folder made


def test_random_access_and_blocks_agree_with_the_whole(sources):
    with AudioReader(sources["m4a"]) as reader:
        whole = reader.read()
        part = reader.read(30000, 5000)
        tail = reader.read(reader.info.frames - 100, 1000)  # past the end: what is there
        reader.seek(0)
        blocks = np.concatenate(list(reader.blocks(8191)), axis=1)
        reader.seek(1234)
        first = next(reader.blocks(10))
    np.testing.assert_array_equal(part, whole[:, 30000:35000])
    np.testing.assert_array_equal(tail, whole[:, -100:])
    np.testing.assert_array_equal(blocks, whole)
    np.testing.assert_array_equal(first, whole[:, 1234:1244])


def test_temporary_file_lives_outside_the_source_folder_and_is_removed(sources, tmp_path):
    src = tmp_path / "in.m4a"
    shutil.copy(sources["m4a"], src)
    before = sha256_file(src)
    reader = AudioReader(src)
    decoded = reader._decoded.path
    assert decoded.is_file() and decoded.parent != src.parent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.m4a"]
    reader.close()
    assert not decoded.parent.exists()
    assert sha256_file(src) == before


def test_cancel_during_decode_stops_ffmpeg_and_cleans_up(sources, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[float] = []

    def cancel(fraction: float) -> None:
        seen.append(fraction)
        raise Cancelled("cancelled by the user")

    with pytest.raises(Cancelled):
        AudioReader(sources["m4a"], decode_progress=cancel)
    assert seen and 0.0 <= seen[0] <= 1.0
    assert not list(tmp_path.iterdir())


def test_progress_reaches_one(sources):
    seen: list[float] = []
    with AudioReader(sources["wma"], decode_progress=seen.append):
        pass
    assert seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)


def test_truncated_m4a_is_corrupt_with_ffmpegs_reason(sources, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    bad = tmp_path / "cut short.m4a"
    bad.write_bytes(sources["m4a"].read_bytes()[:6000])
    with pytest.raises(
        CorruptFileError, match=r"cut short\.m4a: .*truncated \(moov atom not found"
    ):
        AudioReader(bad)
    assert not list((tmp_path / "tmp").iterdir())


def test_cut_off_faststart_m4a_reads_what_is_there_and_warns(sources, tmp_path):
    whole = _encode(sources["wav"], tmp_path / "fs.m4a", "-c:a", "aac", "-movflags", "+faststart")
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    with AudioReader(cut) as reader:
        frames = reader.info.frames
        warnings = reader.warnings
    assert 0.3 * N < frames < 0.8 * N
    assert any("ffmpeg reported decoding errors" in w for w in warnings)
    assert any(re.search(r"cut\.m4a: decoded \d\.\d\d s of the 2\.00 s", w) for w in warnings)
    with AudioReader(sources["m4a"]) as reader:
        assert reader.warnings == []


def test_garbage_m4a_is_corrupt(tmp_path):
    bad = tmp_path / "noise.m4a"
    bad.write_bytes(np.random.default_rng(3).bytes(5000))
    with pytest.raises(CorruptFileError, match=r"noise\.m4a: cannot be decoded"):
        probe(bad)


def test_missing_ffmpeg_says_to_install_it(sources, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no ffmpeg, no ffprobe
    assert ffmpeg.find_tools() is None
    with pytest.raises(
        UnsupportedFormatError, match=r"clip\.m4a: .*ffmpeg.*install ffmpeg to read \.m4a files"
    ):
        AudioReader(sources["m4a"])
    assert probe(sources["wav"]).format == "WAV"  # libsndfile formats do not need it


def test_aac_stream_named_mp3_falls_back_to_ffmpeg(sources, tmp_path):
    fake = tmp_path / "really aac.mp3"
    shutil.copy(sources["aac"], fake)
    info = probe(fake)
    assert info.format == "ADTS (AAC, via ffmpeg)"


def test_folder_scan_extensions_include_ffmpeg_formats():
    assert {".m4a", ".aac", ".wma", ".ac3", ".ape", ".wv", ".mka", ".webm"} <= set(READ_EXTENSIONS)
    assert ".wav" in READ_EXTENSIONS and ".txt" not in READ_EXTENSIONS


def test_cli_restores_an_m4a_folder_with_provenance(sources, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = tmp_path / "in"
    folder.mkdir()
    src = folder / "tape.m4a"
    shutil.copy(sources["m4a"], src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = main(["restore", str(folder), "--out-dir", str(out_dir), "--preset", "none", "-q"])
    assert code == 0
    out = out_dir / "tape.restored.wav"
    decoded, _ = read_audio(src)
    restored, rate = sf.read(str(out), dtype="float32", always_2d=True)
    assert rate == RATE and restored.shape == decoded.T.shape
    np.testing.assert_allclose(restored.T, decoded, atol=2e-4)  # 24-bit dithered copy
    doc = json.loads((out_dir / "tape.restored.wav.restoration.json").read_text())
    assert doc["input"]["format"] == "M4A (AAC, via ffmpeg)"
    assert doc["input"]["decoder"].startswith("ffmpeg ")
    assert doc["input"]["sha256"] == sha256_file(src)
    history = doc["output"]["bext_coding_history"][0]
    assert history.startswith("A=AAC,F=44100,M=stereo,T=source tape.m4a decoded by ffmpeg ")
    assert not list((tmp_path / "tmp").iterdir())


def test_cli_restore_m4a_with_a_preset(sources, tmp_path):
    out = tmp_path / "out.wav"
    code = main(["restore", str(sources["m4a"]), "-o", str(out), "--preset", "vinyl", "-q"])
    assert code == 0
    info = sf.info(str(out))
    assert (info.samplerate, info.channels) == (RATE, 2)
    assert abs(info.frames - N) <= LENGTH_TOLERANCE


def test_runner_reports_decoding_and_its_cancel_stops_it(sources, tmp_path, monkeypatch):
    """The runner shows the decode's progress, its cancel token stops the decode (no output,
    no temporary folder), and ffmpeg's damage warnings reach the result."""
    from audio_restorer.pipeline.cancel import CancelToken
    from audio_restorer.pipeline.chain import Chain
    from audio_restorer.pipeline.runner import restore_file as restore

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    messages: list[str] = []
    out = tmp_path / "out.wav"
    result = restore(sources["m4a"], out, Chain(), progress=lambda f, m: messages.append(m))
    assert any(re.match(r"clip\.m4a: decoding \d+%", m) for m in messages)
    assert out.is_file() and result.warnings == []

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        restore(sources["wma"], tmp_path / "never.wav", Chain(), cancel=token)
    assert not (tmp_path / "never.wav").exists()
    assert not list((tmp_path / "tmp").iterdir())

    whole = _encode(sources["wav"], tmp_path / "fs.m4a", "-c:a", "aac", "-movflags", "+faststart")
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    result = restore(cut, tmp_path / "cut.wav", Chain())
    assert any("cut.m4a: decoded" in w for w in result.warnings)


def test_a_full_temporary_folder_is_named_as_such(tmp_path):
    """ffmpeg's "No space left on device" is not the source's fault: the message says where
    the space ran out and how to choose another folder."""
    err = ffmpeg._decode_error(
        tmp_path / "a.m4a", "Error writing trailer: No space left on device", tmp_path / "d"
    )
    assert not isinstance(err, CorruptFileError)
    assert "a.m4a" in str(err) and "is full" in str(err) and "TMPDIR" in str(err)
    err = ffmpeg._decode_error(tmp_path / "a.m4a", "moov atom not found", tmp_path / "d")
    assert isinstance(err, CorruptFileError) and "moov atom not found" in str(err)
