"""Side panels: export settings, and the device with the model store's files.

The export panel turns its widgets into :class:`~audio_restorer.pipeline.runner.RestoreOptions`
and an output path per source file. By default outputs go to a ``restored`` folder beside each
source (never the source folder itself) and existing files are not replaced: a numbered name
is chosen instead. The device panel lists the model store's files (bundled, user, Demucs
cache), imports and verifies them.
"""

# ruff: noqa: N815  (Qt's camelCase signal names)

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from audio_restorer.audio.io import WRITE_FORMATS
from audio_restorer.cli.restore import output_name
from audio_restorer.errors import AudioRestorerError, ParameterError
from audio_restorer.gui.settings import Settings
from audio_restorer.models import import_model, list_models, user_models_dir, verify_models
from audio_restorer.models.store import MODEL_EXTENSIONS, expected_checksum
from audio_restorer.pipeline.runner import RestoreOptions

log = logging.getLogger("audio_restorer.gui")

RATES = (0, 22050, 32000, 44100, 48000, 88200, 96000)
DEFAULT_SUBFOLDER = "restored"


def unique_path(path: Path) -> Path:
    """``path`` if free, else ``stem (2).ext``, ``stem (3).ext``…"""
    if not path.exists():
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


class ExportPanel(QWidget):
    changed = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        form = QFormLayout(self)
        form.setContentsMargins(8, 8, 8, 8)
        self.format = QComboBox()
        self.format.addItems(list(WRITE_FORMATS))
        self.format.setAccessibleName("Output format")
        self.bit_depth = QComboBox()
        self.bit_depth.setAccessibleName("Bit depth")
        self.rate = QComboBox()
        self.rate.setAccessibleName("Output sample rate")
        for r in RATES:
            self.rate.addItem("Same as input" if r == 0 else f"{r / 1000:g} kHz", r)
        folder_row = QHBoxLayout()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText(f"'{DEFAULT_SUBFOLDER}' folder beside each source")
        self.folder.setAccessibleName("Output folder")
        self.folder.setToolTip(
            "Where restored files go. Empty: a 'restored' subfolder beside each source file; "
            "the source folder itself is never the default."
        )
        browse = QToolButton()
        browse.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon))
        browse.setToolTip("Choose the output folder")
        browse.setAccessibleName("Choose the output folder")
        browse.clicked.connect(self._browse)
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.pattern = QLineEdit()
        self.pattern.setAccessibleName("File name pattern")
        self.pattern.setToolTip("Output file name: {stem} source name, {ext} format, {preset}")
        self.report = QCheckBox("Write provenance report (.restoration.json)")
        self.report.setToolTip("A sidecar with the chain, versions, hashes and measurements")
        self.dither = QCheckBox("Dither when reducing the word length")
        self.overwrite = QCheckBox("Replace existing output files")
        self.overwrite.setToolTip("Off: an existing output gets a numbered name instead")
        self.example = QLabel()
        self.example.setEnabled(False)
        self.example.setWordWrap(True)
        form.addRow("Format", self.format)
        form.addRow("Bit depth", self.bit_depth)
        form.addRow("Sample rate", self.rate)
        form.addRow("Folder", folder_row)
        form.addRow("Name", self.pattern)
        form.addRow("", self.example)
        form.addRow("", self.report)
        form.addRow("", self.dither)
        form.addRow("", self.overwrite)
        self.load()
        self.format.currentTextChanged.connect(self._format_changed)
        for signal in (
            self.bit_depth.currentTextChanged,
            self.rate.currentIndexChanged,
            self.folder.textChanged,
            self.pattern.textChanged,
            self.report.toggled,
            self.dither.toggled,
            self.overwrite.toggled,
        ):
            signal.connect(self._changed)

    def load(self) -> None:
        s = self.settings
        fmt = s.get("export/format")
        self.format.setCurrentText(fmt if fmt in WRITE_FORMATS else "wav")
        self._fill_depths()
        self.bit_depth.setCurrentText(str(s.get("export/bit_depth")))
        index = self.rate.findData(s.get("export/rate"))
        self.rate.setCurrentIndex(max(index, 0))
        self.folder.setText(s.get("export/folder") or "")
        self.pattern.setText(s.get("export/pattern") or "{stem}.restored.{ext}")
        self.report.setChecked(s.get("export/report"))
        self.dither.setChecked(s.get("export/dither"))
        self.overwrite.setChecked(s.get("export/overwrite"))
        self._update_example()

    def _fill_depths(self) -> None:
        current = self.bit_depth.currentText()
        self.bit_depth.blockSignals(True)
        self.bit_depth.clear()
        depths = WRITE_FORMATS[self.format.currentText()][1]
        self.bit_depth.addItems(list(depths))
        if current in depths:
            self.bit_depth.setCurrentText(current)
        elif "24" in depths:
            self.bit_depth.setCurrentText("24")
        self.bit_depth.setEnabled(len(depths) > 1)
        self.bit_depth.blockSignals(False)

    def _format_changed(self) -> None:
        self._fill_depths()
        self._changed()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _changed(self) -> None:
        s = self.settings
        s.set("export/format", self.format.currentText())
        s.set("export/bit_depth", self.bit_depth.currentText())
        s.set("export/rate", int(self.rate.currentData()))
        s.set("export/folder", self.folder.text().strip())
        s.set("export/pattern", self.pattern.text().strip())
        s.set("export/report", self.report.isChecked())
        s.set("export/dither", self.dither.isChecked())
        s.set("export/overwrite", self.overwrite.isChecked())
        self._update_example()
        self.changed.emit()

    def _update_example(self) -> None:
        try:
            name = output_name(Path("take1.wav"), self._pattern(), self.format.currentText(), None)
        except ParameterError as exc:
            self.example.setText(str(exc))
            return
        self.example.setText(f"e.g. take1.wav → {name}")

    def _pattern(self) -> str:
        return self.pattern.text().strip() or "{stem}.restored.{ext}"

    # ------------------------------------------------------------ what the worker gets
    def options(self, device: str, preset: str | None) -> RestoreOptions:
        fmt = self.format.currentText()
        depth = self.bit_depth.currentText()
        return RestoreOptions(
            fmt=fmt,
            bit_depth=None if fmt == "mp3" else depth,
            rate=int(self.rate.currentData()) or None,
            device=device,
            dither=self.dither.isChecked(),
            report=self.report.isChecked(),
            preset=preset,
        )

    def output_path(self, src: Path, preset: str | None) -> Path:
        """Where ``src``'s result goes (raises ParameterError for a bad pattern)."""
        folder_text = self.folder.text().strip()
        folder = Path(folder_text).expanduser() if folder_text else src.parent / DEFAULT_SUBFOLDER
        name = output_name(src, self._pattern(), self.format.currentText(), preset)
        path = folder / name
        if path.resolve() == src.resolve():
            raise ParameterError(f"the output would replace the source {src}")
        return path if self.overwrite.isChecked() else unique_path(path)


def format_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def gpu_available() -> bool:
    """True when PyTorch is installed and sees a CUDA GPU (imports torch: call off the GUI)."""
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


class DevicePanel(QWidget):
    """Where ML stages run, and which models are installed."""

    changed = Signal()
    modelsChanged = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        box = QGroupBox("Processing device")
        form = QFormLayout(box)
        self.device = QComboBox()
        self.device.setAccessibleName("Processing device")
        self.device.addItem("Automatic (GPU when an ML stage needs it)", "auto")
        self.device.addItem("CPU", "cpu")
        self.device.addItem("GPU (CUDA)", "cuda")
        self._set_gpu(False, "checking for a GPU…")
        current = self.device.findData(settings.get("device"))
        self.device.setCurrentIndex(max(current, 0))
        self.device.currentIndexChanged.connect(self._changed)
        form.addRow("Device", self.device)
        self.gpu_note = QLabel("Checking for a CUDA GPU…")
        self.gpu_note.setWordWrap(True)
        self.gpu_note.setEnabled(False)
        form.addRow("", self.gpu_note)
        layout.addWidget(box)

        models = QGroupBox("Models")
        ml = QVBoxLayout(models)
        self.models_table = QTableWidget(0, 4)
        self.models_table.setAccessibleName("Installed models")
        self.models_table.setHorizontalHeaderLabels(["Model file", "Size", "SHA-256", "Folder"])
        self.models_table.verticalHeader().hide()
        self.models_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.models_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.models_table.setWordWrap(False)
        self.models_table.setShowGrid(False)
        self.models_table.verticalHeader().setDefaultSectionSize(22)
        header = self.models_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.models_table.setMinimumHeight(150)
        ml.addWidget(self.models_table, 1)
        self.models_note = QLabel()
        self.models_note.setWordWrap(True)
        self.models_note.setAccessibleName("Models note")
        self.models_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        ml.addWidget(self.models_note)
        buttons = QHBoxLayout()
        self.import_button = QPushButton("Import model file…")
        self.import_button.setToolTip(
            f"Copy a weights file into {user_models_dir()} and record its SHA-256"
        )
        self.import_button.clicked.connect(self._import_dialog)
        self.verify_button = QPushButton("Verify")
        self.verify_button.setToolTip("Re-check every model file against its recorded SHA-256")
        self.verify_button.clicked.connect(self.verify)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.verify_button)
        buttons.addStretch(1)
        ml.addLayout(buttons)
        self.model_status = QLabel()
        self.model_status.setWordWrap(True)
        self.model_status.setAccessibleName("Chosen model status")
        self.model_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_status.setVisible(False)
        ml.addWidget(self.model_status)
        layout.addWidget(models)
        layout.addStretch(1)
        self.verified: dict[Path, tuple[bool | None, str]] = {}
        self.refresh_models()

    # ------------------------------------------------------------ models
    def refresh_models(self) -> None:
        """List the model files of every model folder (the store's lookup order)."""
        files = list_models()
        table = self.models_table
        table.setRowCount(len(files))
        for row, f in enumerate(files):
            checked = self.verified.get(f.path)
            recorded = expected_checksum(f.path)
            digest = recorded[0][:12] if recorded and recorded[1] == "manifest" else ""
            if not digest and checked is not None and "sha256 " in checked[1]:
                digest = checked[1].split("sha256 ", 1)[1][:12]
            cells = [
                f.name,
                format_size(f.size),
                digest or (recorded[0] + "…" if recorded else "not recorded"),
                f.source,
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(str(f.path) if col != 2 else (checked[1] if checked else text))
                if col == 0 and checked is not None:
                    mark = {True: "✓ ", False: "✗ ", None: "? "}[checked[0]]
                    item.setText(mark + f.name)
                    item.setToolTip(f"{f.path}\n{checked[1]}")
                table.setItem(row, col, item)
        folder = user_models_dir()
        if files:
            self.models_note.setText(
                f"{len(files)} model file(s). Imported models go to {folder}. "
                "Nothing is downloaded at run time."
            )
        else:
            self.models_note.setText(
                "No models are installed. Stages that need one (Demucs separation) say which "
                f"file is missing; put it in {folder} or import it here. Nothing is downloaded "
                "at run time."
            )
        table.setVisible(bool(files))

    def import_files(self, paths: list[str]) -> list[str]:
        """Import model files into the user's models folder; the problems, one per file."""
        problems = []
        for path in paths:
            try:
                imported = import_model(path)
                log.info("imported model %s (%s)", imported.name, format_size(imported.size))
            except AudioRestorerError as exc:
                problems.append(str(exc))
                log.error("model import: %s", exc)
        self.refresh_models()
        self.modelsChanged.emit()
        return problems

    def _import_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self,
            "Import model file",
            "",
            "Model files (" + " ".join(f"*{e}" for e in MODEL_EXTENSIONS) + ")",
        )
        if paths:
            problems = self.import_files(paths)
            if problems:
                QMessageBox.warning(self, "Import model file", "\n\n".join(problems))

    def verify(self) -> list[tuple[str, bool | None, str]]:
        """Re-check every model file against its recorded checksum (marks the rows)."""
        self.verified = {}
        results = []
        for f, ok, message in verify_models():
            self.verified[f.path] = (ok, message)
            results.append((f.name, ok, message))
            level = logging.ERROR if ok is False else logging.INFO
            log.log(level, "model %s: %s", f.name, message)
        self.refresh_models()
        bad = sum(1 for _, ok, _ in results if ok is False)
        self.models_note.setText(
            f"Verified {len(results)} file(s): "
            + (f"{bad} damaged (marked ✗): replace them." if bad else "no damaged file.")
        )
        return results

    def show_model_status(self, message: str) -> None:
        """The chosen separation model's problem (empty: none)."""
        self.model_status.setText(f"⚠ {message}" if message else "")
        self.model_status.setVisible(bool(message))

    def _set_gpu(self, available: bool, note: str) -> None:
        item = self.device.model().item(2)  # type: ignore[attr-defined]
        item.setEnabled(available)
        item.setToolTip("" if available else note)
        if not available and self.device.currentData() == "cuda":
            self.device.setCurrentIndex(0)

    def gpu_checked(self, available: bool) -> None:
        self._set_gpu(available, "No CUDA GPU was found (or PyTorch is not installed)")
        if available:
            self.gpu_note.setText("A CUDA GPU is available.")
        else:
            self.gpu_note.setText("No CUDA GPU found: ML stages run on the CPU.")

    def _changed(self) -> None:
        self.settings.set("device", self.value())
        self.changed.emit()

    def value(self) -> str:
        return str(self.device.currentData())
