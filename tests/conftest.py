"""Shared fixtures: seeded signals, temporary config folders, small WAV files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from signals import music_like

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Never read or write the developer's real config or models folders."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("AUDIO_RESTORER_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("AUDIO_RESTORER_DATA_DIR", str(base / "data"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def wav_file(tmp_path: Path):
    """Factory: write a music-like WAV and return its path."""

    def make(
        name: str = "in.wav",
        rate: int = 44100,
        seconds: float = 2.0,
        channels: int = 2,
        subtype: str = "PCM_16",
    ) -> Path:
        path = tmp_path / name
        sf.write(str(path), music_like(rate, seconds, channels).T, rate, subtype=subtype)
        return path

    return make
