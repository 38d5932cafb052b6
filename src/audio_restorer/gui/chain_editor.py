"""The chain editor: preset menu, the ordered stage list, and the selected stage's settings.

Everything shown comes from the stage registry and the presets: stage titles, summaries and
parameter widgets are generated from metadata, so a newly registered stage appears here with
no GUI change. The editor owns a :class:`~audio_restorer.pipeline.chain.Chain`; every edit is
validated through the stage's parameter dataclass before it is stored.
"""

# ruff: noqa: N815  (Qt's camelCase signal and override names)

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from audio_restorer.errors import AudioRestorerError, PresetError
from audio_restorer.gui.params import StageForm
from audio_restorer.pipeline import presets
from audio_restorer.pipeline.chain import Chain, StageConfig
from audio_restorer.stages.registry import get_stage_class, stage_names

log = logging.getLogger("audio_restorer.gui")


def available_presets() -> tuple[list[presets.Preset], list[str]]:
    """Built-in and user presets (a user preset shadows a built-in), and load problems.

    Unlike :func:`presets.list_presets` one broken or not-yet-supported preset (naming a stage
    this build lacks) does not hide the others; it is reported instead.
    """
    found: dict[str, presets.Preset] = {}
    problems: list[str] = []
    for folder, builtin in ((presets.builtin_dir(), True), (presets.user_dir(), False)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                preset = presets.load_preset_file(path, builtin=builtin)
            except PresetError as exc:
                problems.append(str(exc))
                continue
            found[preset.name] = preset
    return [found[k] for k in sorted(found)], problems


def _tool(icon: QStyle.StandardPixmap, tip: str, style: QStyle) -> QToolButton:
    button = QToolButton()
    button.setIcon(style.standardIcon(icon))
    button.setToolTip(tip)
    button.setAccessibleName(tip)
    button.setAutoRaise(True)
    return button


class ChainEditor(QWidget):
    """Edit the current chain; ``chainChanged`` after every change."""

    chainChanged = Signal()
    presetsChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chain = Chain()
        self.preset_name: str | None = None
        self.modified = False
        self._presets: dict[str, presets.Preset] = {}
        style = self.style()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)

        # preset row
        row = QHBoxLayout()
        row.addWidget(QLabel("Preset:"))
        self.preset_combo = QComboBox()
        self.preset_combo.setAccessibleName("Preset")
        self.preset_combo.setToolTip("Built-in and user presets; a user preset shadows a built-in")
        self.preset_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.preset_combo.activated.connect(self._preset_chosen)
        row.addWidget(self.preset_combo, 1)
        self.preset_menu_button = _tool(
            QStyle.StandardPixmap.SP_FileDialogDetailedView, "Preset actions", style
        )
        menu = QMenu(self.preset_menu_button)
        self.act_save_as = menu.addAction("Save as…", self._save_as_dialog)
        self.act_rename = menu.addAction("Rename…", self._rename_dialog)
        self.act_delete = menu.addAction("Delete", self._delete_dialog)
        menu.addSeparator()
        self.act_reset = menu.addAction("Reset to saved preset", self.reset)
        self.preset_menu_button.setMenu(menu)
        self.preset_menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        row.addWidget(self.preset_menu_button)
        outer.addLayout(row)
        self.preset_note = QLabel()
        self.preset_note.setWordWrap(True)
        self.preset_note.setEnabled(False)
        outer.addWidget(self.preset_note)

        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        outer.addWidget(split, 1)

        # stage list
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        self.stage_list = QListWidget()
        self.stage_list.setAccessibleName("Stages in the chain")
        self.stage_list.setToolTip("Tick to enable a stage; drag or use the arrows to reorder")
        self.stage_list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.stage_list.model().rowsMoved.connect(self._rows_dragged)
        self.stage_list.itemChanged.connect(self._item_changed)
        self.stage_list.currentRowChanged.connect(self._show_stage)
        tl.addWidget(self.stage_list, 1)
        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        self.add_button = _tool(QStyle.StandardPixmap.SP_FileDialogNewFolder, "Add stage", style)
        self.add_button.setText("Add stage")
        self.add_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.add_menu = QMenu(self.add_button)
        self.add_menu.aboutToShow.connect(self._fill_add_menu)
        self.add_button.setMenu(self.add_menu)
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.remove_button = _tool(QStyle.StandardPixmap.SP_TrashIcon, "Remove stage", style)
        self.up_button = _tool(QStyle.StandardPixmap.SP_ArrowUp, "Move stage up", style)
        self.down_button = _tool(QStyle.StandardPixmap.SP_ArrowDown, "Move stage down", style)
        self.remove_button.clicked.connect(self.remove_current)
        self.up_button.clicked.connect(lambda: self.move_current(-1))
        self.down_button.clicked.connect(lambda: self.move_current(1))
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        for b in (self.up_button, self.down_button, self.remove_button):
            buttons.addWidget(b)
        tl.addLayout(buttons)
        split.addWidget(top)

        # settings of the selected stage
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setAccessibleName("Stage settings")
        split.addWidget(self.scroll)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([240, 360])
        top.setMinimumHeight(110)
        self.form: StageForm | None = None
        self.reload_presets()

    # ------------------------------------------------------------ presets
    def reload_presets(self, select: str | None = None) -> None:
        found, problems = available_presets()
        self._presets = {p.name: p for p in found}
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        for p in found:
            label = p.title or p.name
            if not p.builtin:
                label += "  (user)"
            self.preset_combo.addItem(label, p.name)
            self.preset_combo.setItemData(
                self.preset_combo.count() - 1, p.description or p.name, Qt.ItemDataRole.ToolTipRole
            )
        self.preset_combo.addItem("Custom chain", None)
        self.preset_combo.blockSignals(False)
        for problem in problems:
            log.warning("preset not available: %s", problem)
        self._select_combo(select if select is not None else self.preset_name)
        self.presetsChanged.emit()

    def _select_combo(self, name: str | None) -> None:
        index = self.preset_combo.findData(name) if name else -1
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(index if index >= 0 else self.preset_combo.count() - 1)
        self.preset_combo.blockSignals(False)
        self._update_note()

    def preset_names(self) -> list[str]:
        return list(self._presets)

    def _preset_chosen(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name is None:
            self.preset_name = None
            self._update_note()
            return
        self.load_preset(name)

    def load_preset(self, name: str) -> None:
        """Replace the chain by the preset's (re-read from disk)."""
        try:
            preset = presets.load_preset(name)
        except AudioRestorerError as exc:
            QMessageBox.warning(self, "Preset", str(exc))
            return
        self.preset_name = preset.name
        self.set_chain(preset.chain.copy(), modified=False)
        self._select_combo(preset.name)

    def reset(self) -> None:
        if self.preset_name:
            self.load_preset(self.preset_name)

    def save_preset_as(self, name: str) -> None:
        """Save the current chain as user preset ``name`` (raises PresetError)."""
        old = self._presets.get(self.preset_name or "")
        preset = presets.Preset(
            name=name,
            title=name,
            description=f"Based on {old.title or old.name}" if old else "Custom chain",
            chain=self.chain.copy(),
        )
        presets.save_user_preset(preset)
        log.info("saved preset %s", name)
        self.preset_name = name
        self.modified = False
        self.reload_presets(select=name)

    def rename_preset(self, new: str) -> None:
        if not self.preset_name:
            raise PresetError("no preset is selected")
        presets.rename_user_preset(self.preset_name, new)
        self.preset_name = new
        self.reload_presets(select=new)

    def delete_preset(self) -> None:
        if not self.preset_name:
            raise PresetError("no preset is selected")
        presets.delete_user_preset(self.preset_name)
        self.preset_name = None
        self.reload_presets()

    def _current_is_user(self) -> bool:
        preset = self._presets.get(self.preset_name or "")
        return preset is not None and not preset.builtin

    def _ask_name(self, title: str, default: str) -> str | None:
        name, ok = QInputDialog.getText(self, title, "Preset name:", text=default)
        return name.strip() if ok and name.strip() else None

    def _save_as_dialog(self) -> None:
        name = self._ask_name("Save preset as", (self.preset_name or "my-preset") + "-custom")
        if name:
            self._guarded(self.save_preset_as, name)

    def _rename_dialog(self) -> None:
        if not self._current_is_user():
            QMessageBox.information(self, "Rename preset", "Only user presets can be renamed.")
            return
        name = self._ask_name("Rename preset", self.preset_name or "")
        if name:
            self._guarded(self.rename_preset, name)

    def _delete_dialog(self) -> None:
        if not self._current_is_user():
            QMessageBox.information(self, "Delete preset", "Built-in presets cannot be deleted.")
            return
        answer = QMessageBox.question(self, "Delete preset", f"Delete '{self.preset_name}'?")
        if answer == QMessageBox.StandardButton.Yes:
            self._guarded(self.delete_preset)

    def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except AudioRestorerError as exc:
            QMessageBox.warning(self, "Preset", str(exc))

    def _update_note(self) -> None:
        user = self._current_is_user()
        self.act_rename.setEnabled(user)
        self.act_delete.setEnabled(user)
        self.act_reset.setEnabled(bool(self.preset_name))
        preset = self._presets.get(self.preset_name or "")
        text = preset.description if preset else "A chain not saved as a preset."
        if self.modified and preset:
            text += "  (modified)"
        self.preset_note.setText(text)

    # ------------------------------------------------------------ the chain
    def current_chain(self) -> Chain:
        """A private copy of the chain (what a worker receives)."""
        return self.chain.copy()

    def set_chain(self, chain: Chain, *, modified: bool = True) -> None:
        self.chain = chain.copy()
        self.modified = modified
        self._rebuild_list()
        self._update_note()
        self.chainChanged.emit()

    def _rebuild_list(self, select: int = 0) -> None:
        self.stage_list.blockSignals(True)
        self.stage_list.clear()
        for config in self.chain.stages:
            self.stage_list.addItem(self._make_item(config))
        self.stage_list.blockSignals(False)
        if self.chain.stages:
            self.stage_list.setCurrentRow(min(select, len(self.chain.stages) - 1))
            self._show_stage(self.stage_list.currentRow())
        else:
            self._show_stage(-1)

    def _make_item(self, config: StageConfig) -> QListWidgetItem:
        try:
            cls = get_stage_class(config.stage)
            text, tip = cls.title, f"{cls.title} ({cls.name}): {cls.summary}"
        except AudioRestorerError:
            text, tip = config.stage, "This stage is not available in this build"
        item = QListWidgetItem(text)
        item.setToolTip(tip)
        item.setData(Qt.ItemDataRole.UserRole, config.stage)
        flags = (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsUserCheckable
            | Qt.ItemFlag.ItemIsDragEnabled
        )
        item.setFlags(flags)
        item.setCheckState(Qt.CheckState.Checked if config.enabled else Qt.CheckState.Unchecked)
        return item

    def _changed(self) -> None:
        self.modified = True
        self._update_note()
        self.chainChanged.emit()

    def _item_changed(self, item: QListWidgetItem) -> None:
        row = self.stage_list.row(item)
        if 0 <= row < len(self.chain.stages):
            enabled = item.checkState() == Qt.CheckState.Checked
            if self.chain.stages[row].enabled != enabled:
                self.chain.stages[row].enabled = enabled
                self._changed()

    def set_enabled(self, row: int, enabled: bool) -> None:
        item = self.stage_list.item(row)
        item.setCheckState(Qt.CheckState.Checked if enabled else Qt.CheckState.Unchecked)

    def _rows_dragged(self, *_: Any) -> None:
        order = [
            self.stage_list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.stage_list.count())
        ]
        by_name = {c.stage: c for c in self.chain.stages}
        self.chain.stages = [by_name[name] for name in order]
        self._changed()

    def move_current(self, delta: int) -> None:
        row = self.stage_list.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < len(self.chain.stages):
            return
        stages = self.chain.stages
        stages.insert(target, stages.pop(row))
        self._rebuild_list(select=target)
        self._changed()

    def remove_current(self) -> None:
        row = self.stage_list.currentRow()
        if row >= 0:
            del self.chain.stages[row]
            self._rebuild_list(select=max(0, row - 1))
            self._changed()

    def add_stage(self, name: str) -> None:
        get_stage_class(name)
        if self.chain.find(name) is not None:
            return
        self.chain.stages.append(StageConfig(name))
        self._rebuild_list(select=len(self.chain.stages) - 1)
        self._changed()

    def insert_stage(self, index: int, config: StageConfig) -> None:
        """Insert ``config`` at ``index`` (nothing when that stage is already in the chain)."""
        get_stage_class(config.stage)
        if self.chain.find(config.stage) is not None:
            return
        self.chain.stages.insert(index, config)
        self._rebuild_list(select=index)
        self._changed()

    def set_stems(self, stage: str, stems: dict[str, Any] | None) -> None:
        """Replace the per-stem sub-chains of ``stage``'s entry (validated by the stage)."""
        config = self.chain.find(stage)
        if config is None:
            return
        trial = StageConfig(config.stage, dict(config.params), config.enabled, stems)
        trial.build()  # raises ParameterError naming the problem
        config.stems = trial.stems
        self._changed()

    def refresh_form(self) -> None:
        """Re-show the selected stage's settings (after an edit made elsewhere)."""
        self._show_stage(self.stage_list.currentRow())

    def _fill_add_menu(self) -> None:
        self.add_menu.clear()
        present = {c.stage for c in self.chain.stages}
        for name in stage_names():
            cls = get_stage_class(name)
            action = self.add_menu.addAction(f"{cls.title}  ({name})")
            action.setToolTip(cls.summary)
            action.setEnabled(name not in present)
            action.triggered.connect(lambda _=False, n=name: self.add_stage(n))

    def _show_stage(self, row: int) -> None:
        old = self.scroll.takeWidget()
        if old is not None:
            old.deleteLater()
        self.form = None
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(4, 8, 4, 4)
        if 0 <= row < len(self.chain.stages):
            config = self.chain.stages[row]
            try:
                cls = get_stage_class(config.stage)
            except AudioRestorerError as exc:
                layout.addWidget(QLabel(str(exc)))
            else:
                title = QLabel(f"<b>{cls.title}</b>")
                summary = QLabel(cls.summary)
                summary.setWordWrap(True)
                layout.addWidget(title)
                layout.addWidget(summary)
                self.form = StageForm(cls, config.params)
                self.form.paramChanged.connect(
                    lambda name, value, s=config.stage: self.set_param(s, name, value)
                )
                layout.addSpacing(6)
                layout.addWidget(self.form)
        else:
            note = QLabel("Add a stage, or choose a preset.")
            note.setEnabled(False)
            layout.addWidget(note)
        layout.addStretch(1)
        self.scroll.setWidget(panel)

    def set_param(self, stage: str, name: str, value: Any) -> None:
        """Validate and store one parameter value (shows the rule when it is refused)."""
        config = self.chain.find(stage)
        if config is None:
            return
        cls = get_stage_class(stage)
        new = dict(config.params)
        new[name] = value
        try:
            validated = cls.Params.from_dict(new)
        except AudioRestorerError as exc:
            log.warning("%s", exc)
            if self.form is not None and name in self.form.editors:
                self.form.editors[name].set_value(
                    config.params.get(name, cls.Params.info(name).default)
                )
            return
        config.params[name] = getattr(validated, name)
        self._changed()
