"""Cut a stream of blocks into analysis frames on one global grid.

Analysis passes see a file as blocks of arbitrary size. Frame ``m`` always covers input samples
``[m * hop - pad, m * hop - pad + length)`` (zeros before the start and after the end), so the
frames, and everything computed from them, do not depend on how the file was split.
"""

from __future__ import annotations

import numpy as np


class Framer:
    """Turn blocks of a mono signal into frames of ``length`` samples every ``hop`` samples.

    Parameters
    ----------
    length : int
        Frame length in samples.
    hop : int
        Distance between frame starts in samples.
    pad : int
        Zeros prepended to the signal, so frame ``m`` is centred on sample ``m * hop`` when
        ``pad = length // 2``.
    """

    def __init__(self, length: int, hop: int, pad: int) -> None:
        self.length = int(length)
        self.hop = int(hop)
        self.pad = int(pad)
        self.buf = np.zeros(self.pad, dtype=np.float64)
        self.next_frame = 0  # index of the next frame to emit
        self.buf_start = -self.pad  # absolute sample index of buf[0]
        self.total = 0  # input samples seen

    def _frames(self, end: int) -> np.ndarray:
        """Every not yet emitted frame whose last sample lies before absolute index ``end``."""
        first = self.next_frame
        last = (end - self.length + self.pad) // self.hop  # inclusive
        if last < first:
            return np.zeros((0, self.length))
        starts = np.arange(first, last + 1) * self.hop - self.pad - self.buf_start
        view = np.lib.stride_tricks.sliding_window_view(self.buf, self.length)
        frames = view[starts]
        self.next_frame = last + 1
        drop = self.next_frame * self.hop - self.pad - self.buf_start
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_start += drop
        return np.array(frames)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add samples (shape ``(n,)``); return the frames now complete, ``(k, length)``."""
        block = np.asarray(block, dtype=np.float64)
        self.buf = np.concatenate([self.buf, block])
        self.total += block.size
        return self._frames(self.buf_start + self.buf.size)

    def finish(self) -> np.ndarray:
        """Zero-pad the end and return the remaining frames, up to the one centred (when
        ``pad = length // 2``) on the last sample's frame slot ``ceil(total / hop)``."""
        n_frames = -(-self.total // self.hop) + 1
        end = (n_frames - 1) * self.hop - self.pad + self.length
        need = end - (self.buf_start + self.buf.size)
        if need > 0:
            self.buf = np.concatenate([self.buf, np.zeros(need)])
        return self._frames(end)
