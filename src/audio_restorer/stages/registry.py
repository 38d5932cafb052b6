"""Registry of stages by their stable public names.

Every module in :mod:`audio_restorer.stages` that defines stages registers them with
:func:`register`; the registry imports those modules on first use (so adding a stage means
adding a module, nothing else). Stage modules must not import torch at module level: the
classic stages are usable without it, and ML stages import it when they run.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any, TypeVar

from audio_restorer.errors import StageNotFoundError
from audio_restorer.stages.base import Stage

_REGISTRY: dict[str, type[Stage]] = {}
_INFRA = {"base", "params", "registry"}
_discovered = False

S = TypeVar("S", bound=type[Stage])


def register(cls: S) -> S:
    """Class decorator: make a stage available under ``cls.name``."""
    name = cls.name
    if not name.replace("_", "").isalnum() or name.lower() != name:
        raise ValueError(f"stage names are lower-case identifiers, got {name!r}")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"stage name {name!r} registered twice ({existing} and {cls})")
    _REGISTRY[name] = cls
    return cls


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    package = importlib.import_module("audio_restorer.stages")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name in _INFRA or module.name.startswith("_"):
            continue
        importlib.import_module(f"audio_restorer.stages.{module.name}")
    _discovered = True


def stage_names() -> list[str]:
    """All registered stage names, sorted."""
    _discover()
    return sorted(_REGISTRY)


def get_stage_class(name: str) -> type[Stage]:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise StageNotFoundError(
            f"unknown stage '{name}' (available: {', '.join(sorted(_REGISTRY))})"
        ) from None


def create_stage(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    device: str = "cpu",
    stems: Mapping[str, Any] | None = None,
) -> Stage:
    """Instantiate a registered stage from a mapping of parameter values."""
    cls = get_stage_class(name)
    return cls(cls.Params.from_dict(params or {}), device=device, stems=stems)
