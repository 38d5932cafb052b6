"""Streaming sample-rate conversion with soxr (very high quality)."""

from __future__ import annotations

import numpy as np
import soxr


class Resampler:
    """Resample ``(channels, frames)`` blocks from ``in_rate`` to ``out_rate`` as a stream."""

    def __init__(self, in_rate: int, out_rate: int, channels: int, quality: str = "VHQ") -> None:
        self.channels = channels
        self._stream = soxr.ResampleStream(
            in_rate, out_rate, channels, dtype="float32", quality=quality
        )

    def push(self, block: np.ndarray) -> np.ndarray:
        return self._run(block, last=False)

    def finish(self) -> np.ndarray:
        return self._run(np.zeros((self.channels, 0), dtype=np.float32), last=True)

    def _run(self, block: np.ndarray, last: bool) -> np.ndarray:
        out = self._stream.resample_chunk(np.ascontiguousarray(block.T), last=last)
        return np.ascontiguousarray(out.reshape(-1, self.channels).T, dtype=np.float32)


def resample(audio: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample a whole ``(channels, frames)`` array."""
    if in_rate == out_rate:
        return audio.copy()
    r = Resampler(in_rate, out_rate, audio.shape[0])
    return np.concatenate([r.push(audio), r.finish()], axis=1)
