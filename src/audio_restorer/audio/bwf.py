"""Broadcast Wave Format (EBU Tech 3285) ``bext`` metadata.

Archives expect a restored access copy to say where it came from. libsndfile writes the ``bext``
chunk itself when asked through its ``SFC_SET_BROADCAST_INFO`` command, which soundfile does not
wrap; :func:`set_bext` packs the C struct and sends that command through soundfile's own
libsndfile handle. :func:`read_bext` parses the chunk back from a RIFF/RF64 file independently
of libsndfile, which is what tests and ``analyze`` use. :func:`data_extent` reads how many
bytes of audio a WAV/RF64/W64/AIFF header states against how many the file holds (libsndfile
quietly shortens a cut-off file's frame count to what is there, so the reader asks the header).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import soundfile as sf

_SFC_SET_BROADCAST_INFO = 0x10F1
_HISTORY_OFFSET = 608  # offsetof(SF_BROADCAST_INFO, coding_history)
MAX_CODING_HISTORY = 16 * 1024 - 256  # libsndfile keeps at most 16 kB (room for its own line)


@dataclass
class BextInfo:
    description: str = ""
    originator: str = ""
    originator_reference: str = ""
    origination_date: str = ""  # yyyy-mm-dd
    origination_time: str = ""  # hh:mm:ss
    coding_history: list[str] = field(default_factory=list)  # one EBU R98 line each

    def history_text(self) -> str:
        return "".join(f"{line}\r\n" for line in self.coding_history)


def _ascii(text: str, size: int) -> bytes:
    return text.encode("ascii", "replace")[:size]


def safe_text(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (the surrogate escapes that stand for the bytes of a
    non-UTF-8 file name) replaced by ``?``, so it can be written into any metadata field."""
    return text.encode("utf-8", "replace").decode("utf-8")


def pack_broadcast_info(info: BextInfo) -> bytes:
    """Pack ``SF_BROADCAST_INFO`` (with a coding history of variable size)."""
    history = _ascii(info.history_text(), MAX_CODING_HISTORY)
    buf = bytearray(_HISTORY_OFFSET + len(history) + 2)
    struct.pack_into(
        "256s32s32s10s8s",
        buf,
        0,
        _ascii(info.description, 256),
        _ascii(info.originator, 32),
        _ascii(info.originator_reference, 32),
        _ascii(info.origination_date, 10),
        _ascii(info.origination_time, 8),
    )
    struct.pack_into("<IIh", buf, 340, 0, 0, 1)  # time reference 0, bext version 1
    struct.pack_into("<I", buf, _HISTORY_OFFSET - 4, len(history))
    buf[_HISTORY_OFFSET : _HISTORY_OFFSET + len(history)] = history
    return bytes(buf)


def set_bext(f: sf.SoundFile, info: BextInfo) -> None:
    """Attach ``info`` to a WAV/RF64 file opened for writing (before any audio is written)."""
    data = pack_broadcast_info(info)
    cbuf = sf._ffi.new("char[]", data)
    if not sf._snd.sf_command(f._file, _SFC_SET_BROADCAST_INFO, cbuf, len(data)):
        raise RuntimeError("libsndfile refused the bext chunk")


def _iff_chunks(fh: Any, size_format: str) -> Iterator[tuple[bytes, int, int]]:
    """``(id, size, body offset)`` of each chunk of a RIFF (``"<I"``) or AIFF (``">I"``) file
    from the current position; the caller may read the body, the walk goes on after it."""
    while True:
        hdr = fh.read(8)
        if len(hdr) < 8:
            return
        cid, size = hdr[:4], struct.unpack(size_format, hdr[4:])[0]
        start = fh.tell()
        yield cid, size, start
        fh.seek(start + size + (size & 1))


def _chunks(path: str | os.PathLike[str]) -> dict[bytes, bytes]:
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return {}
        found: dict[bytes, bytes] = {}
        for cid, size, _ in _iff_chunks(fh, "<I"):
            if cid == b"data":
                break  # metadata we care about precedes the audio
            if cid in (b"bext", b"fmt "):
                found[cid] = fh.read(size)
        return found


def read_bext(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Parse the ``bext`` chunk of a WAV/RF64 file; None when there is none."""
    body = _chunks(path).get(b"bext")
    if body is None or len(body) < 602:
        return None

    def text(start: int, size: int) -> str:
        return body[start : start + size].split(b"\0", 1)[0].decode("ascii", "replace")

    history = body[602:].split(b"\0", 1)[0].decode("ascii", "replace")
    return {
        "description": text(0, 256),
        "originator": text(256, 32),
        "originator_reference": text(288, 32),
        "origination_date": text(320, 10),
        "origination_time": text(330, 8),
        "version": struct.unpack("<h", body[346:348])[0],
        "coding_history": [line for line in history.split("\r\n") if line],
    }


_W64_RIFF = b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00"
_W64_DATA = b"data\xf3\xac\xd3\x11\x8c\xd1\x00\xc0\x4f\x8e\xdb\x8a"


def data_extent(path: str | os.PathLike[str] | bytes) -> tuple[int, int] | None:
    """``(stated, present)``: the audio bytes a header states, and those the file holds.

    Reads the ``data`` chunk of WAV/RF64 (its 64-bit size from ``ds64``), the ``data`` chunk of
    Sony Wave64 and the ``SSND`` chunk of AIFF/AIFF-C. ``present`` is less than ``stated`` when
    the file was cut off. None for other formats, or when no audio chunk is found.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(12)
            if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
                found = _riff_data(fh)
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                found = _aiff_data(fh)
            elif head == _W64_RIFF[:12]:
                found = _w64_data(fh)
            else:
                return None
    except OSError:
        return None
    if found is None:
        return None
    offset, stated = found
    return stated, max(0, min(stated, size - offset))


def _riff_data(fh: Any) -> tuple[int, int] | None:
    ds64_data: int | None = None
    for cid, size, start in _iff_chunks(fh, "<I"):
        if cid == b"ds64":
            body = fh.read(size)
            if len(body) >= 16:
                ds64_data = struct.unpack("<Q", body[8:16])[0]
        elif cid == b"data":
            if size == 0xFFFFFFFF and ds64_data is not None:
                size = ds64_data
            return start, size
    return None


def _aiff_data(fh: Any) -> tuple[int, int] | None:
    for cid, size, start in _iff_chunks(fh, ">I"):
        if cid == b"SSND":
            fields = fh.read(8)
            if len(fields) < 8 or size < 8:
                return None
            skip = struct.unpack(">I", fields[:4])[0]  # the "offset" field: bytes before audio
            return start + 8 + skip, max(0, size - 8 - skip)
    return None


def _w64_data(fh: Any) -> tuple[int, int] | None:
    fh.seek(40)  # riff GUID, 64-bit size, wave GUID
    while True:
        hdr = fh.read(24)
        if len(hdr) < 24:
            return None
        guid, size = hdr[:16], struct.unpack("<Q", hdr[16:])[0]  # size counts the 24 bytes
        if guid == _W64_DATA:
            return fh.tell(), max(0, size - 24)
        if size < 24:
            return None
        fh.seek(size - 24 + (-size % 8), os.SEEK_CUR)
