"""Reading and writing audio files in blocks (soundfile / libsndfile, ffmpeg for other codecs).

This is the only place where files meet the audio contract: readers yield ``float32``
``(channels, frames)`` blocks, writers take them. Nothing here loads a whole file, and writers
are atomic: they write a hidden temporary file next to the target and rename it over the target
only on :meth:`AudioWriter.commit`, so a crash, a full disk or a cancel never leaves a partial
output, and a source file is never opened for writing.

Formats libsndfile has no decoder for (M4A/AAC/ALAC, WMA, AC-3, APE, WavPack, Matroska/WebM)
are decoded by the external ``ffmpeg`` program into a temporary file in the system temporary
directory first, and read from there (see :mod:`audio_restorer.audio.ffmpeg`). Codecs
libsndfile decodes only sequentially (GSM 6.10, G.721/G.723 and NMS ADPCM in WAV/AIFF) are
decoded once the same way, by libsndfile, so that every file can be read again and at random.

File names go to libsndfile as the bytes the file system holds (on POSIX), so names that are
not valid UTF-8 work; text written into metadata has such characters replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import soundfile as sf

from audio_restorer.audio import ffmpeg
from audio_restorer.audio.bwf import BextInfo, data_extent, safe_text, set_bext
from audio_restorer.audio.contract import MAX_CHANNELS, MAX_RATE, MIN_RATE
from audio_restorer.audio.dither import Quantizer
from audio_restorer.errors import (
    AudioFileError,
    CorruptFileError,
    EmptyAudioError,
    InvalidAudioError,
    OutputError,
    ParameterError,
    UnsupportedFormatError,
)

#: extensions libsndfile reads, with the libsndfile major format each is expected to hold
SNDFILE_EXTENSIONS = {
    ".wav": "WAV",
    ".wave": "WAV",
    ".bwf": "WAV",
    ".rf64": "RF64",
    ".w64": "W64",
    ".flac": "FLAC",
    ".ogg": "OGG",
    ".oga": "OGG",
    ".opus": "OGG",
    ".aif": "AIFF",
    ".aiff": "AIFF",
    ".aifc": "AIFF",
    ".mp3": "MP3",
    ".caf": "CAF",
}
#: extensions decoded through ffmpeg (an external program), with the container's name
FFMPEG_EXTENSIONS = {
    ".m4a": "M4A",
    ".m4b": "M4A",
    ".mp4": "MP4",
    ".aac": "ADTS",
    ".wma": "WMA",
    ".asf": "ASF",
    ".ac3": "AC-3",
    ".eac3": "E-AC-3",
    ".ape": "APE",
    ".wv": "WavPack",
    ".mka": "MKA",
    ".webm": "WebM",
}
#: every extension we read (folder scans and drag-and-drop accept these)
READ_EXTENSIONS = {**SNDFILE_EXTENSIONS, **FFMPEG_EXTENSIONS}
#: output formats: extension -> (libsndfile format, allowed bit depths)
WRITE_FORMATS = {
    "wav": ("WAV", ("16", "24", "32f")),
    "flac": ("FLAC", ("16", "24")),
    "mp3": ("MP3", ("mp3",)),
}
BIT_DEPTHS = ("16", "24", "32f")
_PCM_SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}
_SUBTYPE_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
#: frames per block when a sequential-only codec is decoded to a temporary file
_SEQUENTIAL_BLOCK = 1 << 16
#: a decode this much shorter than stated is normal (codec priming and padding): no warning
_SHORT_TOLERANCE_FRAMES = 4096
_SHORT_TOLERANCE_FRACTION = 0.01


def sf_path(path: str | os.PathLike[str]) -> str | bytes:
    """A path as soundfile should get it: the file system's own bytes on POSIX.

    soundfile encodes ``str`` paths strictly as UTF-8, which fails on names that are not valid
    UTF-8 (Python holds their bytes as surrogate escapes); ``os.fsencode`` gives them back.
    Windows paths stay ``str`` (soundfile opens them as wide strings).
    """
    return os.fsencode(path) if os.name == "posix" else os.fspath(path)


def _short(decoded: int, stated: int) -> bool:
    """Whether ``decoded`` frames fall clearly short of ``stated`` (beyond priming/padding)."""
    return decoded < (1.0 - _SHORT_TOLERANCE_FRACTION) * stated - _SHORT_TOLERANCE_FRAMES


def _short_warning(name: str, decoded: int, stated: int, rate: int) -> str:
    return (
        f"{name}: decoded {decoded / rate:.2f} s of the {stated / rate:.2f} s "
        "the container states; the file may be cut short"
    )


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header (``frames`` may be refined while reading).

    For files decoded through ffmpeg, ``codec`` is ffmpeg's codec name (``"aac"``), ``decoder``
    names the program and its version (``"ffmpeg 5.1.6"``), and ``frames`` from :func:`probe` is
    the container's estimate (0 when it states no duration); :class:`AudioReader` gives the
    exact count.
    """

    path: str
    format: str
    subtype: str
    rate: int
    channels: int
    frames: int
    codec: str | None = None
    decoder: str | None = None

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    @property
    def bits(self) -> int | None:
        """Word length of PCM sources (None for float and compressed formats)."""
        return _SUBTYPE_BITS.get(self.subtype)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "subtype": self.subtype,
            "sample_rate": self.rate,
            "channels": self.channels,
            "frames": self.frames,
            "duration_s": round(self.duration_s, 6),
        } | ({"codec": self.codec, "decoder": self.decoder} if self.decoder else {})


def _check_readable_path(path: Path) -> None:
    if not path.exists():
        raise AudioFileError(path, "no such file")
    if path.is_dir():
        raise AudioFileError(path, "is a folder, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioFileError(path, "cannot be read (permission denied)")
    if path.stat().st_size == 0:
        raise EmptyAudioError(path, "file is empty (0 bytes)")


def _open_error(path: Path, exc: Exception) -> AudioFileError:
    """The error for a file libsndfile cannot open: unknown extension, or damaged."""
    ext = path.suffix.lower()
    detail = str(exc).split(":", 1)[-1].strip() or type(exc).__name__
    if ext not in READ_EXTENSIONS:
        known = ", ".join(sorted({e.lstrip(".") for e in READ_EXTENSIONS}))
        return UnsupportedFormatError(
            path, f"unsupported or unrecognised format '{ext or '(none)'}' ({known} are read)"
        )
    return CorruptFileError(path, f"cannot be decoded, the file is damaged or truncated ({detail})")


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read a file's header and check it is usable audio; raise a clear error if not.

    Files with an extension in :data:`FFMPEG_EXTENSIONS`, and files with a libsndfile extension
    that libsndfile cannot open (an AAC stream named ``.mp3``, a WAV holding a codec libsndfile
    lacks), are probed with ffprobe when ffmpeg is installed; when ffmpeg cannot read them
    either, libsndfile's error stands.
    """
    info, _ = _probe(Path(path))
    return info


def _probe(p: Path) -> tuple[AudioInfo, ffmpeg.Probe | None]:
    """:func:`probe`, plus ffprobe's answer when the file must be decoded through ffmpeg."""
    _check_readable_path(p)
    ext = p.suffix.lower()
    if ext in FFMPEG_EXTENSIONS:
        tools = ffmpeg.find_tools()
        if tools is None:
            raise UnsupportedFormatError(
                p,
                f"{ext} files are decoded by ffmpeg, which was not found on PATH: "
                f"install ffmpeg to read {ext} files",
            )
        return _ffmpeg_info(p, tools)
    try:
        info = sf.info(sf_path(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        error = _open_error(p, exc)
        tools = ffmpeg.find_tools()
        if ext in SNDFILE_EXTENSIONS and tools is not None:
            try:
                return _ffmpeg_info(p, tools)
            except AudioFileError:
                pass  # ffmpeg cannot read it either: libsndfile's message stands
        raise error from None
    return _validated_info(
        p, info.format, info.subtype, info.samplerate, info.channels, info.frames
    ), None


def _ffmpeg_info(p: Path, tools: ffmpeg.Tools) -> tuple[AudioInfo, ffmpeg.Probe]:
    found = ffmpeg.probe(p, tools)
    container = FFMPEG_EXTENSIONS.get(p.suffix.lower()) or found.container_label
    info = _validated_info(
        p,
        f"{container} ({found.codec_label}, via ffmpeg)",
        found.codec.upper(),
        found.rate,
        found.channels,
        found.frames or 0,
        codec=found.codec,
        decoder=f"ffmpeg {tools.version}",
    )
    return info, found


def _validated_info(
    p: Path,
    fmt: str,
    subtype: str,
    rate: int,
    channels: int,
    frames: int,
    *,
    codec: str | None = None,
    decoder: str | None = None,
) -> AudioInfo:
    if channels < 1 or channels > MAX_CHANNELS:
        raise InvalidAudioError(p, f"has {channels} channels; 1..{MAX_CHANNELS} are supported")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidAudioError(
            p, f"sample rate {rate} Hz is outside the supported {MIN_RATE}..{MAX_RATE} Hz"
        )
    if frames <= 0 and not (decoder and frames == 0):  # 0: duration unknown before decoding
        raise EmptyAudioError(p, "holds no audio frames")
    return AudioInfo(
        str(p), fmt, subtype or "", int(rate), int(channels), int(frames), codec, decoder
    )


class AudioReader:
    """Block-wise reader: ``with AudioReader(path) as r: for block in r.blocks(): ...``.

    Blocks are ``float32`` ``(channels, frames)``. A block holding NaN or Inf raises
    :class:`InvalidAudioError` naming the file and the time of the first bad sample.

    Files libsndfile cannot decode are decoded by ffmpeg into a temporary file when the reader
    is opened (``decode_progress`` is called with the fraction done, and may raise to cancel);
    the temporary file is removed on :meth:`close` (with ``decode_cache``, the decode is shared
    through that :class:`~audio_restorer.audio.ffmpeg.DecodeCache` and kept there). When
    ffmpeg reported damage but still produced audio, or produced clearly less than the container
    states, :attr:`warnings` says so (the audio is read as far as it goes, as libsndfile does
    for a cut-off WAV).

    Codecs libsndfile reads only sequentially (GSM 6.10, G.721/G.723, NMS ADPCM) are decoded
    once, by libsndfile, into a temporary float WAV in the same kind of temporary folder (also
    reported through ``decode_progress``, also removed on :meth:`close`); :attr:`info` still
    names the source's format and subtype.

    When reading reaches the end of what can be decoded clearly before the length the header
    states (a cut-off WAV, whose frame count libsndfile quietly shortens, or an MP3 whose Xing
    header states more than is there), one warning says so, however many passes are read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        decode_progress: ffmpeg.DecodeProgress | None = None,
        decode_cache: ffmpeg.DecodeCache | None = None,
    ) -> None:
        self.path = Path(path)
        self.info, found = _probe(self.path)
        self._decoded: ffmpeg.DecodedFile | None = None
        self._cache = decode_cache
        self.warnings: list[str] = []
        self._position = 0
        self._stated_frames = self.info.frames
        self._short_noted = False
        if found is None:
            try:
                self._file = sf.SoundFile(sf_path(self.path))
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise _open_error(self.path, exc) from None
            self._stated_frames = _stated_frames(self.path, self._file.frames)
            if not _seekable(self._file):
                try:
                    self._decode_sequential(decode_progress)
                except BaseException:
                    self.close()
                    raise
            return
        tools = ffmpeg.find_tools()
        if tools is None:  # removed between probe and decode
            raise UnsupportedFormatError(self.path, "ffmpeg is no longer on PATH")
        if decode_cache is None:
            self._decoded = ffmpeg.decode(self.path, tools, info=found, progress=decode_progress)
        else:
            self._decoded = decode_cache.acquire(
                self.path, tools, info=found, progress=decode_progress
            )
        try:
            self._file = sf.SoundFile(str(self._decoded.path))
            frames = self._file.frames
            if frames <= 0:
                raise EmptyAudioError(self.path, "holds no audio frames")
            self.info = replace(
                self.info,
                rate=self._file.samplerate,
                channels=self._file.channels,
                frames=frames,
            )
            self.warnings = _decode_warnings(self._decoded.errors, found, self.info)
            self._stated_frames = frames
        except BaseException:
            self.close()
            raise

    def _decode_sequential(self, progress: ffmpeg.DecodeProgress | None) -> None:
        """Decode the open (unseekable) file once into a temporary float WAV and read that."""
        source = self._file
        rate, channels = source.samplerate, source.channels
        tmp_root = tempfile.gettempdir()
        ffmpeg.sweep_once(tmp_root)  # folders of killed processes, as ffmpeg decodes do
        prefix = f"{ffmpeg.DECODE_PREFIX}{os.getpid()}-"
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp_root))
        decoded = self._decoded = ffmpeg.DecodedFile(folder, folder / "decoded.wav")
        self._cache = None  # ours alone: removed on close
        frames = 0
        try:
            out = sf.SoundFile(sf_path(decoded.path), "w", rate, channels, "FLOAT", format="RF64")
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(
                self.path, f"cannot be decoded into the temporary folder {folder.parent} ({exc})"
            ) from None
        with out:
            sf._snd.sf_command(out._file, _SFC_RF64_AUTO_DOWNGRADE, sf._ffi.NULL, 1)
            while True:
                try:
                    data = source.read(_SEQUENTIAL_BLOCK, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise CorruptFileError(
                        self.path, f"decoding failed at {frames / rate:.3f} s ({exc})"
                    ) from None
                if not data.shape[0]:
                    break
                try:
                    out.write(data)
                except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                    raise AudioFileError(
                        self.path,
                        f"cannot be decoded into the temporary folder {folder.parent} ({exc}); "
                        "free some space there, or set TMPDIR to a disk with room",
                    ) from None
                frames += data.shape[0]
                if progress is not None and self._stated_frames:
                    progress(min(frames / self._stated_frames, 1.0))
        source.close()
        if frames <= 0:
            raise EmptyAudioError(self.path, "holds no audio frames")
        self._file = sf.SoundFile(sf_path(decoded.path))
        self.info = replace(self.info, frames=frames)
        self._note_end(frames)

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
        decoded, self._decoded = self._decoded, None
        if decoded is not None:
            if self._cache is not None:
                self._cache.release(decoded)
            else:
                decoded.close()

    def seek(self, frame: int) -> None:
        self._file.seek(frame)
        self._position = frame

    def blocks(self, block_frames: int = 1 << 16) -> Iterator[np.ndarray]:
        """Yield successive blocks from the current position until the end of the file."""
        position = self._position  # kept here: asking libsndfile (tell) may fail
        while True:
            block = self._read(block_frames, position, "at")
            if not block.shape[1]:
                self._note_end(position)
                return
            position += block.shape[1]
            self._position = position
            yield block

    def read(self, start: int = 0, frames: int | None = None) -> np.ndarray:
        """Read ``frames`` frames from ``start`` (the whole rest when None): for previews."""
        self.seek(start)
        block = self._read(-1 if frames is None else frames, start, "after")
        self._position = start + block.shape[1]
        if frames is None or block.shape[1] < frames:
            self._note_end(self._position)
        return block

    def _read(self, count: int, position: int, where: str) -> np.ndarray:
        """``count`` frames (-1: the rest) from the current position ``position``, checked."""
        try:
            data = self._file.read(count, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise CorruptFileError(
                self.path, f"decoding failed {where} {position / self.info.rate:.3f} s ({exc})"
            ) from None
        block = np.ascontiguousarray(data.T)
        self._check_finite(block, position)
        return block

    def _note_end(self, position: int) -> None:
        """Reading ended at ``position``: warn (once) when that is clearly short of the header."""
        if self._short_noted or not _short(position, self._stated_frames):
            return
        self._short_noted = True
        self.warnings.append(
            _short_warning(self.path.name, position, self._stated_frames, self.info.rate)
        )

    def _check_finite(self, block: np.ndarray, position: int) -> None:
        finite = np.isfinite(block)
        if not finite.all():
            first = (position + int(np.argmin(finite.all(axis=0)))) / self.info.rate
            raise InvalidAudioError(
                self.path, f"contains NaN or infinite samples (first at {first:.3f} s)"
            )


def _seekable(f: sf.SoundFile) -> bool:
    """Whether libsndfile can seek in ``f`` (sequential-only codecs cannot); leaves it at 0."""
    if not f.seekable():
        return False
    try:
        f.seek(0)
    except (sf.LibsndfileError, RuntimeError):
        return False
    return True


def _stated_frames(path: Path, frames: int) -> int:
    """The frame count a WAV/RF64/W64/AIFF header states (``frames``: libsndfile's count).

    libsndfile shortens the count of a cut-off file to what it holds; the header's data size
    still says how much there was. The count scales with the bytes, so codecs of constant rate
    (PCM, GSM, ADPCM) are covered too. Other formats: ``frames``.
    """
    extent = data_extent(sf_path(path))
    if extent is None:
        return frames
    stated, present = extent
    if present <= 0 or stated <= present:
        return frames
    return max(frames, round(frames * stated / present))


def _decode_warnings(errors: list[str], found: ffmpeg.Probe, info: AudioInfo) -> list[str]:
    """What the user should know about an ffmpeg decode that finished despite problems."""
    name = Path(info.path).name
    warnings = []
    if errors:
        more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
        warnings.append(
            f"{name}: ffmpeg reported decoding errors ({errors[0]}{more}); "
            "the audio may be incomplete or hold glitches"
        )
    expected = found.frames or 0
    if expected and _short(info.frames, expected):  # beyond codec priming and padding
        warnings.append(_short_warning(name, info.frames, expected, info.rate))
    return warnings


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a whole (short) file: ``(audio, rate)``. For tests and previews only."""
    with AudioReader(path) as reader:
        return reader.read(), reader.info.rate


def output_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The output format for ``path``: ``fmt`` if given, else from the extension."""
    if fmt is None:
        fmt = Path(path).suffix.lower().lstrip(".")
    fmt = fmt.lower()
    if fmt not in WRITE_FORMATS:
        raise ParameterError(
            f"cannot write format '{fmt or '(no extension)'}' for {path}: "
            f"choose one of {', '.join(WRITE_FORMATS)}"
        )
    return fmt


def check_bit_depth(fmt: str, bit_depth: str | None) -> str:
    """Validate a bit depth for a format; None picks the default (24-bit PCM, or MP3)."""
    allowed = WRITE_FORMATS[fmt][1]
    if fmt == "mp3":
        if bit_depth not in (None, "mp3"):
            raise ParameterError(f"MP3 has no bit depth option, got --bit-depth {bit_depth}")
        return "mp3"
    bit_depth = bit_depth or "24"
    if bit_depth not in allowed:
        raise ParameterError(
            f"{fmt.upper()} supports bit depths {', '.join(allowed)}, got {bit_depth}"
        )
    return bit_depth


_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def check_writable(fmt: str, rate: int, channels: int) -> None:
    """Refuse, before any work is done, what the output format cannot hold."""
    if fmt == "flac" and channels > 8:
        raise ParameterError(f"FLAC holds at most 8 channels, the audio has {channels}: use WAV")
    if fmt == "mp3":
        if channels > 2:
            raise ParameterError(f"MP3 holds 1 or 2 channels, the audio has {channels}: use WAV")
        if rate not in _MP3_RATES:
            raise ParameterError(
                f"MP3 cannot store {rate} Hz (use --rate 44100 or 48000, or WAV/FLAC)"
            )


def check_output_path(output: Path, inputs: list[Path] | tuple[Path, ...] = ()) -> None:
    """Refuse outputs that would overwrite a source, or land in a folder we cannot write."""
    for src in inputs:
        same = output.resolve() == src.resolve()
        if not same and output.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(output, src)
        if same:
            raise OutputError(
                output, "output path is the input file; sources are never overwritten"
            )
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(output, f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(output, f"output folder {folder} is not writable")
    if output.is_dir():
        raise OutputError(output, "output path is a folder")


class AudioWriter:
    """Atomic block-wise writer for WAV (16/24-bit PCM, 32-bit float), FLAC and MP3 (320 kbps).

    PCM outputs are quantised here with TPDF dither (seeded, so runs are reproducible), and the
    number of samples clipped at full scale is counted in :attr:`clipped`. WAV files switch to
    RF64 automatically when they outgrow 4 GB, and carry an optional BWF ``bext`` chunk.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        rate: int,
        channels: int,
        *,
        fmt: str | None = None,
        bit_depth: str | None = None,
        dither: bool = True,
        seed: int = 0,
        bext: BextInfo | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.fmt = output_format(self.path, fmt)
        self.bit_depth = check_bit_depth(self.fmt, bit_depth)
        self.rate = rate
        self.channels = channels
        self.frames = 0
        self.clipped = 0
        check_writable(self.fmt, rate, channels)
        self.quantizer = (
            Quantizer(int(self.bit_depth), dither=dither, seed=seed)
            if self.bit_depth in ("16", "24")
            else None
        )
        folder = self.path.parent
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.stem[:40]}.", suffix=f".part{self.path.suffix}", dir=folder
            )
            os.close(fd)
            os.chmod(tmp, 0o666 & ~_umask())
        except OSError as exc:
            raise OutputError(
                self.path, f"cannot create a file in {folder} ({exc.strerror})"
            ) from None
        self.tmp_path = Path(tmp)
        try:
            self._file = self._open(bext, tags or {})
        except BaseException:
            self._remove_tmp()
            raise

    def _open(self, bext: BextInfo | None, tags: dict[str, str]) -> sf.SoundFile:
        major = WRITE_FORMATS[self.fmt][0]
        kwargs: dict[str, Any] = {}
        if self.fmt == "mp3":
            subtype = "MPEG_LAYER_III"
            kwargs = {"compression_level": 0.0, "bitrate_mode": "CONSTANT"}  # 320 kbps CBR
        else:
            subtype = _PCM_SUBTYPES[self.bit_depth]
        if major == "WAV":
            major = "RF64"  # downgraded to plain WAV on close when under 4 GB (see below)
        try:
            f = sf.SoundFile(
                sf_path(self.tmp_path),
                "w",
                self.rate,
                self.channels,
                subtype,
                format=major,
                **kwargs,
            )
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise OutputError(self.path, f"cannot write {self.fmt.upper()} ({exc})") from None
        if major == "RF64":
            sf._snd.sf_command(f._file, _SFC_RF64_AUTO_DOWNGRADE, sf._ffi.NULL, 1)
            if bext is not None:
                set_bext(f, bext)
        for key, value in tags.items():
            with contextlib.suppress(Exception):  # not every container carries every tag
                setattr(f, key, safe_text(value))
        return f

    def write(self, block: np.ndarray) -> None:
        """Append a ``(channels, frames)`` float32 block."""
        if block.shape[0] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {block.shape[0]}")
        if not block.shape[1]:
            return
        if self.quantizer is not None:
            data, clipped = self.quantizer(block)
        else:
            data = block
            clipped = 0
            if self.fmt == "mp3":
                over = np.abs(block) > 1.0
                clipped = int(over.sum())
                if clipped:
                    data = np.clip(block, -1.0, 1.0)
        self.clipped += clipped
        try:
            self._file.write(np.ascontiguousarray(data.T))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise self._write_error(exc) from None
        self.frames += block.shape[1]

    def _write_error(self, exc: Exception) -> OutputError:
        text = str(exc)
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "space" in text.lower():
            return OutputError(self.path, "disk full while writing; no output was kept")
        return OutputError(self.path, f"write failed ({text}); no output was kept")

    def close_temp(self) -> Path:
        """Finish the temporary file (still hidden) and flush it to disk; returns its path."""
        if not self._file.closed:
            try:
                self._file.close()
                with open(self.tmp_path, "rb") as fh:
                    os.fsync(fh.fileno())
            except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                self._remove_tmp()
                raise self._write_error(exc) from None
        return self.tmp_path

    def commit(self) -> Path:
        """Close, flush to disk and rename over the target. Returns the final path."""
        self.close_temp()
        try:
            os.replace(self.tmp_path, self.path)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            self._remove_tmp()
            raise self._write_error(exc) from None
        return self.path

    def abort(self) -> None:
        """Discard everything written; the target is left as it was."""
        with contextlib.suppress(Exception):
            self._file.close()
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.tmp_path.unlink()

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


_SFC_RF64_AUTO_DOWNGRADE = 0x1210


def _umask() -> int:
    """The process umask (mkstemp creates 0600 files; outputs get the usual permissions)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_audio(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    rate: int,
    *,
    bit_depth: str | None = None,
    fmt: str | None = None,
    dither: bool = True,
) -> Path:
    """Write a whole in-memory array atomically (for tests, previews and the simulator)."""
    with AudioWriter(path, rate, audio.shape[0], fmt=fmt, bit_depth=bit_depth, dither=dither) as w:
        w.write(audio)
    return Path(path)
