"""The audio contract, file I/O (soundfile), resampling (soxr), dither and BWF metadata."""

from audio_restorer.audio.contract import MAX_CHANNELS, MAX_RATE, MIN_RATE, check_audio, check_rate

__all__ = ["MAX_CHANNELS", "MAX_RATE", "MIN_RATE", "check_audio", "check_rate"]
