"""Every persistent GUI setting in one registry, with its default and meaning.

Settings live in an INI file in the user's config folder (``gui.ini``, next to the user
presets), so tests that point ``AUDIO_RESTORER_CONFIG_DIR`` elsewhere never see the real ones.
A ``settings_version`` key lets later releases migrate old files with small functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings

from audio_restorer.util import user_config_dir

VERSION = 1


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    title: str


REGISTRY = {
    s.key: s
    for s in (
        Setting("export/format", "wav", "Output format"),
        Setting("export/bit_depth", "24", "Output bit depth"),
        Setting("export/rate", 0, "Output sample rate (0 keeps the input's)"),
        Setting("export/folder", "", "Output folder ('' = a 'restored' folder by each source)"),
        Setting("export/pattern", "{stem}.restored.{ext}", "Output file name pattern"),
        Setting("export/report", True, "Write the provenance sidecar"),
        Setting("export/dither", True, "TPDF dither when reducing word length"),
        Setting("export/overwrite", False, "Replace existing outputs"),
        Setting("device", "auto", "Where ML stages run"),
        Setting("chain/preset", "none", "Last chosen preset"),
        Setting("chain/custom", "", "The edited chain (JSON) when it differs from the preset"),
        Setting("files/last_folder", "", "Folder of the last Open dialog"),
        Setting("window/geometry", None, "Main window geometry"),
        Setting("window/state", None, "Tool bars and docks"),
        Setting("window/splitters", None, "Splitter positions"),
    )
}


def _migrate(settings: QSettings) -> None:
    """Upgrade an older settings file in place (version 1 is the first)."""
    settings.setValue("settings_version", VERSION)


class Settings:
    """Typed access to the registry's keys."""

    def __init__(self, path: str | None = None) -> None:
        if path is None:
            folder = user_config_dir()
            folder.mkdir(parents=True, exist_ok=True)
            path = str(folder / "gui.ini")
        self.qsettings = QSettings(path, QSettings.Format.IniFormat)
        if int(self.qsettings.value("settings_version", 0) or 0) < VERSION:
            _migrate(self.qsettings)

    def get(self, key: str) -> Any:
        setting = REGISTRY[key]
        value = self.qsettings.value(key, setting.default)
        default = setting.default
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
        if isinstance(default, int):
            try:
                return int(value)
            except (TypeError, ValueError):
                return default
        return value

    def set(self, key: str, value: Any) -> None:
        REGISTRY[key]  # unknown keys are a bug
        self.qsettings.setValue(key, value)

    def sync(self) -> None:
        self.qsettings.sync()
