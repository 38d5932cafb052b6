"""Widgets generated from a stage's parameter metadata (no parameter is wired by hand).

Each :class:`~audio_restorer.stages.params.ParamInfo` becomes one editor: a check box for
booleans, a combo box for text with choices, a slider plus spin box (with unit and range) for
bounded numbers, a spin box for unbounded ones, and an "Auto" check box in front of optional
values (None means automatic). Tooltips come from the help text.
"""

# ruff: noqa: N815  (Qt's camelCase signal and override names)

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSlider,
    QSpinBox,
    QWidget,
)

from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import ParamInfo

_UNIT_SUFFIXES = {"hz", "khz", "db", "dbfs", "dbtp", "lufs", "ms", "s", "pct", "x"}
_SLIDER_STEPS = 1000
_BIG = 1e9


def param_label(name: str) -> str:
    """``cutoff_hz`` -> ``Cutoff``; ``max_gain_db`` -> ``Max gain`` (the unit shows in the box)."""
    words = name.split("_")
    if len(words) > 1 and words[-1].lower() in _UNIT_SUFFIXES:
        words = words[:-1]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def param_tooltip(info: ParamInfo) -> str:
    parts = [info.spec.help]
    lo, hi, unit = info.spec.min, info.spec.max, info.spec.unit
    if lo is not None or hi is not None:
        rng = f"{'' if lo is None else f'{lo:g}'} … {'' if hi is None else f'{hi:g}'}"
        parts.append(f"Range: {rng} {unit}".rstrip())
    if info.optional:
        parts.append("Auto: the stage chooses the value itself.")
    default = "auto" if info.default is None else info.default
    parts.append(f"Default: {default} {unit}".rstrip())
    return "\n".join(p for p in parts if p)


def _decimals(step: float | None) -> int:
    if not step or step >= 1:
        return 0 if step and float(step).is_integer() else 2
    return min(6, max(1, math.ceil(-math.log10(step) - 1e-9)))


class ParamEditor(QWidget):
    """Editor of one parameter; ``valueChanged(value)`` carries a Python value (or None)."""

    valueChanged = Signal(object)

    def __init__(self, stage: str, info: ParamInfo, value: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.info = info
        self.stage = stage
        self._updating = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        tooltip = param_tooltip(info)
        self.setToolTip(tooltip)
        self.setAccessibleName(f"{stage}.{info.name}")
        self.auto: QCheckBox | None = None
        if info.optional:
            self.auto = QCheckBox("Auto")
            self.auto.setToolTip("Let the stage choose this value automatically.")
            self.auto.setAccessibleName(f"{stage}.{info.name} automatic")
            layout.addWidget(self.auto)
        self.slider: QSlider | None = None
        self.box: Any
        kind, spec = info.kind, info.spec
        if kind is bool:
            self.box = QCheckBox()
            self.box.toggled.connect(self._emit)
        elif kind is str and spec.choices:
            self.box = QComboBox()
            self.box.addItems(list(spec.choices))
            self.box.currentTextChanged.connect(self._emit)
        elif kind is str:
            self.box = QLineEdit()
            self.box.editingFinished.connect(self._emit)
        else:
            if kind is int:
                self.box = QSpinBox()
                self.box.setRange(
                    int(spec.min) if spec.min is not None else -(2**31 - 1),
                    int(spec.max) if spec.max is not None else 2**31 - 1,
                )
                self.box.setSingleStep(int(spec.step or 1))
            else:
                self.box = QDoubleSpinBox()
                self.box.setDecimals(_decimals(spec.step))
                self.box.setRange(
                    spec.min if spec.min is not None else -_BIG,
                    spec.max if spec.max is not None else _BIG,
                )
                self.box.setSingleStep(spec.step or 0.1)
            self.box.setKeyboardTracking(False)
            self.box.setMinimumWidth(96)
            if spec.unit:
                self.box.setSuffix(f" {spec.unit}")
            self.box.valueChanged.connect(self._emit)
            if spec.min is not None and spec.max is not None and spec.max > spec.min:
                self.slider = QSlider(Qt.Orientation.Horizontal)
                self.slider.setRange(0, _SLIDER_STEPS)
                self.slider.setToolTip(tooltip)
                self.slider.setAccessibleName(f"{stage}.{info.name} slider")
                self.slider.valueChanged.connect(self._from_slider)
                layout.addWidget(self.slider, 1)
        self.box.setToolTip(tooltip)
        self.box.setAccessibleName(f"{stage}.{info.name}")
        layout.addWidget(self.box, 0 if self.slider else 1)
        if self.auto is not None:
            self.auto.toggled.connect(self._auto_toggled)
        self.set_value(value)

    # ------------------------------------------------------------ value access
    def value(self) -> Any:
        if self.auto is not None and self.auto.isChecked():
            return None
        if self.info.kind is bool:
            return self.box.isChecked()
        if self.info.kind is str:
            return self.box.currentText() if self.info.spec.choices else self.box.text()
        return self.box.value()

    def set_value(self, value: Any) -> None:
        self._updating = True
        try:
            if self.auto is not None:
                self.auto.setChecked(value is None)
                self._enable_editor(value is not None)
            if value is None:
                value = self._fallback()
            if self.info.kind is bool:
                self.box.setChecked(bool(value))
            elif self.info.kind is str:
                if self.info.spec.choices:
                    self.box.setCurrentText(str(value))
                else:
                    self.box.setText(str(value))
            else:
                self.box.setValue(value)
                self._sync_slider()
        finally:
            self._updating = False

    def _fallback(self) -> Any:
        spec = self.info.spec
        if self.info.kind in (int, float):
            return spec.min if spec.min is not None else 0
        if self.info.kind is bool:
            return False
        return spec.choices[0] if spec.choices else ""

    # ------------------------------------------------------------ internals
    def _enable_editor(self, on: bool) -> None:
        self.box.setEnabled(on)
        if self.slider is not None:
            self.slider.setEnabled(on)

    def _auto_toggled(self, checked: bool) -> None:
        self._enable_editor(not checked)
        self._emit()

    def _sync_slider(self) -> None:
        if self.slider is None:
            return
        lo, hi = float(self.info.spec.min), float(self.info.spec.max)  # type: ignore[arg-type]
        pos = round((float(self.box.value()) - lo) / (hi - lo) * _SLIDER_STEPS)
        self.slider.blockSignals(True)
        self.slider.setValue(int(pos))
        self.slider.blockSignals(False)

    def _from_slider(self, pos: int) -> None:
        lo, hi = float(self.info.spec.min), float(self.info.spec.max)  # type: ignore[arg-type]
        value = lo + (hi - lo) * pos / _SLIDER_STEPS
        step = self.info.spec.step
        if step:
            value = lo + round((value - lo) / step) * step
        value = min(max(value, lo), hi)
        self.box.setValue(round(value) if self.info.kind is int else value)

    def _emit(self, *_: Any) -> None:
        if self.info.kind in (int, float):
            self._sync_slider()
        if not self._updating:
            self.valueChanged.emit(self.value())


class StageForm(QWidget):
    """A form with one :class:`ParamEditor` per parameter of ``stage_cls``."""

    paramChanged = Signal(str, object)

    def __init__(
        self, stage_cls: type[Stage], values: dict[str, Any], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.stage_cls = stage_cls
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.editors: dict[str, ParamEditor] = {}
        defaults = stage_cls.Params().to_dict()
        for info in stage_cls.Params.infos():
            value = values.get(info.name, defaults[info.name])
            editor = ParamEditor(stage_cls.name, info, value)
            editor.valueChanged.connect(lambda v, n=info.name: self.paramChanged.emit(n, v))
            label = QLabel(param_label(info.name))
            label.setToolTip(editor.toolTip())
            label.setBuddy(editor.box)
            layout.addRow(label, editor)
            self.editors[info.name] = editor
        if not self.editors:
            layout.addRow(QLabel("This stage has no settings."))
