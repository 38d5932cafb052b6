"""Decimated overviews of a file (min/max envelope and a coarse spectrogram) for the views.

Drawing every sample of an hour-long recording would make the views useless; instead a worker
reads the file once, block by block, and keeps a min/max pair per bucket of frames and one
spectrum per column. The views draw only this overview, whose size is bounded whatever the
file's length. (No Qt here: the builder is plain numpy and is fed by a worker.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from audio_restorer.audio.ffmpeg import DecodeCache
from audio_restorer.audio.io import AudioReader

#: most buckets of the envelope (two floats each): 0.5 MB whatever the length; enough for 16x
#: zoom on a 4K-wide view before the envelope gets coarser than a pixel
MAX_BUCKETS = 65_536
#: most spectrogram columns, and the FFT size (bins = N_FFT // 2 + 1)
MAX_COLUMNS = 1600
N_FFT = 1024


@dataclass
class Overview:
    """What the views draw for one signal.

    Attributes
    ----------
    rate : int
        Sample rate of the signal in Hz.
    frames : int
        Length of the signal in frames.
    bucket : int
        Frames per envelope bucket.
    lo, hi : np.ndarray [shape=(buckets,)]
        Minimum and maximum sample over all channels in each bucket.
    spec_db : np.ndarray [shape=(columns, N_FFT // 2 + 1)]
        Power spectrum in dB (re full scale) of the channel mean, one row per column.
    hop : int
        Frames between spectrogram columns.
    """

    rate: int
    frames: int
    bucket: int
    lo: np.ndarray
    hi: np.ndarray
    spec_db: np.ndarray
    hop: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    def envelope_xy(self, offset_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Points of the envelope as one polyline alternating min and max per bucket."""
        t = offset_s + (np.arange(self.lo.size) * self.bucket) / self.rate
        x = np.repeat(t, 2)
        y = np.empty(2 * self.lo.size, dtype=np.float32)
        y[0::2] = self.lo
        y[1::2] = self.hi
        return x, y


class OverviewBuilder:
    """Streaming builder: ``update(block)`` on every block in order, then :meth:`result`."""

    def __init__(
        self,
        rate: int,
        frames: int,
        *,
        max_buckets: int = MAX_BUCKETS,
        max_columns: int = MAX_COLUMNS,
        n_fft: int = N_FFT,
    ) -> None:
        self.rate = rate
        self.expected = max(int(frames), 1)
        self.bucket = max(1, math.ceil(self.expected / max_buckets))
        self.n_fft = n_fft
        self.hop = max(n_fft // 4, math.ceil(self.expected / max_columns))
        self.window = np.hanning(n_fft).astype(np.float32)
        self.norm = float(np.sum(self.window)) ** 2 / 4.0
        self._lo: list[np.ndarray] = []
        self._hi: list[np.ndarray] = []
        self._env_tail = np.zeros((0,), dtype=np.float32)
        self._env_tail_hi = np.zeros((0,), dtype=np.float32)
        self._buf = np.zeros((0,), dtype=np.float32)
        self._buf_start = 0  # file frame of _buf[0]
        self._next_col = 0  # file frame where the next column starts
        self._cols: list[np.ndarray] = []
        self.frames = 0

    def update(self, block: np.ndarray) -> None:
        """Add a ``(channels, n)`` float32 block."""
        if not block.shape[1]:
            return
        self.frames += block.shape[1]
        lo_all = np.concatenate([self._env_tail, block.min(axis=0)])
        hi_all = np.concatenate([self._env_tail_hi, block.max(axis=0)])
        whole = lo_all.size // self.bucket * self.bucket
        if whole:
            self._lo.append(lo_all[:whole].reshape(-1, self.bucket).min(axis=1))
            self._hi.append(hi_all[:whole].reshape(-1, self.bucket).max(axis=1))
        self._env_tail, self._env_tail_hi = lo_all[whole:], hi_all[whole:]
        self._buf = np.concatenate([self._buf, block.mean(axis=0)])
        self._columns(final=False)

    def _columns(self, final: bool) -> None:
        end = self._buf_start + self._buf.size
        if final and self._next_col < end:
            pad = self._next_col + self.n_fft - end
            if pad > 0:
                self._buf = np.concatenate([self._buf, np.zeros(pad, dtype=np.float32)])
                end += pad
        count = (
            0
            if end < self._next_col + self.n_fft
            else ((end - self.n_fft - self._next_col) // self.hop + 1)
        )
        if count > 0:
            first = self._next_col - self._buf_start
            idx = first + np.arange(count)[:, None] * self.hop + np.arange(self.n_fft)[None, :]
            frames = self._buf[idx] * self.window
            power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 / self.norm
            self._cols.append((10.0 * np.log10(power + 1e-12)).astype(np.float32))
            self._next_col += count * self.hop
        drop = min(self._next_col - self._buf_start, self._buf.size)
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop

    def result(self) -> Overview:
        lo, hi = list(self._lo), list(self._hi)
        if self._env_tail.size:
            lo.append(np.array([self._env_tail.min()], dtype=np.float32))
            hi.append(np.array([self._env_tail_hi.max()], dtype=np.float32))
        self._env_tail = self._env_tail_hi = np.zeros((0,), dtype=np.float32)
        self._columns(final=True)
        bins = self.n_fft // 2 + 1
        spec = np.concatenate(self._cols) if self._cols else np.full((1, bins), -120.0, np.float32)
        empty = np.zeros((0,), dtype=np.float32)
        return Overview(
            rate=self.rate,
            frames=self.frames,
            bucket=self.bucket,
            lo=np.concatenate(lo) if lo else empty,
            hi=np.concatenate(hi) if hi else empty,
            spec_db=spec,
            hop=self.hop,
        )


def overview_of_array(audio: np.ndarray, rate: int) -> Overview:
    """Overview of an in-memory ``(channels, frames)`` signal (previews)."""
    builder = OverviewBuilder(rate, audio.shape[1])
    builder.update(audio)
    return builder.result()


def overview_of_file(
    path: str | os.PathLike[str],
    *,
    block_frames: int = 1 << 16,
    should_stop: Callable[[], bool] | None = None,
    decode_cache: DecodeCache | None = None,
) -> Overview:
    """Read ``path`` once and build its overview (``should_stop`` aborts with None result)."""
    with AudioReader(path, decode_cache=decode_cache) as reader:
        builder = OverviewBuilder(reader.info.rate, reader.info.frames)
        for block in reader.blocks(block_frames):
            if should_stop is not None and should_stop():
                raise InterruptedError("overview cancelled")
            builder.update(block)
        return builder.result()
