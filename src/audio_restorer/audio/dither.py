"""Word-length reduction with TPDF dither.

Restoration runs in float; a 16- or 24-bit output must be quantised. Plain rounding leaves
distortion correlated with the music at low levels; adding triangular-PDF noise of ±1 LSB before
rounding turns it into a benign, constant noise floor (Lipshitz, Wannamaker & Vanderkooy). The
generator is seeded and continues across blocks, so the same input gives the same bytes.
"""

from __future__ import annotations

import numpy as np


class Quantizer:
    """Quantise float blocks to ``bits``-bit integers (int16 for 16, left-justified int32 for 24).

    Calling it returns ``(integers, clipped_count)``; integers use libsndfile's convention
    (full scale = 2**(bits-1)), so reading them back as float gives the same scale.
    """

    def __init__(self, bits: int, *, dither: bool = True, seed: int = 0) -> None:
        if bits not in (16, 24):
            raise ValueError(f"bits must be 16 or 24, got {bits}")
        self.bits = bits
        self.dither = dither
        self.rng = np.random.default_rng(seed)
        self.scale = float(2 ** (bits - 1))
        self.lo, self.hi = -self.scale, self.scale - 1

    def __call__(self, block: np.ndarray) -> tuple[np.ndarray, int]:
        x = block.astype(np.float64) * self.scale
        if self.dither:
            x += self.rng.random(x.shape) - self.rng.random(x.shape)
        q = np.rint(x)
        clipped = int(np.count_nonzero((q < self.lo) | (q > self.hi)))
        np.clip(q, self.lo, self.hi, out=q)
        if self.bits == 16:
            return q.astype(np.int16), clipped
        return (q.astype(np.int32) << 8), clipped
