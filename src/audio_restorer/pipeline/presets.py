"""Presets: versioned JSON files holding a named chain for one kind of carrier.

Built-in presets ship in ``resources/presets/``; user presets live in the user's config folder
(platformdirs, or ``$AUDIO_RESTORER_CONFIG_DIR``) and shadow a built-in of the same name. Files
carry a format version; older versions are upgraded on load by small migration functions, one
per version step, so a preset saved by an older release keeps working.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audio_restorer.errors import AudioRestorerError, PresetError
from audio_restorer.pipeline.chain import Chain
from audio_restorer.resources import resource_path
from audio_restorer.util import atomic_write_text, user_config_dir

FORMAT = "audio-restorer-preset"
VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,63}$")


@dataclass
class Preset:
    name: str
    title: str = ""
    description: str = ""
    chain: Chain = field(default_factory=Chain)
    builtin: bool = False
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "chain": self.chain.to_list(),
        }


def _v0_to_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (pre-release) kept ``stages`` as an ordered list of ``[name, params]`` pairs
    plus a ``disabled`` list of names."""
    disabled = set(data.get("disabled", []))
    chain = [
        {"stage": name, "enabled": name not in disabled, "params": params or {}}
        for name, params in data.get("stages", [])
    ]
    return {
        "format": FORMAT,
        "version": 1,
        "name": data.get("name", ""),
        "title": data.get("title", ""),
        "description": data.get("description", ""),
        "chain": chain,
    }


#: migrations[v] upgrades a version-v document to version v+1
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1}


def migrate(data: dict[str, Any], source: str = "preset") -> dict[str, Any]:
    version = data.get("version", 0)
    if not isinstance(version, int) or version < 0:
        raise PresetError(f"{source}: invalid version {version!r}")
    if version > VERSION:
        raise PresetError(
            f"{source}: made by a newer Audio Restorer (format version {version}, "
            f"this one reads up to {VERSION})"
        )
    while version < VERSION:
        data = MIGRATIONS[version](data)
        version = data["version"]
    return data


def preset_from_dict(data: Any, source: str = "preset", *, validate: bool = True) -> Preset:
    if not isinstance(data, dict):
        raise PresetError(f"{source}: a preset is a JSON object")
    data = migrate(data, source)
    if data.get("format") != FORMAT:
        raise PresetError(f"{source}: not an Audio Restorer preset (format {data.get('format')!r})")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise PresetError(f"{source}: invalid preset name {name!r}")
    chain_data = data.get("chain", [])
    if not isinstance(chain_data, list):
        raise PresetError(f"{source}: 'chain' must be a list")
    try:
        chain = Chain.from_list(chain_data)
        if validate:
            chain.validate()
    except AudioRestorerError as exc:
        raise PresetError(f"{source}: {exc}") from None
    return Preset(name, str(data.get("title", "")), str(data.get("description", "")), chain)


def load_preset_file(path: str | os.PathLike[str], *, builtin: bool = False) -> Preset:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{p}: no such preset file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PresetError(f"{p}: cannot read preset ({exc})") from None
    preset = preset_from_dict(data, str(p))
    preset.builtin = builtin
    preset.path = p
    return preset


def builtin_dir() -> Path:
    return resource_path("presets")


def user_dir() -> Path:
    return user_config_dir() / "presets"


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def list_presets() -> list[Preset]:
    """Built-in and user presets by name (a user preset shadows a built-in one)."""
    found: dict[str, Preset] = {}
    for path in _files(builtin_dir()):
        preset = load_preset_file(path, builtin=True)
        found[preset.name] = preset
    for path in _files(user_dir()):
        try:
            preset = load_preset_file(path)
        except PresetError:
            continue  # a broken user file must not hide the others; load_preset reports it
        found[preset.name] = preset
    return [found[k] for k in sorted(found)]


def load_preset(name_or_path: str) -> Preset:
    """A preset by name (user folder first, then built-in) or by path to a JSON file."""
    if name_or_path.endswith(".json") or os.sep in name_or_path:
        return load_preset_file(name_or_path)
    user = user_dir() / f"{name_or_path}.json"
    if user.exists():
        return load_preset_file(user)
    builtin = builtin_dir() / f"{name_or_path}.json"
    if builtin.exists():
        return load_preset_file(builtin, builtin=True)
    names = ", ".join(p.name for p in list_presets())
    raise PresetError(f"no preset named '{name_or_path}' (available: {names})")


def save_user_preset(preset: Preset) -> Path:
    """Write a user preset atomically; returns its path."""
    if not _NAME.match(preset.name):
        raise PresetError(f"invalid preset name {preset.name!r}: use letters, digits, - _ . space")
    preset.chain.validate()
    folder = user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{preset.name}.json"
    atomic_write_text(path, json.dumps(preset.to_dict(), indent=2) + "\n")
    preset.path = path
    preset.builtin = False
    return path


def delete_user_preset(name: str) -> None:
    path = user_dir() / f"{name}.json"
    if not path.exists():
        raise PresetError(f"no user preset named '{name}' (built-in presets cannot be deleted)")
    path.unlink()


def rename_user_preset(old: str, new: str) -> Path:
    if (user_dir() / f"{new}.json").exists():
        raise PresetError(f"a user preset named '{new}' already exists")
    preset = load_preset_file(user_dir() / f"{old}.json")
    preset.name = new
    path = save_user_preset(preset)
    (user_dir() / f"{old}.json").unlink()
    return path
