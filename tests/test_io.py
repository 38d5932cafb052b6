import errno
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_restorer.audio.bwf import BextInfo, read_bext
from audio_restorer.audio.dither import Quantizer
from audio_restorer.audio.io import AudioReader, AudioWriter, probe, read_audio, write_audio
from audio_restorer.audio.resample import Resampler, resample
from audio_restorer.errors import (
    CorruptFileError,
    EmptyAudioError,
    InvalidAudioError,
    OutputError,
    ParameterError,
    UnsupportedFormatError,
)
from signals import music_like


@pytest.mark.parametrize(
    ("name", "bit_depth", "tolerance"),
    [
        ("a.wav", "16", 2.5 / 32768),
        ("a.wav", "24", 2.5 / 8388608),
        ("a.wav", "32f", 0.0),
        ("a.flac", "16", 2.5 / 32768),
        ("a.flac", "24", 2.5 / 8388608),
    ],
)
def test_lossless_round_trips_within_dither(tmp_path, name, bit_depth, tolerance):
    x = music_like(48000, 0.5, 2)
    path = write_audio(tmp_path / name, x, 48000, bit_depth=bit_depth)
    y, rate = read_audio(path)
    assert rate == 48000 and y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y - x).max() <= tolerance


def test_mp3_is_written_at_320_kbps_and_keeps_length(tmp_path):
    x = music_like(44100, 3.0, 2)
    path = write_audio(tmp_path / "a.mp3", x, 44100)
    info = probe(path)
    assert info.format == "MP3"
    kbps = path.stat().st_size * 8 / 3.0 / 1000
    assert 300 < kbps < 345
    y, _ = read_audio(path)
    assert abs(y.shape[1] - x.shape[1]) <= 1152


@pytest.mark.parametrize("fmt", ["OGG", "AIFF"])
def test_other_readable_formats(tmp_path, fmt):
    x = music_like(22050, 0.5, 1)
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(str(path), x.T, 22050, format=fmt)
    y, rate = read_audio(path)
    assert rate == 22050 and y.shape[0] == 1 and abs(y.shape[1] - x.shape[1]) < 2048


def test_tpdf_dither_is_unbiased_and_decorrelates_low_levels():
    q = Quantizer(16, seed=1)
    # a -100 dBFS sine is below one LSB: plain rounding gives silence, dither keeps it
    t = np.arange(200_000)
    x = (1e-5 * np.sin(2 * np.pi * t / 100)).astype(np.float32)[None]
    out, clipped = q(x)
    y = out[0] / 32768.0
    corr = np.dot(y, x[0]) / np.dot(x[0], x[0])
    assert clipped == 0
    assert corr == pytest.approx(1.0, abs=0.1)  # the signal survives on average
    noise = y - x[0]
    assert np.std(noise) * 32768 == pytest.approx(np.sqrt(1 / 12 + 1 / 6), rel=0.05)


def test_quantizer_counts_clipping():
    out, clipped = Quantizer(16, dither=False)(np.array([[0.5, 1.5, -2.0]], dtype=np.float32))
    assert clipped == 2 and out.tolist() == [[16384, 32767, -32768]]


def test_bext_written_and_read_back(tmp_path):
    info = BextInfo(
        description="Caruso, 1907",
        originator="Audio Restorer",
        coding_history=["A=ANALOGUE,M=mono,T=78 rpm shellac", "A=PCM,F=96000,W=24"],
    )
    with AudioWriter(tmp_path / "b.wav", 96000, 1, bext=info) as w:
        w.write(np.zeros((1, 1000), dtype=np.float32))
    bext = read_bext(tmp_path / "b.wav")
    assert bext["description"] == "Caruso, 1907"
    assert bext["coding_history"][:2] == info.coding_history


def test_resampler_stream_matches_whole_and_has_the_right_length():
    x = music_like(44100, 1.0, 2)
    whole = resample(x, 44100, 48000)
    assert whole.shape == (2, 48000)
    r = Resampler(44100, 48000, 2)
    parts = [r.push(x[:, i : i + 1000]) for i in range(0, x.shape[1], 1000)] + [r.finish()]
    streamed = np.concatenate(parts, axis=1)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_reader_yields_blocks_in_the_contract(wav_file):
    path = wav_file(seconds=1.0)
    with AudioReader(path) as r:
        blocks = list(r.blocks(10_000))
    assert all(b.dtype == np.float32 and b.shape[0] == 2 for b in blocks)
    assert sum(b.shape[1] for b in blocks) == 44100


# --- bad input ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(Exception, match="no such file"):
        probe(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(EmptyAudioError, match=r"e\.wav: file is empty"):
        probe(tmp_path / "e.wav")


def test_zero_frames(tmp_path):
    sf.write(str(tmp_path / "z.wav"), np.zeros((0, 2)), 44100)
    with pytest.raises(EmptyAudioError, match="holds no audio frames"):
        probe(tmp_path / "z.wav")


def test_garbage_with_audio_extension_is_corrupt(tmp_path):
    (tmp_path / "c.wav").write_bytes(b"RIFF\x00\x00garbage" * 50)
    with pytest.raises(CorruptFileError, match=r"c\.wav: cannot be decoded"):
        probe(tmp_path / "c.wav")


def test_unknown_format(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedFormatError, match=r"notes\.txt: unsupported.*'\.txt'"):
        probe(tmp_path / "notes.txt")


def test_truncated_file_reads_what_is_there(wav_file):
    path = wav_file(seconds=1.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with AudioReader(path) as r:
        total = sum(b.shape[1] for b in r.blocks())
    assert 0 < total < 44100


def test_nan_samples_are_refused_with_time(tmp_path):
    x = np.zeros((2, 44100), dtype=np.float32)
    x[1, 22050] = np.nan
    sf.write(str(tmp_path / "n.wav"), x.T, 44100, subtype="FLOAT")
    with (
        AudioReader(tmp_path / "n.wav") as r,
        pytest.raises(
            InvalidAudioError,
            match=r"n\.wav: contains NaN or infinite samples \(first at 0\.500 s\)",
        ),
    ):
        list(r.blocks())


@pytest.mark.parametrize("rate", [4000, 768000])
def test_rates_outside_range(tmp_path, rate):
    sf.write(str(tmp_path / "r.wav"), np.zeros((100, 1)), rate)
    with pytest.raises(InvalidAudioError, match="outside the supported 8000..384000 Hz"):
        probe(tmp_path / "r.wav")


def test_too_many_channels(tmp_path):
    sf.write(str(tmp_path / "m.wav"), np.zeros((100, 40)), 44100)
    with pytest.raises(InvalidAudioError, match="has 40 channels"):
        probe(tmp_path / "m.wav")


def test_unwritable_folder_is_a_clear_error():
    with pytest.raises(OutputError, match="cannot create a file in /proc"):
        AudioWriter("/proc/out.wav", 44100, 1)


def test_bad_output_format_and_bit_depth(tmp_path):
    with pytest.raises(ParameterError, match="cannot write format 'ogg'"):
        AudioWriter(tmp_path / "x.ogg", 44100, 1)
    with pytest.raises(ParameterError, match="FLAC supports bit depths 16, 24, got 32f"):
        AudioWriter(tmp_path / "x.flac", 44100, 1, bit_depth="32f")


def test_disk_full_leaves_nothing(tmp_path, monkeypatch):
    w = AudioWriter(tmp_path / "full.wav", 44100, 1)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(w._file, "write", no_space)
    with pytest.raises(OutputError, match="disk full"):
        w.write(np.zeros((1, 10), dtype=np.float32))
    w.abort()
    assert os.listdir(tmp_path) == []


def test_unicode_names_round_trip(tmp_path):
    path = tmp_path / "Ünïcødé — Caruso 1907 「歌」.flac"
    write_audio(path, music_like(22050, 0.2, 1), 22050, bit_depth="16")
    assert read_audio(path)[0].shape == (1, 4410)
    assert Path(path).exists()
