"""Start the desktop application: ``run_gui()`` creates the QApplication and the window."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

from audio_restorer import __version__
from audio_restorer.gui.compat import install_bool_guard


def create_app(argv: list[str] | None = None) -> QApplication:
    """The application object (reused when one exists), with Fusion style following the
    system's light or dark colour scheme."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Audio Restorer")
    app.setOrganizationName("audio-restorer")
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")
    install_bool_guard(app)
    app.setWindowIcon(QIcon(app.style().standardIcon(QStyle.StandardPixmap.SP_MediaVolume)))
    return app


def run_gui(argv: list[str] | None = None) -> int:
    """Open the main window; files named in ``argv`` (after the program name) are queued.

    Returns the application's exit code.
    """
    from audio_restorer.gui.main_window import MainWindow

    args = list(argv) if argv is not None else sys.argv[1:]
    app = create_app([sys.argv[0] if sys.argv else "audio-restorer"])
    window = MainWindow()
    hints = app.styleHints()
    if hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda _scheme: window.views.apply_palette())
    files = [a for a in args if not a.startswith("-") and Path(a).exists()]
    if files:
        window.add_paths(files)
    window.show()
    window.raise_()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(run_gui())
