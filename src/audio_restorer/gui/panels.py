"""Side panels: export settings, device and models, and stems (separation).

The export panel turns its widgets into :class:`~audio_restorer.pipeline.runner.RestoreOptions`
and an output path per source file. By default outputs go to a ``restored`` folder beside each
source (never the source folder itself) and existing files are not replaced: a numbered name
is chosen instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from audio_restorer.audio.io import WRITE_FORMATS
from audio_restorer.cli.restore import output_name
from audio_restorer.errors import ParameterError
from audio_restorer.gui.settings import Settings
from audio_restorer.pipeline.runner import RestoreOptions
from audio_restorer.stages.registry import get_stage_class, stage_names
from audio_restorer.util import user_data_dir

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
        folder = user_data_dir() / "models"
        installed = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        if installed:
            text = "Installed models:\n" + "\n".join(f"• {name}" for name in installed)
        else:
            text = (
                "No models are installed yet. Stages that need a model report a clear error "
                f"naming it when they run; models will be kept in {folder}."
            )
        self.models_label = QLabel(text)
        self.models_label.setWordWrap(True)
        self.models_label.setAccessibleName("Installed models")
        ml.addWidget(self.models_label)
        layout.addWidget(models)
        layout.addStretch(1)

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


class StemsPanel(QWidget):
    """Source separation settings: live only when a ``separate`` stage is registered."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.available = "separate" in stage_names()
        if self.available:
            cls = get_stage_class("separate")
            text = (
                f"<b>{cls.title}</b><br>{cls.summary}<br><br>Add the stage to the chain and set "
                "its backend, model and stems in the chain editor."
            )
        else:
            text = (
                "<b>Stems (source separation)</b><br>Separation into stems is not available in "
                "this build yet: no <i>separate</i> stage is installed. When it is, its backend, "
                "model, stem choice and per-stem export appear here."
            )
        note = QLabel(text)
        note.setWordWrap(True)
        note.setAccessibleName("Stems panel note")
        layout.addWidget(note)
        box = QGroupBox("Stems")
        form = QFormLayout(box)
        self.backend = QComboBox()
        self.backend.addItem("(none available)")
        self.stems_folder = QLineEdit()
        self.stems_folder.setPlaceholderText("per-stem export folder")
        form.addRow("Backend", self.backend)
        form.addRow("Export folder", self.stems_folder)
        box.setEnabled(self.available)
        layout.addWidget(box)
        layout.addStretch(1)
