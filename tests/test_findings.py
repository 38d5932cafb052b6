"""What analysing stages report they decided (``Stage.findings``): plain JSON, a summary line,
and values that match what was put in."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal

from audio_restorer.stages import create_stage
from audio_restorer.stages.registry import stage_names

RATE = 44100
T = np.arange(6 * RATE) / RATE
TONES = 0.4 * np.sin(2 * np.pi * 440 * 1.01 * T) + 0.2 * np.sin(2 * np.pi * 659.255 * 1.01 * T)


def stereo(x: np.ndarray) -> np.ndarray:
    return np.stack([x, 0.9 * x]).astype(np.float32)


@pytest.mark.parametrize("name", stage_names())
def test_every_stage_reports_plain_json(name):
    stage = create_stage(name, {})
    audio = stereo(TONES[: 2 * RATE])
    found = stage.findings(stage.analyze(audio, RATE))
    json.dumps(found)
    assert not found or isinstance(found.get("summary"), str)


def test_declip_reports_the_clip_levels_it_found():
    noise = signal.lfilter([1.0], [1.0, -0.9], np.random.default_rng(1).standard_normal(T.size))
    x = np.clip(0.1 * noise, -0.25, 0.3)
    stage = create_stage("declip", {})
    levels = stage.findings(stage.analyze(stereo(x), RATE))["clip_level_dbfs"]
    assert levels[0][0] == pytest.approx(20 * np.log10(0.3), abs=0.2)
    assert levels[0][1] == pytest.approx(20 * np.log10(0.25), abs=0.2)
    assert levels[1][0] == pytest.approx(20 * np.log10(0.27), abs=0.2)


def test_speed_and_loudness_report_what_they_measured():
    stage = create_stage("speed", {"mode": "pitch"})
    found = stage.findings(stage.analyze(stereo(TONES), RATE))
    assert found["a4_hz"] == pytest.approx(444.4, abs=0.5)
    assert found["factor"] == pytest.approx(440 / 444.4, abs=1e-3)
    stage = create_stage("loudness", {"target_lufs": -23.0})
    found = stage.findings(stage.analyze(stereo(TONES), RATE))
    assert found["integrated_lufs"] + found["gain_db"] == pytest.approx(-23.0, abs=0.05)
