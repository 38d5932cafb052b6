"""Runtime hook: measure the frozen app's startup to a visible main window.

Only active when ``AUDIO_RESTORER_STARTUP_PROBE`` is set (the smoke test sets it). The app's
``run_gui`` shows the main window and then enters ``QApplication.exec``; this hook wraps
``exec`` so that, once the event loop runs, it checks that a top-level window is visible,
prints ``startup-probe: window visible after X.XXX s`` (seconds since the process started,
read from ``/proc/self/stat`` where available, else since this hook ran) and quits, at once
or after ``AUDIO_RESTORER_STARTUP_PROBE_HOLD`` seconds (the smoke test keeps the window up a
few seconds to catch errors of the first timers and paints).
Without the variable nothing is imported and nothing changes.
"""

import os
import sys
import time


def _process_start_age() -> float | None:
    """Seconds since this process started (Linux), or None."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); two fields precede this slice
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _install() -> None:
    hook_time = time.perf_counter()
    age = _process_start_age()
    started = hook_time - (age if age is not None else 0.0)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    original_exec = QApplication.exec
    hold = float(os.environ.get("AUDIO_RESTORER_STARTUP_PROBE_HOLD", "0") or 0)

    def close(app) -> None:
        # quit the way a user does: closing the windows lets them stop their worker threads
        for widget in app.topLevelWidgets():
            widget.close()
        QTimer.singleShot(0, app.quit)

    def exec_and_report(*_args):  # called as app.exec() or QApplication.exec()
        def report() -> None:
            app = QApplication.instance()
            shown = [w for w in app.topLevelWidgets() if w.isVisible() and w.isWindow()]
            if shown:
                elapsed = time.perf_counter() - started
                titles = ", ".join(type(w).__name__ for w in shown)
                print(f"startup-probe: window visible after {elapsed:.3f} s ({titles})", flush=True)
                QTimer.singleShot(int(hold * 1000), lambda: close(app))
            else:
                QTimer.singleShot(20, report)

        QTimer.singleShot(0, report)
        return original_exec()

    QApplication.exec = exec_and_report


if os.environ.get("AUDIO_RESTORER_STARTUP_PROBE"):
    try:
        _install()
    except Exception as exc:  # the probe must never stop the app from starting
        print(f"startup-probe: unavailable ({exc})", file=sys.stderr, flush=True)
