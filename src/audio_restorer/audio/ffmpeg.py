"""Reading what libsndfile cannot (AAC, ALAC, WMA, AC-3, APE, WavPack, Matroska/WebM, MP4 audio).

libsndfile reads WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF and CAF, but has no decoders for AAC,
ALAC, WMA, AC-3, Monkey's Audio or WavPack, and no well-kept pure-Python decoders for them exist,
yet archives hold many M4A/AAC and WMA access copies. ffmpeg decodes all of them. It is used here
as an *external program*, found on ``PATH`` at run time; it is not a Python dependency, and
everything else works without it (files that need it are refused with a message saying so).

A file is first probed with ``ffprobe`` (rate, channels, estimated length, codec; nothing is
decoded), then decoded once, in full, into a temporary WAV file (32-bit float, or 16/24/32-bit
PCM for integer lossless codecs, so the decode is exact; RF64 past 4 GB) in a fresh folder under
the system temporary directory (``TMPDIR``), never next to the source. The block reader then works
on that file exactly as on any other: random access, repeated passes, and bounded memory for
hours of audio (the temporary file takes disk space instead: about 1.4 GB per stereo hour at
48 kHz). The folder is removed when the :class:`DecodedFile` is closed, when decoding fails or
is interrupted, or at the latest when the interpreter exits. A process killed outright cannot
clean up: its folder's name carries its process id, and the next decode removes the folders of
processes that no longer exist. A session that reads a file several times (the desktop app:
overview, previews, the run) shares one decode through a :class:`DecodeCache`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from audio_restorer.errors import AudioFileError, CorruptFileError, UnsupportedFormatError

#: readable names of the codecs archives meet most (ffmpeg codec name -> label)
CODEC_LABELS = {
    "aac": "AAC",
    "aac_latm": "AAC",
    "alac": "ALAC",
    "wmav1": "WMA 1",
    "wmav2": "WMA 2",
    "wmapro": "WMA Pro",
    "wmalossless": "WMA Lossless",
    "wmavoice": "WMA Voice",
    "ac3": "AC-3",
    "eac3": "E-AC-3",
    "dts": "DTS",
    "ape": "Monkey's Audio",
    "wavpack": "WavPack",
    "opus": "Opus",
    "vorbis": "Vorbis",
    "flac": "FLAC",
    "mp3": "MP3",
    "mp2": "MP2",
    "tta": "TTA",
    "truehd": "TrueHD",
}
#: readable names of ffmpeg's demuxers (the first name of ``format_name``)
CONTAINER_LABELS = {
    "mov": "MP4",
    "asf": "ASF",
    "matroska": "Matroska",
    "aac": "ADTS",
    "ac3": "AC-3",
    "eac3": "E-AC-3",
    "ape": "APE",
    "wv": "WavPack",
    "wav": "WAV",
    "w64": "W64",
    "aiff": "AIFF",
    "caf": "CAF",
    "ogg": "OGG",
    "flac": "FLAC",
    "mp3": "MP3",
}
_PROBE_TIMEOUT_S = 120.0
#: the temporary folders' name prefix; the creating process's id follows
DECODE_PREFIX = "audio-restorer-decode-"

#: called with the decoded fraction 0..1 while decoding; it may raise to cancel the decode
DecodeProgress = Callable[[float], None]


@dataclass(frozen=True)
class Tools:
    """Paths of the ``ffmpeg`` and ``ffprobe`` executables."""

    ffmpeg: str
    ffprobe: str

    @property
    def version(self) -> str:
        """ffmpeg's version string, e.g. ``"5.1.6-0+deb12u1"`` (``"unknown"`` if unreadable)."""
        return _version(self.ffmpeg)


def find_tools() -> Tools | None:
    """``ffmpeg`` and ``ffprobe`` from ``PATH``, or None when either is missing."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        return None
    return Tools(ffmpeg, ffprobe)


@functools.lru_cache(maxsize=8)
def _version(executable: str) -> str:
    try:
        out = subprocess.run(
            [executable, "-hide_banner", "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    match = re.search(r"version\s+(\S+)", out)
    return match.group(1) if match else "unknown"


@dataclass(frozen=True)
class Probe:
    """What ``ffprobe`` says about a file's first audio stream.

    ``frames`` is an estimate from the container's duration (None when it gives none); the exact
    count is known only after decoding. ``container`` is ffmpeg's demuxer name (``"mov,mp4,..."``).
    """

    rate: int
    channels: int
    frames: int | None
    codec: str
    container: str
    sample_fmt: str
    bits: int | None

    @property
    def codec_label(self) -> str:
        return CODEC_LABELS.get(self.codec, self.codec.upper())

    @property
    def container_label(self) -> str:
        name = self.container.split(",")[0]
        return CONTAINER_LABELS.get(name, name.upper())

    @property
    def pcm_codec(self) -> str:
        """The PCM codec of the temporary file: exact for integer codecs, else 32-bit float."""
        fmt = self.sample_fmt.rstrip("p")
        if fmt in ("u8", "s16"):
            return "pcm_s16le"
        if fmt == "s32":
            return "pcm_s24le" if self.bits is not None and self.bits <= 24 else "pcm_s32le"
        return "pcm_f32le"


def _input(path: Path) -> str:
    """ffmpeg input URL: the ``file:`` prefix keeps names with ``:`` or a leading ``-`` literal."""
    return f"file:{path}"


def _first_error(text: str) -> str:
    """ffmpeg's first error line, without the ``[demuxer @ 0x...]`` prefix."""
    for line in text.splitlines():
        line = re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", line.strip())
        if line:
            return line
    return "no message"


def probe(path: str | Path, tools: Tools) -> Probe:
    """Probe ``path``'s first audio stream with ffprobe (nothing is decoded).

    Raises
    ------
    CorruptFileError
        ffprobe cannot read the file (truncated, damaged, or not a media file).
    UnsupportedFormatError
        The file holds no audio stream.
    """
    p = Path(path)
    cmd = [
        tools.ffprobe,
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_streams",
        "-show_format",
        "-of",
        "json",
        _input(p),
    ]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise CorruptFileError(
            p, f"ffprobe gave no answer within {_PROBE_TIMEOUT_S:.0f} s"
        ) from None
    except OSError as exc:
        raise UnsupportedFormatError(p, f"cannot run ffprobe ({exc.strerror})") from None
    if done.returncode != 0:
        raise CorruptFileError(
            p, f"cannot be decoded, the file is damaged or truncated ({_first_error(done.stderr)})"
        )
    try:
        doc = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        raise CorruptFileError(p, "ffprobe returned unreadable output") from None
    streams = doc.get("streams") or []
    fmt = doc.get("format") or {}
    if not streams:
        raise UnsupportedFormatError(p, "holds no audio stream")
    stream = streams[0]
    rate = _int(stream.get("sample_rate")) or 0
    duration = _float(stream.get("duration")) or _float(fmt.get("duration"))
    frames = round(duration * rate) if duration and rate else None
    return Probe(
        rate=rate,
        channels=_int(stream.get("channels")) or 0,
        frames=frames,
        codec=str(stream.get("codec_name") or "unknown"),
        container=str(fmt.get("format_name") or "unknown"),
        sample_fmt=str(stream.get("sample_fmt") or ""),
        bits=_int(stream.get("bits_per_raw_sample")) or None,
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _float(value: object) -> float | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number != float("inf") else None


class DecodedFile:
    """A temporary lossless copy of a decoded source; removed on :meth:`close`.

    Use as a context manager, or call :meth:`close`. If neither happens the folder is removed
    when the object is garbage-collected or the interpreter exits. ``errors`` holds the error
    lines ffmpeg printed while still finishing (damaged packets, a cut-off file): the audio may
    then be incomplete.
    """

    def __init__(self, folder: Path, path: Path, errors: list[str] | None = None) -> None:
        self.folder = folder
        self.path = path
        self.errors = errors or []
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(folder), ignore_errors=True)

    def close(self) -> None:
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> DecodedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def decode(
    path: str | Path,
    tools: Tools,
    *,
    info: Probe | None = None,
    progress: DecodeProgress | None = None,
    tmp_dir: str | Path | None = None,
) -> DecodedFile:
    """Decode ``path``'s first audio stream into a temporary WAV/RF64 file.

    Parameters
    ----------
    path : str or Path
        The source; it is only read.
    tools : Tools
        The executables (see :func:`find_tools`).
    info : Probe, optional
        The source's probe (probed here when None); picks the temporary file's sample format
        and gives the expected duration for ``progress``.
    progress : callable, optional
        Called with the decoded fraction (0..1) about twice a second. If it raises (for
        example :class:`~audio_restorer.errors.Cancelled`), ffmpeg is stopped, the temporary
        folder removed and the exception propagates; so does KeyboardInterrupt.
    tmp_dir : str or Path, optional
        Where the temporary folder is made (default: the system temporary directory).

    Raises
    ------
    CorruptFileError
        ffmpeg failed; the message carries its first error line.
    """
    p = Path(path)
    info = info or probe(p, tools)
    sweep_once(str(tmp_dir or tempfile.gettempdir()))
    folder = Path(tempfile.mkdtemp(prefix=f"{DECODE_PREFIX}{os.getpid()}-", dir=tmp_dir))
    out = folder / "decoded.wav"
    errors = folder / "ffmpeg-errors.txt"
    cmd = [
        tools.ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        "-i",
        _input(p),
        "-map",
        "0:a:0",
        "-map_metadata",
        "-1",
        "-c:a",
        info.pcm_codec,
        "-f",
        "wav",
        "-rf64",
        "auto",
        "-y",
        str(out),
    ]
    decoded = DecodedFile(folder, out)
    try:
        with (
            open(errors, "w+b") as err,
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True) as proc,
        ):
            try:
                _follow(proc, info, progress)
            except BaseException:
                _stop(proc)
                raise
            code = proc.wait()
            err.seek(0)
            message = err.read().decode("utf-8", "replace")
        if code != 0 or not out.exists():
            raise _decode_error(p, message, folder)
        decoded.errors = [_first_error(line) for line in message.splitlines() if line.strip()]
    except BaseException:
        decoded.close()
        raise
    return decoded


def sweep_stale(tmp_dir: str | Path | None = None, prefix: str = "") -> list[Path]:
    """Remove decode folders left in ``tmp_dir`` by processes that no longer run; return them.

    ``prefix`` names other temporary folders made the same way (``<prefix><pid>-...``; the
    desktop app's preview clips).

    Only folders of this user whose name carries a process id that is not alive are removed
    (a killed run could not clean up after itself). POSIX only: elsewhere there is no cheap,
    harmless test of a process id, and nothing is removed.
    """
    if os.name != "posix":
        return []
    root = Path(tmp_dir or tempfile.gettempdir())
    prefix = prefix or DECODE_PREFIX
    removed = []
    try:
        entries = list(root.glob(f"{prefix}*"))
    except OSError:
        return []
    for entry in entries:
        pid_text = entry.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            if not entry.is_dir() or entry.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        except (OSError, OverflowError):
            continue  # alive under another user, or unreadable: leave it
    return removed


@functools.lru_cache(maxsize=4)
def sweep_once(tmp_dir: str) -> None:
    """:func:`sweep_stale` of decode folders, once per process and folder (before decoding)."""
    sweep_stale(tmp_dir)


@dataclass
class _Entry:
    decoded: DecodedFile
    users: int = 0


class DecodeCache:
    """Decoded copies shared by the readers of one session.

    The desktop app reads a file for its overview, for every preview and for the run; with a
    cache, one decode serves them all (:class:`~audio_restorer.audio.io.AudioReader` takes
    it as ``decode_cache``). Entries are keyed by the source's resolved path, size and
    modification time, so a file that changed is decoded afresh. Besides the copies that readers
    have open, at most ``keep`` are kept, the least recently used going first. Thread-safe: a
    reader that asks for a file another thread is decoding waits for that decode, calling its
    own ``progress`` with 0.0 meanwhile (so it can still cancel), and decodes itself if that
    one failed or was cancelled.
    """

    def __init__(self, keep: int = 2) -> None:
        self.keep = max(1, keep)
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, int, int], _Entry] = OrderedDict()
        self._retired: list[_Entry] = []
        self._pending: dict[tuple[str, int, int], threading.Event] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def acquire(
        self,
        path: str | Path,
        tools: Tools,
        *,
        info: Probe | None = None,
        progress: DecodeProgress | None = None,
    ) -> DecodedFile:
        """The decoded copy of ``path`` (decoded now if not cached); give it back with
        :meth:`release`. Errors and cancellation as in :func:`decode`."""
        key = _cache_key(Path(path))
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and not entry.decoded.closed:
                    entry.users += 1
                    self._entries.move_to_end(key)
                    return entry.decoded
                gate = self._pending.get(key)
                mine = gate is None
                if mine:
                    gate = self._pending[key] = threading.Event()
            if mine:
                break
            while not gate.wait(0.25):
                if progress is not None:
                    progress(0.0)
        try:
            decoded = decode(path, tools, info=info, progress=progress)
        except BaseException:
            with self._lock:
                del self._pending[key]
            gate.set()
            raise
        with self._lock:
            del self._pending[key]
            self._entries[key] = _Entry(decoded, users=1)
            self._entries.move_to_end(key)
            self._evict()
        gate.set()
        return decoded

    def release(self, decoded: DecodedFile) -> None:
        """A reader is done with ``decoded`` (it stays cached unless it was dropped)."""
        with self._lock:
            for entry in [*self._entries.values(), *self._retired]:
                if entry.decoded is decoded:
                    entry.users = max(0, entry.users - 1)
                    break
            else:
                decoded.close()  # not (or no longer) ours
                return
            for entry in [e for e in self._retired if e.users == 0]:
                entry.decoded.close()
                self._retired.remove(entry)
            self._evict()

    def discard(self, path: str | Path) -> None:
        """Drop every cached copy of ``path`` (removed once no reader uses it)."""
        name = str(Path(path).resolve())
        with self._lock:
            for key in [k for k in self._entries if k[0] == name]:
                self._retire(self._entries.pop(key))

    def close(self) -> None:
        """Drop everything (copies still open are removed when their readers let go)."""
        with self._lock:
            while self._entries:
                self._retire(self._entries.popitem(last=False)[1])

    def _retire(self, entry: _Entry) -> None:
        if entry.users:
            self._retired.append(entry)
        else:
            entry.decoded.close()

    def _evict(self) -> None:
        # copies being read do not count: the idle ones beyond ``keep`` go, oldest first
        idle = [k for k, e in self._entries.items() if e.users == 0]
        for key in idle[: max(0, len(idle) - self.keep)]:
            self._entries.pop(key).decoded.close()


def _cache_key(p: Path) -> tuple[str, int, int]:
    st = p.stat()
    return str(p.resolve()), st.st_size, st.st_mtime_ns


def _decode_error(path: Path, message: str, folder: Path) -> AudioFileError:
    """The error for a failed decode: the temporary folder full, or the source damaged."""
    if "No space left on device" in message:
        return AudioFileError(
            path,
            f"cannot be decoded: the temporary folder {folder.parent} is full "
            "(free some space there, or set TMPDIR to a disk with room)",
        )
    return CorruptFileError(
        path, f"cannot be decoded, the file is damaged or truncated ({_first_error(message)})"
    )


def _follow(proc: subprocess.Popen[str], info: Probe, progress: DecodeProgress | None) -> None:
    """Read ffmpeg's ``-progress`` lines until it closes its output, reporting the fraction."""
    assert proc.stdout is not None
    total_us = info.frames / info.rate * 1e6 if info.frames and info.rate else None
    for line in proc.stdout:
        if progress is None:
            continue
        key, _, value = line.strip().partition("=")
        if key == "out_time_us" and total_us:
            done = _int(value)
            if done is not None and done >= 0:
                progress(min(done / total_us, 1.0))
        elif key == "progress" and value == "end":
            progress(1.0)


def _stop(proc: subprocess.Popen[str]) -> None:
    """Terminate ffmpeg (kill it if it lingers) and reap it."""
    with contextlib.suppress(OSError):
        proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()
