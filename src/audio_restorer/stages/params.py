"""Stage parameters: frozen dataclasses whose fields carry their own metadata.

The dataclass is the single source of truth for a stage's settings. The CLI's
``--set stage.param=value``, the GUI's widgets, preset validation and the provenance report are
all generated from it, so a parameter is declared once, here, with its range, step, unit, help
text and (for text parameters) its choices.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from audio_restorer.errors import ParameterError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NONE = {"none", "auto", "null", ""}


@dataclass(frozen=True)
class ParamSpec:
    """Metadata of one parameter (stored in the dataclass field's ``metadata["spec"]``)."""

    help: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: str = ""
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ParamInfo:
    """Everything a front end needs to show, edit and validate one parameter."""

    name: str
    kind: type  # float, int, bool or str
    optional: bool  # None is allowed (meaning "automatic")
    default: Any
    spec: ParamSpec

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "type": self.kind.__name__,
            "default": self.default,
            "help": self.spec.help,
        }
        if self.optional:
            d["optional"] = True
        for key in ("min", "max", "step"):
            value = getattr(self.spec, key)
            if value is not None:
                d[key] = value
        if self.spec.unit:
            d["unit"] = self.spec.unit
        if self.spec.choices:
            d["choices"] = list(self.spec.choices)
        return d


def param(
    default: Any,
    *,
    help: str,
    min: float | None = None,
    max: float | None = None,
    step: float | None = None,
    unit: str = "",
    choices: tuple[str, ...] | list[str] | None = None,
) -> Any:
    """Declare a stage parameter: a dataclass field with its metadata."""
    spec = ParamSpec(
        help=help,
        min=min,
        max=max,
        step=step,
        unit=unit,
        choices=tuple(choices) if choices is not None else None,
    )
    return field(default=default, metadata={"spec": spec})


def _field_kind(hint: Any) -> tuple[type, bool]:
    """Map a type hint to (base type, optional)."""
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) != len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"unsupported parameter type {hint!r}")
        hint = args[0]
    if hint not in (float, int, bool, str):
        raise TypeError(f"unsupported parameter type {hint!r}")
    return hint, optional


@dataclass(frozen=True)
class StageParams:
    """Base class of every stage's parameter dataclass.

    Subclasses are ``@dataclass(frozen=True)`` and declare fields with :func:`param`. Values are
    validated on construction, so an instance is always in range.
    """

    stage_name: ClassVar[str] = "stage"

    def __post_init__(self) -> None:
        for info in self.infos():
            value = getattr(self, info.name)
            object.__setattr__(self, info.name, _coerce(self.stage_name, info, value))

    @classmethod
    def infos(cls) -> list[ParamInfo]:
        """Every parameter's :class:`ParamInfo`, in declaration order."""
        cached = cls.__dict__.get("_infos_cache")
        if cached is not None:
            return list(cached)
        hints = typing.get_type_hints(cls)
        infos = []
        for f in dataclasses.fields(cls):
            spec = f.metadata.get("spec")
            if spec is None:
                raise TypeError(f"{cls.__name__}.{f.name} must be declared with param()")
            kind, optional = _field_kind(hints[f.name])
            infos.append(ParamInfo(f.name, kind, optional, f.default, spec))
        type.__setattr__(cls, "_infos_cache", tuple(infos))
        return infos

    @classmethod
    def info(cls, name: str) -> ParamInfo:
        for info in cls.infos():
            if info.name == name:
                return info
        known = ", ".join(i.name for i in cls.infos()) or "none"
        raise ParameterError(
            f"stage '{cls.stage_name}' has no parameter '{name}' (parameters: {known})"
        )

    @classmethod
    def from_dict(cls, values: typing.Mapping[str, Any] | None = None) -> Self:
        """Build from a mapping (preset JSON, CLI strings); unknown names are an error."""
        values = dict(values or {})
        for name in values:
            cls.info(name)
        return cls(**values)

    @classmethod
    def coerce(cls, name: str, value: Any) -> Any:
        """``value`` checked and converted for parameter ``name`` alone (rules that tie several
        parameters together are checked when the whole set is built)."""
        return _coerce(cls.stage_name, cls.info(name), value)

    def replace(self, **changes: Any) -> Self:
        """A copy with some values changed (validated like the constructor)."""
        for name in changes:
            self.info(name)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {info.name: getattr(self, info.name) for info in self.infos()}


def _coerce(stage: str, info: ParamInfo, value: Any) -> Any:
    where = f"{stage}.{info.name}"
    if isinstance(value, str) and info.kind is not str:
        text = value.strip().lower()
        if info.optional and text in _NONE:
            return None
        if info.kind is bool:
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ParameterError(f"{where} must be true or false, got {value!r}")
        try:
            value = float(text) if info.kind is float else int(text, 10)
        except ValueError:
            raise ParameterError(
                f"{where} must be a number ({info.kind.__name__}), got {value!r}"
            ) from None
    if value is None:
        if info.optional:
            return None
        raise ParameterError(f"{where} must be set, got None")
    if info.kind is bool:
        if not isinstance(value, bool):
            raise ParameterError(f"{where} must be true or false, got {value!r}")
        return value
    if info.kind is str:
        if not isinstance(value, str):
            raise ParameterError(f"{where} must be text, got {value!r}")
        if info.spec.choices is not None and value not in info.spec.choices:
            raise ParameterError(
                f"{where} must be one of {', '.join(info.spec.choices)}, got {value!r}"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{where} must be a number, got {value!r}")
    if info.kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise ParameterError(f"{where} must be a whole number, got {value!r}")
            value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(f"{where} must be finite, got {value!r}")
    lo, hi = info.spec.min, info.spec.max
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        unit = f" {info.spec.unit}" if info.spec.unit else ""
        raise ParameterError(f"{where} must be in {lo}..{hi}{unit}, got {value!r}")
    return value
