"""The Stems tab: source separation settings mapped onto the chain's ``separate`` entry.

Turning stems on inserts a ``separate`` entry at the top of the current chain (or re-enables
the one there); turning them off disables it (its settings are kept). Every widget edits that
entry through :meth:`ChainEditor.set_param`, so the values are validated by the stage's own
parameter dataclass and the chain the worker receives is the single source of truth.

Most editors are generated from the stage's parameter metadata (:class:`ParamEditor`); only
three get a richer editor than the generic one: ``model`` (a combo of the model store's
installed Demucs models and the published names, "not installed" marked), ``stems`` and
``export_stems`` (a check box per stem the chosen backend yields). Per-stem sub-chains (the
entry's ``stems`` mapping) are summarised per stem, with a menu to take a preset's chain and
a gain.
"""

# ruff: noqa: N815  (Qt's camelCase signal and override names)

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from audio_restorer.errors import AudioRestorerError, ParameterError
from audio_restorer.gui.chain_editor import ChainEditor
from audio_restorer.gui.params import ParamEditor, param_label
from audio_restorer.pipeline import presets
from audio_restorer.pipeline.chain import Chain, StageConfig
from audio_restorer.stages.registry import get_stage_class, stage_names

log = logging.getLogger("audio_restorer.gui")

STAGE = "separate"
#: parameters shown per backend (the others are the backend-independent ones)
BACKEND_PARAMS = {
    "hpss": ("margin", "harmonic_ms", "percussive_hz"),
    "demucs": ("segment_s", "overlap", "normalize"),
}
EXPORT_PARAMS = ("export", "export_pattern")
#: sources of the published Demucs models (read from the model itself would need PyTorch)
DEMUCS_SOURCES = {"htdemucs_6s": ("drums", "bass", "other", "vocals", "guitar", "piano")}
DEMUCS_DEFAULT_SOURCES = ("drums", "bass", "other", "vocals")


def known_demucs_models() -> tuple[str, ...]:
    try:
        from audio_restorer.separation.demucs_backend import KNOWN_MODELS
    except Exception:  # pragma: no cover - the module imports without torch
        return ()
    return tuple(KNOWN_MODELS)


def demucs_model_status(name: str) -> str | None:
    """None when Demucs model ``name`` is installed, else the store's message saying what is
    missing and where to put it (no PyTorch import, only file look-ups)."""
    try:
        from audio_restorer.separation.demucs_backend import resolve

        resolve(name)
    except AudioRestorerError as exc:
        return str(exc)
    return None


def demucs_model_names() -> list[tuple[str, bool]]:
    """``(name, installed)`` for the bag descriptions in the model folders and the published
    names, installed ones first."""
    from audio_restorer.models import list_models

    names = [f.path.stem for f in list_models() if f.path.suffix == ".yaml"]
    for name in known_demucs_models():
        if name not in names:
            names.append(name)
    rows = [(n, demucs_model_status(n) is None) for n in names]
    return sorted(rows, key=lambda r: not r[1])


def backend_stems(backend: str, model: str) -> tuple[list[str], str]:
    """The sources backend ``backend`` yields (with ``model``) and its residual stem's name."""
    if backend == "demucs":
        return list(DEMUCS_SOURCES.get(model, DEMUCS_DEFAULT_SOURCES)), "accompaniment"
    try:
        from audio_restorer.separation import create_backend

        b = create_backend(backend)
        return list(b.sources()), str(b.residual_name)
    except AudioRestorerError:
        return [], "residual"


def stem_safe_chain(chain: Chain) -> tuple[list[dict[str, Any]], list[str]]:
    """The entries of ``chain`` that can run on a stem, and the names of those left out
    (stages needing a whole-file analysis, changing length or channels, or separating)."""
    kept, dropped = [], []
    for config in chain.stages:
        if not config.enabled:
            continue
        try:
            stage = config.build()
            ok = (
                not stage.takes_stem_chains
                and not stage.changes_length
                and stage.analyzer(44100, 2) is None
                and stage.output_channels(2) == 2
            )
        except AudioRestorerError:
            ok = False
        if ok:
            kept.append(config.to_dict())
        else:
            dropped.append(config.stage)
    return kept, dropped


def _split(text: str) -> list[str]:
    return [s.strip() for s in str(text).split(",") if s.strip()]


def _discard(widget: QWidget) -> None:
    """Take ``widget`` out now, delete it once its signals (maybe the current one) are done."""
    widget.hide()
    widget.setParent(None)
    widget.deleteLater()


class StemChecks(QWidget):
    """A check box per stem; ``changed(text)`` with the comma list (or ``all_word``)."""

    changed = Signal(str)

    def __init__(self, name: str, all_word: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.all_word = all_word
        self.layout_ = QGridLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setHorizontalSpacing(10)
        self.boxes: dict[str, QCheckBox] = {}
        self.setAccessibleName(name)

    def set_stems(self, stems: list[str], value: str) -> None:
        for box in self.boxes.values():
            _discard(box)
        self.boxes = {}
        chosen = _split(value)
        everything = not chosen or chosen == [self.all_word]
        for i, stem in enumerate(stems):
            box = QCheckBox(stem)
            box.setAccessibleName(f"{self.name} {stem}")
            box.setChecked(everything or stem in chosen)
            box.toggled.connect(self._toggled)
            self.layout_.addWidget(box, i // 3, i % 3)
            self.boxes[stem] = box

    def value(self) -> str:
        on = [s for s, b in self.boxes.items() if b.isChecked()]
        if len(on) == len(self.boxes):
            return self.all_word
        return ",".join(on)

    def _toggled(self, _: bool) -> None:
        self.changed.emit(self.value())


class StemChainDialog(QDialog):
    """Edit one stem's chain with the same editor as the main chain.

    The preset box loads a preset's chain as a starting point; saving presets stays with the
    main chain. Stages that cannot run on a stem are listed in the note and left out when the
    chain is stored (see :func:`stem_safe_chain`).
    """

    def __init__(self, stem: str, chain: Chain, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Chain for the {stem} stem")
        self.setAccessibleName(f"{stem} stem chain editor")
        layout = QVBoxLayout(self)
        _, mix_only = stem_safe_chain(Chain.of(*stage_names()))
        note = QLabel(
            f"The <b>{stem}</b> stem runs through this chain before the re-mix. Stages that "
            "need the whole file or change its length or channels run on the mix only and are "
            f"left out here: {', '.join(sorted(mix_only))}."
        )
        note.setWordWrap(True)
        layout.addWidget(note)
        self.editor = ChainEditor(self)
        self.editor.preset_menu_button.hide()
        self.editor.set_chain(chain, modified=False)
        layout.addWidget(self.editor, 1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(560, 640)

    def chain(self) -> Chain:
        return self.editor.current_chain()


class StemsPanel(QWidget):
    """Separation settings of the chain edited by ``editor`` (a :class:`ChainEditor`)."""

    modelStatusChanged = Signal(str)

    def __init__(self, editor: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.available = STAGE in stage_names() and editor is not None
        self._refreshing = False
        self.model_status = ""
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll)
        page = QWidget()
        scroll.setWidget(page)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(8, 8, 8, 8)
        if not self.available:
            note = QLabel(
                "<b>Stems (source separation)</b><br>Separation is not available in this "
                "build: no <i>separate</i> stage is installed."
            )
            note.setWordWrap(True)
            layout.addWidget(note)
            layout.addStretch(1)
            return
        self.cls = get_stage_class(STAGE)
        self.infos = {i.name: i for i in self.cls.Params.infos()}
        self.enable = QCheckBox("Separate into stems before restoring")
        self.enable.setAccessibleName("Separate into stems")
        self.enable.setToolTip(
            "Adds the 'separate' stage at the top of the chain (off: the stage is disabled, "
            "its settings kept)"
        )
        self.enable.toggled.connect(self.set_enabled)
        layout.addWidget(self.enable)
        summary = QLabel(self.cls.summary)
        summary.setWordWrap(True)
        summary.setEnabled(False)
        layout.addWidget(summary)

        self.editors: dict[str, ParamEditor] = {}
        self.labels: dict[str, QLabel] = {}

        # --- separation
        self.sep_box = QGroupBox("Separation")
        form = self._form(self.sep_box)
        self._add_editor(form, "backend")
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setAccessibleName("separate.model")
        self.model.setToolTip(self.infos["model"].spec.help)
        self.model.activated.connect(self._model_chosen)
        self.model.lineEdit().editingFinished.connect(self._model_typed)
        self._add_row(form, "model", self.model)
        self.model_note = QLabel()
        self.model_note.setWordWrap(True)
        self.model_note.setAccessibleName("Model status")
        self.model_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("", self.model_note)
        self.stems = StemChecks("separate.stems", "auto")
        self.stems.changed.connect(lambda v: self._set("stems", v))
        self._add_row(form, "stems", self.stems)
        self.residual_note = QLabel()
        self.residual_note.setEnabled(False)
        self.residual_note.setWordWrap(True)
        form.addRow("", self.residual_note)
        self._add_editor(form, "mode")
        for names in BACKEND_PARAMS.values():
            for name in names:
                self._add_editor(form, name)
        layout.addWidget(self.sep_box)

        # --- per-stem chains
        self.chains_box = QGroupBox("Per-stem restoration")
        self.chains_grid = QVBoxLayout(self.chains_box)
        layout.addWidget(self.chains_box)

        # --- export
        self.export_box = QGroupBox("Stem files")
        form = self._form(self.export_box)
        self._add_editor(form, "export")
        self.export_stems = StemChecks("separate.export_stems", "all")
        self.export_stems.changed.connect(lambda v: self._set("export_stems", v))
        self._add_row(form, "export_stems", self.export_stems)
        folder_row = QWidget()
        fr = QHBoxLayout(folder_row)
        fr.setContentsMargins(0, 0, 0, 0)
        self.export_dir = QLineEdit()
        self.export_dir.setAccessibleName("separate.export_dir")
        self.export_dir.setPlaceholderText("next to the restored file")
        self.export_dir.setToolTip(self.infos["export_dir"].spec.help)
        self.export_dir.editingFinished.connect(
            lambda: self._set("export_dir", self.export_dir.text().strip())
        )
        browse = QToolButton()
        browse.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon))
        browse.setToolTip("Choose the folder for stem files")
        browse.setAccessibleName("Choose the folder for stem files")
        browse.clicked.connect(self._browse)
        fr.addWidget(self.export_dir, 1)
        fr.addWidget(browse)
        self._add_row(form, "export_dir", folder_row)
        self._add_editor(form, "export_pattern")
        self.export_example = QLabel()
        self.export_example.setEnabled(False)
        self.export_example.setWordWrap(True)
        form.addRow("", self.export_example)
        layout.addWidget(self.export_box)
        layout.addStretch(1)
        editor.chainChanged.connect(self.refresh)
        self.refresh()

    # ------------------------------------------------------------ construction helpers
    @staticmethod
    def _form(box: QGroupBox) -> QFormLayout:
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return form

    def _add_row(self, form: QFormLayout, name: str, widget: QWidget) -> None:
        label = QLabel(param_label(name.removeprefix("export_")) if name != "export" else "Write")
        label.setToolTip(self.infos[name].spec.help)
        form.addRow(label, widget)
        self.labels[name] = label

    def _add_editor(self, form: QFormLayout, name: str) -> None:
        info = self.infos[name]
        editor = ParamEditor(STAGE, info, info.default)
        editor.valueChanged.connect(lambda v, n=name: self._set(n, v))
        self._add_row(form, name, editor)
        self.labels[name].setBuddy(editor.box)
        self.editors[name] = editor

    # ------------------------------------------------------------ the chain entry
    def entry(self) -> StageConfig | None:
        return self.editor.chain.find(STAGE)

    def is_on(self) -> bool:
        entry = self.entry()
        return entry is not None and entry.enabled

    def values(self) -> dict[str, Any]:
        entry = self.entry()
        values = self.cls.Params().to_dict()
        if entry is not None:
            values.update(entry.params)
        return values

    def set_enabled(self, on: bool) -> None:
        """Insert/enable (on) or disable (off) the chain's ``separate`` entry."""
        if self._refreshing:
            return
        entry = self.entry()
        if on and entry is None:
            self.editor.insert_stage(0, StageConfig(STAGE))
        elif entry is not None and entry.enabled != on:
            self.editor.set_enabled(self.editor.chain.stages.index(entry), on)
        self.refresh()

    def _set(self, name: str, value: Any) -> None:
        if self._refreshing:
            return
        if name == "export_pattern" and "{stem}" not in str(value):
            self.export_example.setText("The pattern must contain {stem}: not applied.")
            return
        if self.entry() is None:
            self.set_enabled(True)
        self.editor.set_param(STAGE, name, value)
        self.editor.refresh_form()
        self.refresh()

    def _model_chosen(self, index: int) -> None:
        name = self.model.itemData(index)
        if name:
            self._set("model", name)

    def _model_typed(self) -> None:
        text = self.model.currentText().split(" ")[0].strip()
        if text and text != self.values()["model"]:
            self._set("model", text)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Stem files folder", self.export_dir.text())
        if folder:
            self.export_dir.setText(folder)
            self._set("export_dir", folder)

    def use_preset_for_stem(self, stem: str, preset: str | None) -> list[str]:
        """Give ``stem`` the chain of ``preset`` (None: no chain); the stages left out."""
        if self.entry() is None:
            raise ParameterError("turn stems on first")
        chain = Chain() if preset is None else presets.load_preset(preset).chain
        return self.set_stem_chain(stem, chain)

    def stem_chain(self, stem: str) -> Chain:
        """The chain ``stem`` runs through now (empty: it passes through)."""
        entry = self.entry()
        spec = ((entry.stems if entry is not None else None) or {}).get(stem)
        items = spec.get("chain") if isinstance(spec, dict) else None
        return Chain.from_list(items or [])

    def set_stem_chain(self, stem: str, chain: Chain) -> list[str]:
        """Give ``stem`` the enabled, stem-safe stages of ``chain``; the stages left out."""
        entry = self.entry()
        if entry is None:
            raise ParameterError("turn stems on first")
        stems = dict(entry.stems or {})
        current = dict(stems.get(stem, {}))
        kept, dropped = stem_safe_chain(chain)
        if kept:
            current["chain"] = kept
        else:
            current.pop("chain", None)
        self._store_stem(stems, stem, current)
        if dropped:
            log.info(
                "stem %s: %s left out (they run on the whole mix, not on a stem)",
                stem,
                ", ".join(dropped),
            )
        return dropped

    def edit_stem_chain(self, stem: str) -> bool:
        """Open the chain editor for ``stem``; True when the edit was kept."""
        dialog = StemChainDialog(stem, self.stem_chain(stem), self)
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
            self.set_stem_chain(stem, dialog.chain())
            return True
        except AudioRestorerError as exc:
            log.warning("stem %s: %s", stem, exc)
            return False
        finally:
            dialog.deleteLater()

    def set_stem_gain(self, stem: str, gain_db: float) -> None:
        entry = self.entry()
        if entry is None:
            return
        stems = dict(entry.stems or {})
        current = dict(stems.get(stem, {}))
        current["gain_db"] = float(gain_db)
        self._store_stem(stems, stem, current)

    def _store_stem(self, stems: dict[str, Any], stem: str, current: dict[str, Any]) -> None:
        if not current.get("chain") and not current.get("gain_db"):
            stems.pop(stem, None)
        else:
            stems[stem] = current
        self.editor.set_stems(STAGE, stems or None)
        self.refresh()

    # ------------------------------------------------------------ chain -> widgets
    def refresh(self) -> None:
        if not self.available:
            return
        self._refreshing = True
        try:
            self._refresh()
        finally:
            self._refreshing = False

    def _refresh(self) -> None:
        on = self.is_on()
        self.enable.setChecked(on)
        for box in (self.sep_box, self.chains_box, self.export_box):
            box.setEnabled(on)
        values = self.values()
        for name, editor in self.editors.items():
            editor.set_value(values[name])
        backend = values["backend"]
        for b, names in BACKEND_PARAMS.items():
            for name in names:
                self.editors[name].setVisible(b == backend)
                self.labels[name].setVisible(b == backend)
        demucs = backend == "demucs"
        self.model.setVisible(demucs)
        self.labels["model"].setVisible(demucs)
        self._fill_models(values["model"] if demucs else None)
        sources, residual = backend_stems(backend, values["model"])
        self.stems.set_stems(sources, values["stems"])
        kept = [s for s in sources if self.stems.boxes[s].isChecked()]
        self.residual_note.setText(
            f"'{residual}' stem: the mix minus the stems kept, so the stems add up to the mix."
        )
        all_stems = [*kept, residual]
        self.export_stems.set_stems(all_stems, values["export_stems"])
        self.export_dir.setText(values["export_dir"])
        exporting = values["export"] != "none"
        for name in ("export_stems", "export_dir", "export_pattern"):
            self.labels[name].setEnabled(exporting)
        self.export_stems.setEnabled(exporting)
        self.export_dir.parentWidget().setEnabled(exporting)
        self.editors["export_pattern"].setEnabled(exporting)
        example = ""
        if exporting:
            stem = all_stems[0] if all_stems else "stem"
            label = f"{stem}.raw" if values["export"] == "both" else stem
            try:
                example = "e.g. " + values["export_pattern"].format(
                    name="take1.restored", stem=label, ext="wav"
                )
            except (KeyError, IndexError, ValueError) as exc:
                example = f"Bad pattern: {exc}"
        self.export_example.setText(example)
        self._fill_chains(all_stems, values["mode"] == "per-stem")

    def _fill_models(self, current: str | None) -> None:
        self.model.blockSignals(True)
        self.model.clear()
        status = ""
        if current is not None:
            for name, installed in demucs_model_names():
                self.model.addItem(name if installed else f"{name} (not installed)", name)
            index = self.model.findData(current)
            if index < 0:
                self.model.addItem(current, current)
                index = self.model.count() - 1
            self.model.setCurrentIndex(index)
            status = demucs_model_status(current) or ""
        self.model.blockSignals(False)
        self.model_note.setText(status or ("Installed." if current else ""))
        self.model_note.setVisible(current is not None)
        if status != self.model_status:
            self.model_status = status
            self.modelStatusChanged.emit(status)

    def _fill_chains(self, stems: list[str], per_stem: bool) -> None:
        grid = self.chains_grid
        while grid.count():
            item = grid.takeAt(0)
            if item.widget() is not None:
                _discard(item.widget())
        entry = self.entry()
        mapping = (entry.stems if entry is not None else None) or {}
        if not per_stem:
            note = QLabel("Mode 'mix': the mix is restored as a whole; stems are for export.")
            note.setWordWrap(True)
            note.setEnabled(False)
            grid.addWidget(note)
            return
        note = QLabel(
            "Each stem runs through its own chain before the re-mix; a stem with no chain and "
            "no gain passes through. The main chain then runs on the re-mix."
        )
        note.setWordWrap(True)
        note.setEnabled(False)
        grid.addWidget(note)
        preset_names = self.editor.preset_names() if stems else []
        for stem in stems:
            spec = mapping.get(stem, {}) if isinstance(mapping.get(stem), dict) else {}
            chain = spec.get("chain") or []
            titles = []
            for e in chain:
                try:
                    titles.append(get_stage_class(e.get("stage", "")).title)
                except AudioRestorerError:
                    titles.append(str(e.get("stage")))
            row = QWidget()
            rl = QGridLayout(row)
            rl.setContentsMargins(0, 4, 0, 0)
            rl.setHorizontalSpacing(6)
            rl.setVerticalSpacing(2)
            rl.setColumnStretch(0, 1)
            name = QLabel(f"<b>{stem}</b>")
            summary = QLabel(" → ".join(titles) if titles else "no chain: passes through")
            summary.setWordWrap(True)
            summary.setEnabled(bool(titles))
            summary.setAccessibleName(f"{stem} chain")
            summary.setToolTip("\n".join(f"{e.get('stage')}: {e.get('params', {})}" for e in chain))
            pick = QComboBox()
            pick.setAccessibleName(f"{stem} chain preset")
            pick.setToolTip(f"Take a preset's chain for the {stem} stem (none: no chain)")
            pick.addItem("Use preset…", "")
            pick.addItem("none", None)
            for p in preset_names:
                pick.addItem(p, p)
            pick.activated.connect(lambda i, s=stem, c=pick: self._preset_picked(s, c.itemData(i)))
            edit = QPushButton("Edit…")
            edit.setAccessibleName(f"Edit the {stem} chain")
            edit.setToolTip(f"Edit the stages and settings of the {stem} stem's chain")
            edit.clicked.connect(lambda _=False, s=stem: self.edit_stem_chain(s))
            gain = QDoubleSpinBox()
            gain.setRange(-60.0, 24.0)
            gain.setSingleStep(0.5)
            gain.setDecimals(1)
            gain.setSuffix(" dB")
            gain.setKeyboardTracking(False)
            gain.setAccessibleName(f"{stem} gain")
            gain.setToolTip(f"Level of the {stem} stem in the re-mix")
            gain.setValue(float(spec.get("gain_db", 0.0) or 0.0))
            gain.valueChanged.connect(lambda v, s=stem: self.set_stem_gain(s, v))
            rl.addWidget(name, 0, 0)
            rl.addWidget(pick, 0, 1)
            rl.addWidget(gain, 0, 2)
            rl.addWidget(summary, 1, 0, 1, 2)
            rl.addWidget(edit, 1, 2, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(row)

    def _preset_picked(self, stem: str, preset: str | None) -> None:
        if preset == "":
            return
        try:
            self.use_preset_for_stem(stem, preset)
        except AudioRestorerError as exc:
            log.warning("stem %s: %s", stem, exc)
