"""``gui``: open the desktop application (also what a bare ``audio-restorer`` does)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from audio_restorer.errors import AudioRestorerError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gui",
        help="open the desktop application",
        description="Open the desktop application, optionally with files queued.",
    )
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="files or folders to queue")
    p.set_defaults(func=run)


def gui_available() -> bool:
    """PySide6 is installed and there is a screen (or an explicit Qt platform) to show it on."""
    if importlib.util.find_spec("PySide6") is None:
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("PySide6") is None:
        raise AudioRestorerError(
            "the desktop application needs PySide6: install with `pip install audio-restorer[gui]`"
        )
    from audio_restorer.gui.app import run_gui

    return run_gui([str(f) for f in getattr(args, "files", [])])
