"""Work-arounds for defects of specific Qt binding versions, each detected, never assumed.

PySide6 6.12.0 returns ``True`` from ``SignalInstance.emit()`` without taking a reference, and
drops one reference too many to the ``None`` returned by a bound-method slot, so every signal
emitted from Python lowers the reference count of ``True`` (and often ``None``) by one. On
Python 3.11, where these singletons are not immortal, a busy GUI (pyqtgraph emits on every
redraw) then frees them and the interpreter aborts ("bool_dealloc", "none_dealloc").
:func:`install_bool_guard` checks whether this binding leaks and, only then, keeps a large
surplus on the singletons' reference counts, topped up by a timer. They are never freed
anyway, so the surplus is harmless. Python 3.12+ makes them immortal and needs nothing.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, QTimer, Signal

_HEADROOM = 1 << 30
_installed: list[QTimer] = []


class _Probe(QObject):
    ping = Signal()

    def slot(self) -> None:
        return None


def emit_leaks_singletons() -> bool:
    """True when emitting a signal to a method slot drops references to ``True`` or ``None``."""
    probe = _Probe()
    probe.ping.connect(probe.slot)
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(64):
        probe.ping.emit()
    after = sys.getrefcount(True), sys.getrefcount(None)
    probe.ping.disconnect(probe.slot)
    return any(a < b - 32 for a, b in zip(after, before, strict=True))


def _top_up() -> None:
    for value in (True, False, None):
        count = ctypes.c_ssize_t.from_address(id(value))
        if count.value < _HEADROOM:
            count.value += _HEADROOM


def install_bool_guard(parent: QObject | None = None) -> bool:
    """Protect the booleans if this binding needs it; returns whether a guard is active."""
    if _installed:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not emit_leaks_singletons():
        return False
    _top_up()
    timer = QTimer(parent)
    timer.setInterval(1000)
    timer.timeout.connect(_top_up)
    timer.start()
    _installed.append(timer)
    return True
