from dataclasses import dataclass

import numpy as np
import pytest
from scipy import signal

from audio_restorer.stages import Stage, StageParams, create_stage, param
from audio_restorer.stages.base import process_in_blocks


def tone(freq: float, rate: int, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.tile(np.sin(2 * np.pi * freq * t), (channels, 1)).astype(np.float32)


@pytest.mark.parametrize("phase", ["linear", "minimum"])
@pytest.mark.parametrize("rate", [8000, 44100, 96000, 384000])
def test_rumble_is_3db_down_at_its_cutoff_and_passes_the_music(rate, phase):
    stage = create_stage("rumble", {"cutoff_hz": 40.0, "order": 4, "phase": phase})
    x = tone(40.0, rate, 2.0)
    y = stage(x, rate)
    half = x.shape[1] // 2  # skip the filter's onset
    gain_db = 20 * np.log10(np.std(y[:, half:]) / np.std(x[:, half:]))
    assert gain_db == pytest.approx(-3.01, abs=0.05 if phase == "minimum" else 0.15)
    music = tone(440.0, rate, 1.0)
    assert np.std(stage(music, rate)[:, half // 2 :]) == pytest.approx(np.std(music), rel=1e-3)


def test_rumble_removes_dc_and_block_wise_equals_whole(rng):
    x = (rng.standard_normal((2, 90011)) * 0.1 + 0.3).astype(np.float32)
    minimum = create_stage("rumble", {"phase": "minimum"})
    whole = minimum(x, 44100)
    assert abs(float(whole[:, 10000:].mean())) < 1e-3
    np.testing.assert_array_equal(process_in_blocks(minimum, x, 44100, 4093), whole)
    linear = create_stage("rumble")
    whole = linear(x, 44100)
    assert abs(float(whole[:, 30000:-30000].mean())) < 1e-3
    np.testing.assert_allclose(process_in_blocks(linear, x, 44100, 4093), whole, atol=2e-6)


def test_linear_phase_rumble_keeps_the_music_waveform():
    from audio_restorer.evaluation.metrics import si_sdr

    rate = 44100
    t = np.arange(rate * 2) / rate
    music = (0.3 * np.sin(2 * np.pi * 196 * t) + 0.2 * np.sin(2 * np.pi * 1320 * t + 1))[None]
    music = music.astype(np.float32)
    linear = create_stage("rumble")(music, rate)
    minimum = create_stage("rumble", {"phase": "minimum"})(music, rate)
    core = slice(rate // 2, -rate // 2)
    assert si_sdr(music[:, core], linear[:, core]) > 50
    assert si_sdr(music[:, core], minimum[:, core]) < si_sdr(music[:, core], linear[:, core])


def test_peak_normalise_reaches_the_target_exactly(rng):
    x = (rng.standard_normal((2, 5000)) * 0.05).astype(np.float32)
    y = create_stage("gain", {"mode": "peak", "peak_dbfs": -3.0})(x, 44100)
    assert 20 * np.log10(np.abs(y).max()) == pytest.approx(-3.0, abs=1e-4)
    fixed = create_stage("gain", {"gain_db": -6.0206})(x, 44100)
    np.testing.assert_allclose(fixed, x * 0.5, rtol=1e-4)


def test_stages_do_not_modify_their_input(rng):
    x = (rng.standard_normal((2, 4000)) * 0.1).astype(np.float32)
    before = x.copy()
    for name in ("rumble", "gain"):
        create_stage(name)(x, 44100)
    np.testing.assert_array_equal(x, before)


@dataclass(frozen=True)
class SmoothParams(StageParams):
    stage_name = "smooth_test"
    width: int = param(64, min=1, max=4096, help="Moving-average width in frames.")


class Smooth(Stage):
    """A local stage for testing the context machinery: a centred moving average done with an
    FFT-free cumulative sum, framed on a grid of 128 (like an STFT hop would be)."""

    name = "smooth_test"
    title = "test"
    summary = "test"
    Params = SmoothParams

    def context_frames(self, rate):
        return self.params.width

    def alignment_frames(self, rate):
        return 128

    def preferred_block_frames(self, rate):
        return 1000

    def process(self, audio, rate, *, analysis=None, offset=0):
        assert offset % 128 == 0
        return signal.oaconvolve(
            audio, np.ones((1, self.params.width)) / self.params.width, mode="same", axes=1
        ).astype(np.float32)


@pytest.mark.parametrize("block", [1, 97, 1000, 4096, 100_000])
def test_context_stream_equals_whole_file(rng, block):
    x = rng.standard_normal((2, 12_345)).astype(np.float32)
    stage = Smooth(width=33)
    np.testing.assert_allclose(
        process_in_blocks(stage, x, 44100, block), stage(x, 44100), atol=2e-6
    )


def test_context_stream_handles_files_shorter_than_the_context(rng):
    x = rng.standard_normal((1, 10)).astype(np.float32)
    stage = Smooth(width=500)
    assert process_in_blocks(stage, x, 44100, 3).shape == (1, 10)
