"""A chain: the ordered list of stages (with their parameters) a restoration runs.

The chain is plain data (stage name, enabled flag, parameter values) so presets, the CLI, the GUI
and the provenance report share one representation; :meth:`Chain.build` turns it into stage
objects, validating every name and value against the stage registry.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audio_restorer.errors import ParameterError
from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import _NONE
from audio_restorer.stages.registry import create_stage, get_stage_class


@dataclass
class StageConfig:
    stage: str
    params: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    #: per-stem sub-chains for stages that take them (separation):
    #: ``{"vocals": {"gain_db": 0.0, "chain": [<chain entries>]}, ...}``
    stems: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"stage": self.stage, "enabled": self.enabled, "params": dict(self.params)}
        if self.stems is not None:
            d["stems"] = copy.deepcopy(self.stems)
        return d

    def build(self, device: str = "cpu") -> Stage:
        return create_stage(self.stage, self.params, device=device, stems=self.stems)


@dataclass
class Chain:
    stages: list[StageConfig] = field(default_factory=list)

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any]]) -> Chain:
        configs = []
        for item in items:
            name = item.get("stage")
            if not isinstance(name, str):
                raise ParameterError(f"each chain entry needs a 'stage' name, got {dict(item)!r}")
            params = item.get("params", {}) or {}
            if not isinstance(params, Mapping):
                raise ParameterError(f"params of stage '{name}' must be a mapping")
            stems = item.get("stems")
            if stems is not None and not isinstance(stems, Mapping):
                raise ParameterError(f"stems of stage '{name}' must be a mapping")
            configs.append(
                StageConfig(
                    name,
                    dict(params),
                    _enabled(name, item.get("enabled", True)),
                    copy.deepcopy(dict(stems)) if stems is not None else None,
                )
            )
        return cls(configs)

    @classmethod
    def of(cls, *names: str) -> Chain:
        return cls([StageConfig(n) for n in names])

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.stages]

    def copy(self) -> Chain:
        return copy.deepcopy(self)

    def find(self, name: str) -> StageConfig | None:
        for config in self.stages:
            if config.stage == name:
                return config
        return None

    def validate(self) -> None:
        """Check every stage name and parameter value (raises ParameterError)."""
        for config in self.stages:
            cls = get_stage_class(config.stage)
            cls.Params.from_dict(config.params)
            if config.stems is not None:
                config.build()  # the stage validates its per-stem chains

    def build(self, device: str = "cpu") -> list[Stage]:
        """Stage objects for the enabled entries, in order."""
        return [c.build(device) for c in self.stages if c.enabled]

    def select(self, names: list[str]) -> Chain:
        """Only ``names``, in that order; parameters come from this chain where it has them."""
        configs = []
        for name in names:
            get_stage_class(name)
            existing = self.find(name)
            params = dict(existing.params) if existing else {}
            stems = copy.deepcopy(existing.stems) if existing else None
            configs.append(StageConfig(name, params, True, stems))
        return Chain(configs)

    def set_value(self, key: str, value: str) -> None:
        """Apply ``stage.param=value`` (``stage.enabled=false`` switches a stage off)."""
        stage, sep, name = key.partition(".")
        if not sep or not stage or not name:
            raise ParameterError(f"--set expects stage.param=value, got {key!r}")
        config = self.find(stage)
        if config is None:
            get_stage_class(stage)  # unknown stage -> clear error listing the stages
            present = ", ".join(c.stage for c in self.stages) or "empty"
            raise ParameterError(
                f"stage '{stage}' is not in the chain ({present}); add it with --stages"
            )
        if name == "enabled":
            text = value.strip().lower()
            if text not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ParameterError(f"{stage}.enabled must be true or false, got {value!r}")
            config.enabled = text in ("true", "1", "yes", "on")
            return
        cls = get_stage_class(stage)
        info = cls.Params.info(name)
        parsed: Any = value
        if info.optional and value.strip().lower() in _NONE:
            parsed = None
        # this value alone; rules tying parameters together (a range's start and end, given
        # by two --set options) are checked by validate() once every value is in
        config.params[name] = cls.Params.coerce(name, parsed)


def _enabled(stage: str, value: Any) -> bool:
    """A chain entry's ``enabled`` flag: a JSON boolean (the string "false" is not false)."""
    if not isinstance(value, bool):
        raise ParameterError(f"'enabled' of stage '{stage}' must be true or false, got {value!r}")
    return value
