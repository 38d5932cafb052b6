"""Pitch and speed tracking engines.

The built-in engine (:class:`~audio_restorer.pitch.tracker.PeakSpeedTracker`) follows the
common motion of spectral peaks and needs no torch; the ``crepe`` engine lives in
:mod:`audio_restorer.ml.crepe` and is imported only when asked for.
"""

from audio_restorer.pitch.peaks import Peaks, spectral_peaks
from audio_restorer.pitch.tracker import PeakSpeedTracker, SpeedTrack

__all__ = ["PeakSpeedTracker", "Peaks", "SpeedTrack", "spectral_peaks"]
