"""Suppression of lossy-codec artefacts (MP3/AAC "birdies", spectral holes, pre-echo smear).

At low bit rates a perceptual coder drops the high bands it cannot afford, frame by frame, so
the upper spectrum flickers between present and absent: holes, and isolated tonal islands
("birdies") that swirl as they come and go. Around attacks the quantisation noise of a long
transform block is spread over the whole block, so it is heard *before* the attack (pre-echo).

Real signals change smoothly from frame to frame at these frequencies, so the repair is a
temporal smoothing of the magnitude spectrum where the codec broke it (STFT, 23 ms frames,
75 % overlap, above ``min_hz``):

* a bin far below the median of its neighbours in time (``hole_db``) is raised towards that
  median (keeping its phase, or a deterministic pseudo-random one where the coder left zero);
* a bin far above it, in a frame where only a few bins jump (not an onset, which lifts many
  bins at once), is lowered towards it;
* a frame whose upper-band energy rises above the quiet before it while a much louder frame
  (an attack, ``onset_db``) follows within the codec block length is brought back down to the
  quiet level: that rise is the pre-echo.

``strength`` blends each correction (in dB) between none and full.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from audio_restorer.stages._tone_stft import fft_size, istft, stft
from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

_STEP = 3  # the temporal median takes every 3rd frame over ±6 frames (about 70 ms at 44.1 kHz)
_ONSET_FRACTION = 0.3  # more bins than this jumping at once is an onset, not a birdie
_PRE_ECHO_S = 0.025  # longest pre-echo (an MP3 long block is 1152 samples, 26 ms)


@dataclass(frozen=True)
class CodecParams(StageParams):
    strength: float = param(
        0.8, min=0.0, max=1.0, step=0.05, help="How far flagged bins are moved (0 = no change)."
    )
    min_hz: float = param(
        2000.0,
        min=500.0,
        max=16000.0,
        step=100.0,
        unit="Hz",
        help="Lowest frequency treated; codecs drop bands mostly above a few kHz.",
    )
    hole_db: float = param(
        12.0,
        min=4.0,
        max=40.0,
        step=1.0,
        unit="dB",
        help="Deviation from the temporal median that marks a hole or a birdie.",
    )
    pre_echo: bool = param(True, help="Also suppress pre-echo smear before attacks.")
    onset_db: float = param(
        12.0,
        min=6.0,
        max=40.0,
        step=1.0,
        unit="dB",
        help="Rise of the upper band that counts as an attack for pre-echo suppression.",
    )


def _pseudo_phase(frames: np.ndarray, bins: int) -> np.ndarray:
    """Deterministic phases in [0, 2π) for absolute frame indices (same in every block)."""
    k = np.arange(bins, dtype=np.uint64)[None, :]
    f = frames.astype(np.uint64)[:, None]
    h = (f * np.uint64(0x9E3779B1) + k * np.uint64(0x85EBCA77)) & np.uint64(0xFFFFFFFF)
    h = (h ^ (h >> np.uint64(15))) * np.uint64(0x2C1B3C6D) & np.uint64(0xFFFFFFFF)
    return h.astype(np.float64) / 2.0**32 * 2.0 * np.pi


@register
class Codec(Stage):
    name = "codec"
    title = "Codec artefacts"
    summary = "Smooths MP3/AAC spectral holes, birdies and pre-echo over time."
    Params = CodecParams
    offers_removed = True

    def n_fft(self, rate: int) -> int:
        return fft_size(rate, 1024)

    def context_frames(self, rate: int) -> int:
        n = self.n_fft(rate)
        pre = int(np.ceil(_PRE_ECHO_S * rate / (n // 4))) + 4
        return n + (max(2 * _STEP, pre) + 2) * (n // 4)

    def alignment_frames(self, rate: int) -> int:
        return self.n_fft(rate) // 4

    def process(
        self, audio: np.ndarray, rate: int, *, analysis: object = None, offset: int = 0
    ) -> np.ndarray:
        p = self.params
        if p.strength == 0 or not audio.shape[1]:
            return audio.copy()
        n = self.n_fft(rate)
        hop = n // 4
        spec = stft(audio.astype(np.float64), n)
        freqs = np.fft.rfftfreq(n, 1.0 / rate)
        band = freqs >= p.min_hz
        if not np.any(band):
            return audio.copy()
        sub = spec[..., band]
        mag = np.abs(sub)
        tiny = 1e-12
        log = (20.0 * np.log10(mag + tiny)).astype(np.float32)  # float32: a faster median
        median = _temporal_median(log, _STEP)
        # a bin is only a "hole" where its neighbourhood holds signal (absolute: about -110 dBFS)
        floor = 1e-6 * np.sqrt(n)
        alive = median > 20.0 * np.log10(floor)
        dev = log - median
        change = np.zeros_like(log)
        holes = (dev < -p.hole_db) & alive
        change[holes] = -dev[holes]  # up to the median
        jumps = dev > p.hole_db
        onset = np.mean(jumps, axis=-1, keepdims=True) > _ONSET_FRACTION
        birdies = jumps & ~onset
        change[birdies] = -dev[birdies]  # down to the median
        if p.pre_echo:
            change += self._pre_echo_db(mag, rate, hop)[..., None]
        gain = 10.0 ** (p.strength * change / 20.0)
        new = sub * gain
        # where the coder left (near) zero there is no phase to keep: give a fixed random one
        empty = holes & (mag < 1e-3 * floor)
        if np.any(empty):
            first = offset // hop
            phase = _pseudo_phase(first + np.arange(sub.shape[1]), sub.shape[2])
            fill = p.strength * 10.0 ** (median / 20.0) * np.exp(1j * phase)
            new = np.where(empty, np.broadcast_to(fill, new.shape), new)
        spec[..., band] = new
        return istft(spec, n, audio.shape[1]).astype(np.float32)

    def _pre_echo_db(self, mag: np.ndarray, rate: int, hop: int) -> np.ndarray:
        """Gain (dB, ≤ 0) per channel and frame that removes pre-echo before attacks."""
        p = self.params
        energy = 10.0 * np.log10(np.mean(mag * mag, axis=-1) + 1e-24)  # (channels, frames)
        pre = max(2, round(_PRE_ECHO_S * rate / hop))
        # quiet: the lowest of the 2*pre+2 frames before (reaching back past any smear);
        # loud: the highest 4..pre+3 frames ahead (outside this frame's window). A frame must
        # itself stay `onset_db` under the attack:
        # one whose window already holds much of the attack is left alone (a frame touching it
        # only with its window tail weighs little in the overlap-add).
        quiet = _shifted_min(energy, 2 * pre + 2)
        loud = _shifted_max(energy, pre, ahead=4)
        attack_ahead = (loud - quiet > p.onset_db) & (energy < loud - p.onset_db)
        smear = energy - (quiet + 3.0)
        return np.where(attack_ahead & (smear > 0), -smear, 0.0)


def _temporal_median(a: np.ndarray, step: int) -> np.ndarray:
    """Median of frames ``t-2s, t-s, t, t+s, t+2s`` (axis 1 of ``(channels, frames, bins)``).

    Sampling every ``step`` frames spans ``4*step + 1`` frames with a five-point median, so a
    hole up to ``2*step`` frames long never holds the majority; a min/max network computes it.
    """
    r = 2 * step
    padded = np.concatenate(
        [np.repeat(a[:, :1], r, axis=1), a, np.repeat(a[:, -1:], r, axis=1)], axis=1
    )
    n = a.shape[1]
    v, w, c, x, y = (padded[:, i * step : i * step + n] for i in range(5))
    low = np.maximum(np.minimum(v, w), np.minimum(x, y))
    high = np.minimum(np.maximum(v, w), np.maximum(x, y))
    return np.maximum(np.minimum(c, low), np.minimum(np.maximum(c, low), high))


def _shifted_min(a: np.ndarray, n: int) -> np.ndarray:
    """``out[t] = min(a[t-n : t])`` (the n frames before t; edge frames repeat)."""
    padded = np.concatenate([np.repeat(a[:, :1], n, axis=1), a], axis=1)
    full = ndimage.minimum_filter1d(padded, size=n, axis=1, mode="nearest")
    # centred output i covers padded[i - n//2 : i - n//2 + n]; we want padded[t : t + n]
    return full[:, n // 2 : n // 2 + a.shape[1]]


def _shifted_max(a: np.ndarray, n: int, *, ahead: int) -> np.ndarray:
    """``out[t] = max(a[t+ahead : t+ahead+n])`` (edge frames repeat)."""
    padded = np.concatenate([a, np.repeat(a[:, -1:], ahead + n, axis=1)], axis=1)
    full = ndimage.maximum_filter1d(padded, size=n, axis=1, mode="nearest")
    start = ahead + n // 2
    return full[:, start : start + a.shape[1]]
