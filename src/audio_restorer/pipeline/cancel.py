"""Cooperative cancellation: the runner checks a token between blocks."""

from __future__ import annotations

import threading

from audio_restorer.errors import Cancelled


class CancelToken:
    """Thread-safe flag a GUI or signal handler sets and the runner polls."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")
