"""Streaming ITU-R BS.1770-4 / EBU R128 loudness.

pyloudnorm measures loudness on a whole in-memory array; long archival files do not fit. This
meter uses pyloudnorm's own K-weighting filter design (so both agree), runs the filters with
carried state, and keeps only the mean square of each 100 ms sub-block. Gating blocks (400 ms,
75 % overlap) and short-term windows (3 s, for loudness range per EBU Tech 3342) are sums of
sub-blocks, so nothing but a few floats per 100 ms is stored.
"""

from __future__ import annotations

import numpy as np
from pyloudnorm.iirfilter import IIRfilter
from scipy import signal

ABSOLUTE_GATE_LUFS = -70.0
_CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)


def k_weighting_sos(rate: int) -> np.ndarray:
    """K-weighting as second-order sections (pyloudnorm's coefficients for ``rate``)."""
    shelf = IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, rate, "high_shelf")
    highpass = IIRfilter(0.0, 0.5, 38.0, rate, "high_pass")
    return np.vstack([np.concatenate([f.b, f.a]) / f.a[0] for f in (shelf, highpass)])


class LoudnessMeter:
    """Feed blocks ``(channels, frames)`` with :meth:`update`; read the results at the end."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.sos = k_weighting_sos(rate)
        self.zi = np.zeros((self.sos.shape[0], channels, 2))
        gains = np.array([_CHANNEL_GAINS[c] if c < 5 else 1.0 for c in range(channels)])
        self.gains = gains[:, None]
        self.sub = rate // 10  # 100 ms sub-block
        self._partial = np.zeros(0)  # weighted squares of the unfinished sub-block
        self._sums: list[np.ndarray] = []  # per-sub-block sums of weighted squares

    def update(self, block: np.ndarray) -> None:
        if not block.shape[1]:
            return
        filtered, self.zi = signal.sosfilt(self.sos, block.astype(np.float64), axis=1, zi=self.zi)
        power = np.sum(self.gains * filtered * filtered, axis=0)
        if self._partial.size:
            power = np.concatenate([self._partial, power])
        full = power.size // self.sub * self.sub
        if full:
            self._sums.append(power[:full].reshape(-1, self.sub).sum(axis=1))
        self._partial = power[full:]

    def _sub_sums(self) -> np.ndarray:
        return np.concatenate(self._sums) if self._sums else np.zeros(0)

    def _windows(self, subs_per_window: int) -> np.ndarray:
        """Loudness (LUFS) of every window of ``subs_per_window`` sub-blocks, 100 ms apart."""
        sums = self._sub_sums()
        if sums.size < subs_per_window:
            return np.zeros(0)
        csum = np.concatenate([[0.0], np.cumsum(sums)])
        energy = (csum[subs_per_window:] - csum[:-subs_per_window]) / (subs_per_window * self.sub)
        with np.errstate(divide="ignore"):
            return -0.691 + 10.0 * np.log10(energy)

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS (``-inf`` for silence or under 400 ms)."""
        blocks = self._windows(4)
        blocks = blocks[blocks > ABSOLUTE_GATE_LUFS]
        if not blocks.size:
            return float("-inf")
        relative = _power_mean(blocks) - 10.0
        gated = blocks[blocks > relative]
        return float(_power_mean(gated)) if gated.size else float("-inf")

    def loudness_range(self) -> float:
        """Loudness range (LRA) in LU per EBU Tech 3342 (NaN when too short or quiet)."""
        short = self._windows(30)
        short = short[short > ABSOLUTE_GATE_LUFS]
        if not short.size:
            return float("nan")
        short = short[short > _power_mean(short) - 20.0]
        if not short.size:
            return float("nan")
        low, high = np.percentile(short, [10, 95])
        return float(high - low)

    def max_short_term(self) -> float:
        short = self._windows(30)
        return float(short.max()) if short.size else float("-inf")

    def result(self) -> float:
        return self.integrated()


def _power_mean(lufs: np.ndarray) -> float:
    return float(10.0 * np.log10(np.mean(10.0 ** (lufs / 10.0))))


def integrated_loudness(audio: np.ndarray, rate: int) -> float:
    """Integrated loudness (LUFS) of an in-memory ``(channels, frames)`` array."""
    meter = LoudnessMeter(rate, audio.shape[0])
    meter.update(audio)
    return meter.integrated()
