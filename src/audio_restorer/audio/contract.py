"""The one audio contract every layer shares.

Samples are ``float32`` arrays shaped ``(channels, frames)``; the sample rate is an ``int``
passed explicitly. Files are converted to this layout once, at the I/O boundary, and every
stage returns a new array instead of modifying its input.
"""

from __future__ import annotations

import numpy as np

from audio_restorer.errors import ParameterError

MIN_RATE = 8_000
MAX_RATE = 384_000
MAX_CHANNELS = 32


def check_rate(rate: object) -> int:
    """Return ``rate`` as an int, or raise :class:`ParameterError` if it is not a valid rate."""
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
        raise ParameterError(f"sample rate must be an int, got {rate!r}")
    if not MIN_RATE <= int(rate) <= MAX_RATE:
        raise ParameterError(f"sample rate must be in {MIN_RATE}..{MAX_RATE} Hz, got {rate}")
    return int(rate)


def check_audio(audio: np.ndarray, rate: int | None = None) -> np.ndarray:
    """Validate an array against the contract and return it unchanged.

    Parameters
    ----------
    audio : np.ndarray [shape=(channels, frames), dtype=float32]
    rate : int, optional
        Checked with :func:`check_rate` when given.
    """
    if not isinstance(audio, np.ndarray):
        raise ParameterError(f"audio must be a numpy array, got {type(audio).__name__}")
    if audio.dtype != np.float32:
        raise ParameterError(f"audio must be float32, got {audio.dtype}")
    if audio.ndim != 2:
        raise ParameterError(f"audio must be shaped (channels, frames), got shape {audio.shape}")
    if not 1 <= audio.shape[0] <= MAX_CHANNELS:
        raise ParameterError(f"audio must have 1..{MAX_CHANNELS} channels, got {audio.shape[0]}")
    if rate is not None:
        check_rate(rate)
    return audio
