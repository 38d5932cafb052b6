"""Measurements of audio: loudness, true peak, clipping, noise floor, bandwidth.

Every meter here is *streaming*: it takes blocks in order and keeps only small summaries, so a
two-hour 96 kHz file can be measured in bounded memory. The runner measures input and output
this way for the provenance report, and ``audio-restorer analyze`` prints the same numbers.
"""

from audio_restorer.analysis.loudness import LoudnessMeter, integrated_loudness
from audio_restorer.analysis.measure import Measurements, Measurer, measure, measure_file
from audio_restorer.analysis.truepeak import TruePeakMeter, true_peak_dbtp

__all__ = [
    "LoudnessMeter",
    "Measurements",
    "Measurer",
    "TruePeakMeter",
    "integrated_loudness",
    "measure",
    "measure_file",
    "true_peak_dbtp",
]
