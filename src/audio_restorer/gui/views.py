"""Waveform and spectrogram of the selected file, before and after, with one shared time axis.

Drawn with pyqtgraph from :class:`~audio_restorer.gui.overview.Overview` data only (a bounded
min/max envelope and a coarse spectrogram), so zooming and scrolling stay fast on long files.
All four plots share the x axis; a time range selected in any of them is mirrored in the others
and drives the preview, playback and the noise profile. Dragging with the left button on any
plot selects a range; Shift+drag (or the right button) pans, the wheel zooms.
"""

# ruff: noqa: N815  (Qt's camelCase signal and override names)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStyle, QToolButton, QVBoxLayout, QWidget

from audio_restorer.gui.overview import Overview

pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")

_SPEC_FLOOR_DB = -100.0
_SPEC_TOP_DB = 0.0


class SelectViewBox(pg.ViewBox):
    """A view box where a plain left drag selects a time range instead of panning.

    ``on_select(start_s, end_s, finished)`` is called while dragging; Shift+drag and drags
    with other buttons keep pyqtgraph's panning.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_select: Callable[[float, float, bool], None] | None = None

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 (Qt override)
        plain_left = ev.button() == Qt.MouseButton.LeftButton and not (
            ev.modifiers() & Qt.KeyboardModifier.ShiftModifier
        )
        if not plain_left or self.on_select is None or axis is not None:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        x0 = self.mapSceneToView(ev.buttonDownScenePos()).x()
        x1 = self.mapSceneToView(ev.scenePos()).x()
        self.on_select(min(x0, x1), max(x0, x1), bool(ev.isFinish()))


class _Pair:
    """Waveform and spectrogram plots of one signal (before or after)."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, title: str) -> None:
        self.wave = layout.addPlot(row=row, col=0, viewBox=SelectViewBox())
        self.spec = layout.addPlot(row=row + 1, col=0, viewBox=SelectViewBox())
        self.wave.setLabel("left", title)
        self.spec.setLabel("left", "kHz")
        for plot in (self.wave, self.spec):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getViewBox().setMouseEnabled(x=True, y=False)
            plot.getAxis("left").setWidth(52)
            plot.showAxis("bottom", False)
        self.wave.setYRange(-1.0, 1.0, padding=0.02)
        self.wave.getAxis("left").setTicks([[(v, f"{v:g}") for v in (-0.5, 0.0, 0.5)], []])
        for plot in (self.wave, self.spec):
            plot.getAxis("left").enableAutoSIPrefix(False)
        self._spec_ticks(22050)
        self.curve = self.wave.plot([], [])
        self.curve.setDownsampling(auto=True, method="peak")
        self.curve.setClipToView(True)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.image.setLevels((_SPEC_FLOOR_DB, _SPEC_TOP_DB))
        self.spec.addItem(self.image)
        self.placeholder = pg.TextItem("", anchor=(0.5, 0.5))
        self.wave.addItem(self.placeholder, ignoreBounds=True)
        self.overview: Overview | None = None
        self.offset_s = 0.0

    def _spec_ticks(self, rate: int) -> None:
        """kHz ticks that stay clear of the plot's top edge (and of the plot above)."""
        top = rate / 2000.0
        step = next(s for s in (0.5, 1, 2, 5, 10, 20, 50) if top / s <= 5)
        ticks = [(k * step, f"{k * step:g}") for k in range(int(top / step) + 1)]
        self.spec.getAxis("left").setTicks([[t for t in ticks if t[0] <= 0.85 * top], []])
        self.spec.setYRange(0.0, top, padding=0.0)

    def show(self, overview: Overview | None, offset_s: float = 0.0, note: str = "") -> None:
        self.overview, self.offset_s = overview, offset_s
        if overview is None:
            self.curve.setData([], [])
            self.image.clear()
            self.placeholder.setText(note)
            self.placeholder.setPos(0.5, 0.0)
            return
        self.placeholder.setText("")
        x, y = overview.envelope_xy(offset_s)
        self.curve.setData(x, y)
        spec = overview.spec_db.T  # (bins, columns): rows are frequencies
        self.image.setImage(spec, autoLevels=False)
        width_s = spec.shape[1] * overview.hop / overview.rate
        self.image.setRect(QRectF(offset_s, 0.0, width_s, overview.rate / 2000.0))
        self._spec_ticks(overview.rate)

    def place_note(self, x: float) -> None:
        self.placeholder.setPos(x, 0.0)


class AudioViews(QWidget):
    """Before/after waveform and spectrogram; ``selectionChanged(start_s, end_s)`` or (-1, -1)."""

    selectionChanged = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        header = QHBoxLayout()
        header.setContentsMargins(4, 0, 4, 0)
        self.title = QLabel("No file selected")
        self.title.setAccessibleName("Selected file")
        header.addWidget(self.title, 1)
        self.range_label = QLabel("")
        self.range_label.setAccessibleName("Selected range")
        header.addWidget(self.range_label)
        style = self.style()
        self.select_button = self._tool(
            style,
            QStyle.StandardPixmap.SP_DialogApplyButton,
            "Select a range (or drag on the plots; Shift+drag pans)",
        )
        self.clear_button = self._tool(
            style, QStyle.StandardPixmap.SP_DialogResetButton, "Clear the selection"
        )
        self.zoom_sel_button = self._tool(
            style, QStyle.StandardPixmap.SP_FileDialogContentsView, "Zoom to the selection"
        )
        self.zoom_all_button = self._tool(
            style, QStyle.StandardPixmap.SP_TitleBarMaxButton, "Show the whole file"
        )
        self.select_button.clicked.connect(self.select_visible_middle)
        self.clear_button.clicked.connect(self.clear_selection)
        self.zoom_sel_button.clicked.connect(self.zoom_to_selection)
        self.zoom_all_button.clicked.connect(self.zoom_all)
        for b in (
            self.select_button,
            self.clear_button,
            self.zoom_sel_button,
            self.zoom_all_button,
        ):
            header.addWidget(b)
        layout.addLayout(header)

        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setAccessibleName("Waveform and spectrogram, before and after")
        self.canvas.ci.setSpacing(0)
        self.canvas.ci.setContentsMargins(2, 2, 8, 2)
        layout.addWidget(self.canvas, 1)
        self.before = _Pair(self.canvas.ci, 0, "Before")
        self.after = _Pair(self.canvas.ci, 2, "After")
        self.plots = [self.before.wave, self.before.spec, self.after.wave, self.after.spec]
        self.after.spec.showAxis("bottom", True)
        self.after.spec.setLabel("bottom", "Time", units="s")
        for plot in self.plots[1:]:
            plot.setXLink(self.plots[0])
        self.regions: list[pg.LinearRegionItem] = []
        for plot in self.plots:
            plot.getViewBox().on_select = self._dragged
            region = pg.LinearRegionItem(values=(0, 1), movable=True)
            region.setZValue(10)
            region.hide()
            region.sigRegionChanged.connect(self._region_moved)
            plot.addItem(region, ignoreBounds=True)
            self.regions.append(region)
        self._syncing = False
        self.duration_s = 0.0
        self.apply_palette()
        self.show_before(None)

    @staticmethod
    def _tool(style: QStyle, icon: QStyle.StandardPixmap, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(style.standardIcon(icon))
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        button.setAutoRaise(True)
        return button

    def apply_palette(self) -> None:
        """Follow the application palette (light or dark)."""
        pal = self.palette()
        self.canvas.setBackground(pal.color(QPalette.ColorRole.Base))
        fg = pal.color(QPalette.ColorRole.Text)
        accent = pal.color(QPalette.ColorRole.Highlight)
        for pair in (self.before, self.after):
            pair.curve.setPen(pg.mkPen(accent, width=1))
            pair.placeholder.setColor(fg)
            for plot in (pair.wave, pair.spec):
                for name in ("left", "bottom"):
                    axis = plot.getAxis(name)
                    axis.setPen(pg.mkPen(fg))
                    axis.setTextPen(pg.mkPen(fg))
        for region in self.regions:
            brush = pg.mkBrush(accent.red(), accent.green(), accent.blue(), 50)
            region.setBrush(brush)

    # ------------------------------------------------------------ data
    def show_before(self, overview: Overview | None, title: str = "") -> None:
        self.title.setText(title or "No file selected")
        self.before.show(overview, 0.0, "" if overview else "Select a file in the queue")
        self.duration_s = overview.duration_s if overview else 1.0
        self.show_after(None)
        for plot in self.plots:
            plot.getViewBox().setLimits(xMin=0.0, xMax=max(self.duration_s, 0.01))
        self.zoom_all()
        self.clear_selection()

    def show_after(self, overview: Overview | None, offset_s: float = 0.0, note: str = "") -> None:
        note = note or "Preview a range, or restore the file, to see the result here"
        self.after.show(overview, offset_s, "" if overview else note)
        self.after.place_note(self.duration_s / 2)
        self.before.place_note(self.duration_s / 2)

    # ------------------------------------------------------------ view range
    def zoom_all(self) -> None:
        self.plots[0].setXRange(0.0, max(self.duration_s, 0.01), padding=0.0)

    def zoom_to_selection(self) -> None:
        sel = self.selection()
        if sel:
            self.plots[0].setXRange(*sel, padding=0.05)

    def visible_range(self) -> tuple[float, float]:
        (x0, x1), _ = self.plots[0].getViewBox().viewRange()
        return float(x0), float(x1)

    # ------------------------------------------------------------ selection
    def selection(self) -> tuple[float, float] | None:
        if not self.regions[0].isVisible():
            return None
        a, b = self.regions[0].getRegion()
        a, b = max(0.0, float(a)), min(self.duration_s, float(b))
        return (a, b) if b > a else None

    def set_selection(self, start_s: float, end_s: float) -> None:
        self._syncing = True
        for region in self.regions:
            region.setRegion((start_s, end_s))
            region.show()
        self._syncing = False
        self._emit_selection()

    def select_visible_middle(self) -> None:
        x0, x1 = self.visible_range()
        x0, x1 = max(0.0, x0), min(self.duration_s, x1)
        span = x1 - x0
        self.set_selection(x0 + span / 3, x0 + 2 * span / 3)

    def _dragged(self, start_s: float, end_s: float, finished: bool) -> None:
        """A left drag on a plot: select that range (clamped to the file)."""
        if self.duration_s <= 0:
            return
        start_s, end_s = max(0.0, start_s), min(self.duration_s, end_s)
        x0, x1 = self.visible_range()
        if end_s - start_s < 0.003 * max(x1 - x0, 1e-9):  # a click, not a drag
            if finished:
                self.clear_selection()
            return
        self.set_selection(start_s, end_s)

    def clear_selection(self) -> None:
        for region in self.regions:
            region.hide()
        self._emit_selection()

    def _region_moved(self, region: pg.LinearRegionItem) -> None:
        if self._syncing:
            return
        self._syncing = True
        values = region.getRegion()
        for other in self.regions:
            if other is not region:
                other.setRegion(values)
        self._syncing = False
        self._emit_selection()

    def _emit_selection(self) -> None:
        sel = self.selection()
        if sel:
            self.range_label.setText(f"Selection {sel[0]:.2f}–{sel[1]:.2f} s")
            self.selectionChanged.emit(*sel)
        else:
            self.range_label.setText("")
            self.selectionChanged.emit(-1.0, -1.0)
