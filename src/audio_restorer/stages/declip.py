"""Declipping: find clipped runs and rebuild them consistently with a high-order AR model.

An overloaded converter, tape or cutting amplifier flattens the peaks of the waveform at a clip
level. The samples there are not lost without trace: the true waveform went *beyond* the clip
level, with the same sign. This stage

1. finds the clip level of each channel and polarity over the whole file (an analysis pass):
   a histogram of sample magnitudes in 0.01 dB bins shows a pile-up at and just below the peak
   when the signal was clipped (also after a gain change or mild filtering, which spread the
   pile-up over a few bins), and a thin tail when it was not (strong soft clipping, whose
   pile-up spreads over decibels, is not detected yet: set ``clip_level_db`` for it);
2. marks the samples at or beyond that level;
3. rebuilds them by least-squares AR interpolation (LSAR) under the consistency constraint
   ``sign(x) * y >= |x|`` (each rebuilt sample at least as far out as the clipped one; an
   active-set loop pins violating samples and re-solves), with AR models of up to order 256
   (at 44.1 kHz) whose order is chosen per 40 ms frame by Akaike's criterion, fitted first to
   the clipped signal and then re-estimated on the reconstruction (4 Janssen iterations).
   All clipped runs of a 20 ms tile are solved jointly; the tiles shift by half a tile every
   other iteration. See :mod:`audio_restorer.stages._declip_lsar`.

Why this method. Measured on the benchmark clips clipped at -6 dB (mono, 4 s): the order-32
LSAR of the first version gained +8 dB median SI-SDR, and barely more (+9 dB) with the *true*
AR model of the clean signal, so the model order, not its estimation, was the limit: most of
the remaining error sat in runs of 17-64 samples on piano, strings and voices, whose many
partials an order-32 model cannot hold. Order 256 raised the median to about +16 dB; solving
each run alone with its neighbours fixed lost 5-20 dB on speech (long filters couple runs a
pitch period apart), which joint tiles recover. A consistent sparse declipper (A/S-SPADE in
overlapping DFT frames) was the other candidate; with its tens to hundreds of iterations per
frame and nearly every frame of loud music holding clipped samples, it could not be brought
near 20x real time in numpy, while LSAR's cost grows only with the number of clipped samples.

Samples that are not clipped are returned bit-exact; clean input is returned unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from audio_restorer.stages import _ar
from audio_restorer.stages import _declip_lsar as _lsar
from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

#: magnitude histogram: 0.01 dB bins from -80 dBFS to +20 dBFS
_BIN_DB = 0.01
_LO_DB = -80.0
_NBINS = round(100.0 / _BIN_DB)


@dataclass(frozen=True)
class DeclipParams(StageParams):
    clip_level_db: float | None = param(
        None,
        min=-60.0,
        max=12.0,
        step=0.1,
        unit="dBFS",
        help="Clip level; automatic (found from the file's level histogram) when unset.",
    )
    sensitivity: float = param(
        0.5,
        min=0.0,
        max=1.0,
        step=0.05,
        help="Higher accepts a smaller pile-up of samples near the peak as clipping.",
    )
    max_run_ms: float = param(
        4.0, min=0.1, max=20.0, step=0.1, unit="ms", help="Longest clipped run rebuilt."
    )
    # 256 at 44.1 kHz (5.8 ms, up to 128 partials): piano and string chords need it; the
    # order actually used is chosen per 40 ms frame among 1/8, 1/4, 1/2 and all of it (AIC)
    ar_order: int = param(
        256,
        min=16,
        max=512,
        step=1,
        help="Longest autoregressive model of the music (at 44.1 kHz; scaled with the rate).",
    )
    # 4 Janssen iterations: 3 lost 1-2 dB on music and 3-8 dB on speech (bench clips, 4 s)
    iterations: int = param(
        4, min=1, max=6, step=1, help="Model re-estimations on the reconstruction (Janssen)."
    )


class ClipHistogram:
    """Whole-file analysis: per channel and polarity, a histogram of magnitudes in dB."""

    def __init__(self, channels: int) -> None:
        self.counts = np.zeros((channels, 2, _NBINS + 1), dtype=np.int64)

    def update(self, block: np.ndarray) -> None:
        for c in range(block.shape[0]):
            for k, part in enumerate((block[c][block[c] > 0], -block[c][block[c] < 0])):
                if part.size:
                    db = 20.0 * np.log10(part.astype(np.float64))
                    b = np.clip(((db - _LO_DB) / _BIN_DB).astype(np.int64), 0, _NBINS)
                    self.counts[c, k] += np.bincount(b, minlength=_NBINS + 1)

    def result(self) -> np.ndarray:
        return self.counts


def clip_levels(counts: np.ndarray, *, sensitivity: float) -> np.ndarray:
    """Clip level (linear, > 0) per channel and polarity, 0 where the signal is not clipped.

    The pile-up test: walking down from the highest occupied bin, bins are part of the clip
    region while they hold more than ``ratio`` times the average count of the bins 1-3 dB
    below the peak (the density an unclipped signal would have there). The region is clipping
    if it holds at least ``min_count`` samples.

    Parameters
    ----------
    counts : np.ndarray [shape=(channels, 2, bins)]
        From :class:`ClipHistogram` (polarity 0 positive, 1 negative).
    """
    ratio = 8.0 * 4.0 ** (0.5 - sensitivity)
    min_count = 12.0 * 4.0 ** (0.5 - sensitivity)
    levels = np.zeros(counts.shape[:2])
    for c in range(counts.shape[0]):
        for k in range(2):
            h = counts[c, k]
            occupied = np.flatnonzero(h)
            if occupied.size == 0:
                continue
            top = int(occupied[-1])
            base_bins = h[max(0, top - 300) : max(0, top - 100)]
            baseline = float(base_bins.mean()) if base_bins.size else 0.0
            limit = max(ratio * baseline, 2.0)
            i = top
            while i > max(0, top - 200) and h[i] > limit:
                i -= 1
            region = float(h[i + 1 : top + 1].sum())
            if i == top or region < min_count:
                continue
            levels[c, k] = 10.0 ** ((_LO_DB + (i + 1) * _BIN_DB) / 20.0)
    return levels


@register
class Declip(Stage):
    name = "declip"
    title = "De-clip"
    summary = "Rebuild clipped peaks beyond the clip level with a high-order constrained AR fit."
    Params = DeclipParams
    offers_removed = True

    def _geometry(self, rate: int) -> tuple[int, int, int, tuple[int, ...]]:
        """(model hop, model window, longest run, candidate orders) in samples."""
        # models every 40 ms over 80 ms: long enough for order 256, short enough for speech
        hop = max(64, round(0.04 * rate))
        max_run = max(2, round(self.params.max_run_ms * 1e-3 * rate))
        top = max(8, round(self.params.ar_order * rate / 44100))
        candidates = tuple(sorted({max(4, top // 8), max(4, top // 4), max(4, top // 2), top}))
        return hop, 2 * hop, max_run, candidates

    def context_frames(self, rate: int) -> int:
        hop, win, max_run, candidates = self._geometry(rate)
        # per iteration a sample's estimate depends on (a) the samples its tile's system
        # reaches: the tile (hop / 2), a run hanging over its end, and the filter order either
        # side; (b) the model of the frame holding the tile's centre, whose window reaches a
        # window (2 hop) beyond a tile's edge
        per_iter = win + hop // 2 + max_run + max(candidates) + 8
        return self.params.iterations * per_iter

    def preferred_block_frames(self, rate: int) -> int:
        # the context (0.44 s each side at 44.1 kHz) is re-processed with every block: blocks
        # of 2^18 frames (6 s) keep that overhead near 15 %
        return max(1 << 18, 8 * self.context_frames(rate))

    def analyzer(self, rate: int, channels: int) -> ClipHistogram | None:
        return ClipHistogram(channels) if self.params.clip_level_db is None else None

    def findings(self, analysis: Any) -> dict[str, Any]:
        if analysis is None:  # the clip level is a parameter
            return {}
        levels = clip_levels(analysis, sensitivity=self.params.sensitivity)
        if not np.any(levels > 0):
            return {"clip_level_dbfs": None, "summary": "no clipping found (left as it is)"}
        db = [
            [round(20.0 * float(np.log10(v)), 2) if v > 0 else None for v in row] for row in levels
        ]
        shown = "; ".join(
            "ch{} {}".format(c + 1, "/".join("-" if v is None else f"{v:+.2f}" for v in row))
            for c, row in enumerate(db)
        )
        return {
            "clip_level_dbfs": db,
            "summary": f"clipped at (dBFS, positive/negative) {shown}",
        }

    def levels(self, audio: np.ndarray, analysis: Any) -> np.ndarray:
        """Clip levels (channels, 2) from the analysis, the fixed parameter, or ``audio``."""
        if self.params.clip_level_db is not None:
            lvl = 10.0 ** (self.params.clip_level_db / 20.0)
            return np.full((audio.shape[0], 2), lvl)
        if analysis is None:
            hist = ClipHistogram(audio.shape[0])
            hist.update(audio)
            analysis = hist.result()
        return clip_levels(analysis, sensitivity=self.params.sensitivity)

    def clipped_mask(self, audio: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Boolean mask [shape=(channels, frames)] of samples at or beyond the clip level."""
        pos = np.where(levels[:, :1] > 0, audio >= levels[:, :1], False)
        neg = np.where(levels[:, 1:] > 0, audio <= -levels[:, 1:], False)
        return pos | neg

    def process(
        self, audio: np.ndarray, rate: int, *, analysis: Any = None, offset: int = 0
    ) -> np.ndarray:
        levels = self.levels(audio, analysis)
        mask = self.clipped_mask(audio, levels)
        out = audio.copy()
        hop, win, max_run, candidates = self._geometry(rate)
        if not mask.any() or audio.shape[1] < 2 * max(candidates):
            return out
        x = audio.astype(np.float64)
        channels = x.shape[0]
        runs = []
        for c in range(channels):
            starts, stops = _ar.runs(mask[c])
            keep = stops - starts <= max_run
            runs.append((starts[keep], stops[keep]))
        # the constraint: each rebuilt sample at least as far out as the clipped one
        signed_level = np.where(mask, x, 0.0)
        tile_len = hop // 2
        frame0 = offset // hop
        nf = -(-(offset % hop + x.shape[1]) // hop)
        needed = np.zeros((channels, nf), dtype=bool)
        for c, (starts, _stops) in enumerate(runs):
            # frames holding a tile centre (tiles start at multiples of tile_len, shifted by
            # 0 or tile_len / 2), and their neighbours
            f = (starts + offset) // hop - frame0
            needed[c, np.clip(np.concatenate([f - 1, f, f + 1]), 0, nf - 1)] = True
        # The first models are fitted to the clipped signal itself: its flat tops distort the
        # spectrum less than zeroing the clipped samples, which left the first estimate near
        # the clip level (measured: speech clips +1..+3.5 dB, music within +-0.2 dB, heavily
        # clipped synthetic speech-like tones no longer diverge)
        y = x.copy()
        for it in range(self.params.iterations):
            filters = _lsar.frame_models(
                y,
                offset=offset,
                hop=hop,
                win=win,
                candidates=candidates,
                needed=needed,
            )
            # tiles shifted by half a tile every other iteration, so that runs on either
            # side of a tile border are also solved together
            shift = tile_len // 2 if it % 2 else 0
            for c, (starts, stops) in enumerate(runs):
                if starts.size == 0:
                    continue
                rc = _lsar.filter_acf(filters[c])
                y[c] = _lsar.solve_tiles(
                    y[c],
                    starts,
                    stops,
                    signed_level[c],
                    rc,
                    offset=offset,
                    hop=hop,
                    tile_len=tile_len,
                    shift=shift,
                    frame0=frame0,
                )
        done = mask & (y != x)
        out[done] = y[done].astype(np.float32)
        return out
