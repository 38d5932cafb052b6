"""Block-wise running of separators, so long recordings are separated in bounded memory.

:class:`ContextSeparator` runs a *local* separator (one whose output at a frame depends only on
the input within a fixed distance, such as an STFT with median filters) on overlapping
windows of the stream and keeps each window's centre; window starts fall on the separator's
alignment grid (its STFT hop), so the block-wise stems equal the whole-file stems.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def empty(channels: int) -> np.ndarray:
    return np.zeros((channels, 0), dtype=np.float32)


class Fifo:
    """A growable ``(channels, frames)`` buffer that knows the absolute index of its first frame."""

    def __init__(self, channels: int) -> None:
        self.parts: list[np.ndarray] = []
        self.data = empty(channels)
        self.start = 0

    @property
    def end(self) -> int:
        return self.start + self.data.shape[1] + sum(p.shape[1] for p in self.parts)

    def append(self, block: np.ndarray) -> None:
        if block.shape[1]:
            self.parts.append(np.asarray(block, dtype=np.float32))

    def _join(self) -> None:
        if self.parts:
            self.data = np.concatenate([self.data, *self.parts], axis=1)
            self.parts = []

    def view(self, start: int, stop: int) -> np.ndarray:
        self._join()
        if start < self.start or stop > self.end:
            raise IndexError(f"frames {start}..{stop} not buffered ({self.start}..{self.end})")
        return self.data[:, start - self.start : stop - self.start]

    def take(self, frames: int) -> np.ndarray:
        """Remove and return the first ``frames`` frames."""
        out = self.view(self.start, self.start + frames).copy()
        self.drop_before(self.start + frames)
        return out

    def drop_before(self, index: int) -> None:
        self._join()
        if index > self.start:
            self.data = self.data[:, index - self.start :].copy()
            self.start = index


#: ``fn(window, offset) -> {source: (channels, frames)}``, the window's own length
SeparateFn = Callable[[np.ndarray, int], dict[str, np.ndarray]]


class ContextSeparator:
    """Stream a local separator with ``context`` frames each side of every block.

    Parameters
    ----------
    fn : callable
        ``fn(window, offset)`` separates ``window`` [shape=(channels, frames)], which starts at
        absolute frame ``offset``, into sources of the same shape.
    sources : list of str
        The keys ``fn`` returns.
    channels : int
        Channel count of the stream.
    context : int
        Frames of input each side of a block that affect its output.
    alignment : int
        Window starts are multiples of this (e.g. the STFT hop).
    block : int
        Frames of output computed per call of ``fn``.
    """

    def __init__(
        self,
        fn: SeparateFn,
        sources: list[str],
        channels: int,
        *,
        context: int,
        alignment: int,
        block: int,
    ) -> None:
        align = max(1, int(alignment))
        self.ctx = -(-int(context) // align) * align
        self.block = -(-max(int(block), align) // align) * align
        self.fn = fn
        self.sources = list(sources)
        self.channels = channels
        self.buf = Fifo(channels)
        self.pos = 0

    def _empty(self) -> dict[str, np.ndarray]:
        return {s: empty(self.channels) for s in self.sources}

    def _run(self, stop: int) -> dict[str, np.ndarray]:
        win_start = max(0, self.pos - self.ctx)
        win_stop = min(self.buf.end, stop + self.ctx)
        window = self.buf.view(win_start, win_stop)
        out = self.fn(window, win_start)
        result = {
            s: np.ascontiguousarray(out[s][:, self.pos - win_start : stop - win_start], np.float32)
            for s in self.sources
        }
        self.pos = stop
        self.buf.drop_before(max(0, self.pos - self.ctx))
        return result

    def push(self, block: np.ndarray) -> dict[str, np.ndarray]:
        self.buf.append(block)
        parts: list[dict[str, np.ndarray]] = []
        while self.buf.end >= self.pos + self.block + self.ctx:
            parts.append(self._run(self.pos + self.block))
        return join(parts, self.sources, self.channels)

    def finish(self) -> dict[str, np.ndarray]:
        if self.buf.end > self.pos:
            return self._run(self.buf.end)
        return self._empty()


def join(
    parts: list[dict[str, np.ndarray]], sources: list[str], channels: int
) -> dict[str, np.ndarray]:
    """Concatenate per-source blocks along time."""
    out = {}
    for s in sources:
        blocks = [p[s] for p in parts if p[s].shape[1]]
        if not blocks:
            out[s] = empty(channels)
        elif len(blocks) == 1:
            out[s] = blocks[0]
        else:
            out[s] = np.concatenate(blocks, axis=1)
    return out


def separate_in_blocks(
    stream: object, audio: np.ndarray, block_frames: int, sources: list[str]
) -> dict[str, np.ndarray]:
    """Push ``audio`` through a separation stream in blocks (tests and benchmarks)."""
    parts = [
        stream.push(audio[:, i : i + block_frames])  # type: ignore[attr-defined]
        for i in range(0, audio.shape[1], block_frames)
    ]
    parts.append(stream.finish())  # type: ignore[attr-defined]
    return join(parts, sources, audio.shape[0])
