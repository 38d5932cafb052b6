"""A/B playback: original, restored or "removed only", switched in place at the same position.

:class:`ABPlayer` holds the logic (which versions exist, which one is heard, where playback
is) over a small backend interface, so it is tested without a sound card. The real backend is
QtMultimedia's ``QMediaPlayer`` + ``QAudioOutput``; when no audio device can be opened it
reports a message instead of failing.
"""

# ruff: noqa: N815  (Qt's camelCase signal and override names)

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer

ORIGINAL = "original"
RESTORED = "restored"


class Backend(Protocol):
    def set_source(self, path: Path | None) -> None: ...
    def play(self) -> None: ...
    def pause(self) -> None: ...
    def stop(self) -> None: ...
    def position_ms(self) -> int: ...
    def set_position_ms(self, ms: int) -> None: ...
    def is_playing(self) -> bool: ...


class QtBackend(QObject):
    """QMediaPlayer behind the :class:`Backend` interface; ``error(message)`` on failure."""

    error = Signal(str)
    positionChanged = Signal("qlonglong")
    stateChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.player = QMediaPlayer(self)
        self.output = QAudioOutput(self)
        self.player.setAudioOutput(self.output)
        self.player.errorOccurred.connect(self._on_error)
        self.player.positionChanged.connect(self.positionChanged)
        self.player.playbackStateChanged.connect(
            lambda s: self.stateChanged.emit(s == QMediaPlayer.PlaybackState.PlayingState)
        )

    def _on_error(self, _error: QMediaPlayer.Error, text: str) -> None:
        self.error.emit(text or "playback failed")

    def set_source(self, path: Path | None) -> None:
        self.player.setSource(QUrl.fromLocalFile(str(path)) if path else QUrl())

    def play(self) -> None:
        if not QMediaDevices.audioOutputs():
            self.error.emit("No audio output device is available: playback is not possible")
            return
        self.player.play()

    def pause(self) -> None:
        self.player.pause()

    def stop(self) -> None:
        self.player.stop()

    def position_ms(self) -> int:
        return int(self.player.position())

    def set_position_ms(self, ms: int) -> None:
        self.player.setPosition(int(ms))

    def is_playing(self) -> bool:
        return self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState


class ABPlayer(QObject):
    """Which version is heard, over versions of the same span that share one time line.

    ``sources`` maps a mode (``original``, ``restored``, ``removed:<stage>``) to a file; all
    versions start at the same time (``start_s`` in the file), so switching keeps the position.
    """

    modeChanged = Signal(str)
    sourcesChanged = Signal()

    def __init__(self, backend: Backend, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.sources: dict[str, Path] = {}
        self.mode = ORIGINAL
        self.start_s = 0.0

    def set_sources(self, sources: dict[str, Path], start_s: float = 0.0) -> None:
        """New versions (e.g. after a preview): keeps the mode if it still exists."""
        was_playing = self.backend.is_playing()
        position = self.backend.position_ms() if sources.keys() == self.sources.keys() else 0
        self.backend.stop()
        self.sources = dict(sources)
        self.start_s = start_s
        if self.mode not in self.sources:
            self.mode = ORIGINAL
        self.backend.set_source(self.sources.get(self.mode))
        if position:
            self.backend.set_position_ms(position)
        if was_playing and self.sources:
            self.backend.play()
        self.sourcesChanged.emit()
        self.modeChanged.emit(self.mode)

    def available(self, mode: str) -> bool:
        return mode in self.sources

    def switch(self, mode: str) -> bool:
        """Hear ``mode`` from the current position (playing continues if it was playing)."""
        if mode not in self.sources or mode == self.mode:
            return False
        playing = self.backend.is_playing()
        position = self.backend.position_ms()
        self.backend.pause()
        self.backend.set_source(self.sources[mode])
        self.backend.set_position_ms(position)
        if playing:
            self.backend.play()
        self.mode = mode
        self.modeChanged.emit(mode)
        return True

    def toggle_ab(self) -> bool:
        """Original <-> restored (from "removed" it goes back to the original)."""
        return self.switch(RESTORED if self.mode == ORIGINAL else ORIGINAL)

    def toggle_play(self) -> None:
        if not self.sources:
            return
        if self.backend.is_playing():
            self.backend.pause()
        else:
            self.backend.play()

    def stop(self) -> None:
        self.backend.stop()

    def position_s(self) -> float:
        """Position in the file (seconds), whichever version is heard."""
        return self.start_s + self.backend.position_ms() / 1000.0
