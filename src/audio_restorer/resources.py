"""Locating the files the app ships (presets, demo samples, bundled models).

They live in ``resources/`` at the top of the source tree; a wheel carries them as
``audio_restorer/_resources``, and a PyInstaller build unpacks them under ``sys._MEIPASS``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resources_root() -> Path:
    candidates = []
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidates.append(Path(frozen) / "audio_restorer" / "_resources")
    candidates += [_PACKAGE / "_resources", _PACKAGE.parents[1] / "resources"]
    for candidate in candidates:
        if (candidate / "presets").is_dir():
            return candidate
    raise FileNotFoundError(
        "Audio Restorer's resources folder is missing (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "); the installation is incomplete"
    )


def resource_path(*parts: str) -> Path:
    return resources_root().joinpath(*parts)
