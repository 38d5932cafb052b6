"""Shared pieces of the GUI tests: a silent playback backend, test files, window factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import soundfile as sf
from PySide6.QtWidgets import QApplication

from audio_restorer.gui.compat import install_bool_guard
from audio_restorer.gui.main_window import MainWindow
from audio_restorer.gui.settings import Settings
from audio_restorer.pipeline.runner import restore_file
from signals import music_like

RATE = 22050


class FakeBackend:
    """Playback backend without a sound card: records what the player asked for."""

    def __init__(self) -> None:
        self.source: Path | None = None
        self.playing = False
        self.position = 0

    def set_source(self, path: Path | None) -> None:
        self.source = path

    def play(self) -> None:
        self.playing = True

    def pause(self) -> None:
        self.playing = False

    def stop(self) -> None:
        self.playing = False
        self.position = 0

    def position_ms(self) -> int:
        return self.position

    def set_position_ms(self, ms: int) -> None:
        self.position = ms

    def is_playing(self) -> bool:
        return self.playing


def write(path: Path, seconds: float = 2.0, channels: int = 1, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), music_like(rate, seconds, channels).T, rate, subtype="PCM_16")
    return path


def window_factory(qtbot, tmp_path: Path) -> Callable[..., MainWindow]:
    """``make(restore=...)``: a main window with private settings, no GPU probe, no sound."""
    install_bool_guard(QApplication.instance())

    def make(restore=restore_file) -> MainWindow:
        window = MainWindow(
            Settings(str(tmp_path / "gui.ini")),
            restore=restore,
            probe_gpu=False,
            backend=FakeBackend(),
        )
        qtbot.addWidget(window)
        window.export_panel.folder.setText(str(tmp_path / "out"))
        return window

    return make


def run_batch(qtbot, window: MainWindow, timeout_ms: int = 15000) -> None:
    with qtbot.waitSignal(window.runner.worker.finished, timeout=timeout_ms):
        window.start()
    qtbot.waitUntil(lambda: not window.running, timeout=2000)
