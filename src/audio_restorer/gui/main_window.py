"""The main window: queue, views and player on the left; chain, export, device, stems on the
right; a log panel below; progress in the status bar.

The window only arranges widgets and routes signals: audio work goes to the batch worker thread
(:class:`~audio_restorer.gui.worker.BatchRunner`) and to pool tasks (overviews, previews), whose
results come back through queued signals.
"""

# ruff: noqa: N802  (Qt's camelCase signal and override names)

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QMimeData, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QStyle,
    QTableView,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from audio_restorer import __version__
from audio_restorer.audio.ffmpeg import DecodeCache, sweep_stale
from audio_restorer.audio.io import READ_EXTENSIONS
from audio_restorer.errors import AudioRestorerError
from audio_restorer.gui.chain_editor import ChainEditor
from audio_restorer.gui.compat import install_bool_guard
from audio_restorer.gui.overview import Overview
from audio_restorer.gui.panels import DevicePanel, ExportPanel, gpu_available
from audio_restorer.gui.player import ORIGINAL, RESTORED, ABPlayer, Backend, QtBackend
from audio_restorer.gui.queue_model import QueueItem, QueueModel, Status, format_duration
from audio_restorer.gui.settings import Settings
from audio_restorer.gui.stems import StemsPanel
from audio_restorer.gui.views import AudioViews
from audio_restorer.gui.worker import (
    GUI_BLOCK_FRAMES,
    PREVIEW_PREFIX,
    BatchRunner,
    Job,
    Preview,
    load_overview,
    run_preview,
    submit,
)
from audio_restorer.pipeline.chain import Chain
from audio_restorer.pipeline.runner import restore_file
from audio_restorer.stages.registry import get_stage_class
from audio_restorer.util import package_version, user_data_dir

log = logging.getLogger("audio_restorer.gui")

PREVIEW_DEFAULT_S = 20.0
PROFILE_PARAMS = ("profile_start_s", "profile_end_s")


class _LogEmitter(QObject):
    line = Signal(str, int)


class QtLogHandler(logging.Handler):
    """Logging records to a signal (thread-safe: queued to the GUI thread)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.emitter = _LogEmitter()
        self.setFormatter(logging.Formatter("%(asctime)s  %(levelname)-7s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(RuntimeError):  # the window is gone
            self.emitter.line.emit(self.format(record), record.levelno)


def debug_log_path() -> Path:
    return user_data_dir() / "logs" / "gui-debug.log"


class MainWindow(QMainWindow):
    """The Audio Restorer window.

    Parameters
    ----------
    settings : Settings, optional
        Persistent settings (default: the user's ``gui.ini``).
    restore : callable
        The function the worker calls for each file (``restore_file``; tests may wrap it: it
        must accept and pass on ``restore_file``'s keyword arguments, ``decode_cache`` among them).
    probe_gpu : bool
        Look for a CUDA GPU in the background (imports PyTorch when installed).
    backend : Backend, optional
        Audio playback backend (default: QtMultimedia).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        restore: Callable[..., Any] = restore_file,
        probe_gpu: bool = True,
        backend: Backend | None = None,
    ) -> None:
        super().__init__()
        install_bool_guard(QApplication.instance())
        self.settings = settings or Settings()
        self.setWindowTitle("Audio Restorer")
        self.setAcceptDrops(True)
        self.setAccessibleName("Audio Restorer main window")
        self.model = QueueModel(self)
        self.runner = BatchRunner(restore, self)
        self.running = False
        self.cancelling = False
        self._run_ids: list[int] = []
        self._run_started = 0.0
        self._fractions: dict[int, float] = {}
        self._overviews: dict[Path, Overview] = {}
        # a file read through ffmpeg is decoded once for its overview, previews and run
        self._decodes = DecodeCache()
        sweep_stale(prefix=PREVIEW_PREFIX)  # preview clips of a session that was killed
        self._current_id: int | None = None
        self._preview: Preview | None = None
        self._tasks: list[Any] = []
        self.last_jobs: list[Job] = []
        self._closing = False
        self._setup_logging()
        self._build_ui(backend)
        self._build_actions()
        self._connect_worker()
        self._restore_state()
        self._update_actions()
        if probe_gpu:
            QTimer.singleShot(500, self._probe_gpu)
        log.info("Audio Restorer %s ready", __version__)

    # ================================================================ construction
    def _setup_logging(self) -> None:
        self.log_handler = QtLogHandler()
        logger = logging.getLogger("audio_restorer")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self.log_handler)
        self.file_handler: logging.Handler | None = None
        try:
            path = debug_log_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file_handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=2_000_000, backupCount=2, encoding="utf-8"
            )
            self.file_handler.setLevel(logging.DEBUG)
            self.file_handler.setFormatter(
                logging.Formatter("%(asctime)s %(threadName)s %(levelname)s %(name)s: %(message)s")
            )
            logger.addHandler(self.file_handler)
        except OSError as exc:
            log.warning("no debug log file: %s", exc)

    def _build_ui(self, backend: Backend | None) -> None:
        style = self.style()
        # --- queue
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("File queue")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(3, 190)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._queue_menu)
        self.table.selectionModel().currentRowChanged.connect(self._row_selected)
        self.empty_hint = QLabel(
            "Drop audio files or folders here, or use Open (Ctrl+O).\n"
            f"Reads {', '.join(sorted({e.lstrip('.') for e in READ_EXTENSIONS}))}."
        )
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setEnabled(False)
        queue_box = QWidget()
        ql = QVBoxLayout(queue_box)
        ql.setContentsMargins(0, 0, 0, 0)
        ql.addWidget(self.table)
        ql.addWidget(self.empty_hint)

        # --- views and player
        self.views = AudioViews()
        self.views.selectionChanged.connect(self._selection_changed)
        self.backend = backend if backend is not None else QtBackend(self)
        if isinstance(self.backend, QtBackend):
            self.backend.error.connect(self._playback_error)
            self.backend.stateChanged.connect(self._play_state)
        self.player = ABPlayer(self.backend, self)
        self.player.modeChanged.connect(self._mode_changed)
        self.player.sourcesChanged.connect(self._update_actions)
        player_bar = self._build_player_bar(style)
        view_box = QWidget()
        vl = QVBoxLayout(view_box)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.setSpacing(4)
        vl.addWidget(self.views, 1)
        vl.addWidget(player_bar)

        self.left = QSplitter(Qt.Orientation.Vertical)
        self.left.setChildrenCollapsible(False)
        self.left.addWidget(queue_box)
        self.left.addWidget(view_box)
        self.left.setStretchFactor(0, 1)
        self.left.setStretchFactor(1, 3)

        # --- right side
        self.chain_editor = ChainEditor()
        self.chain_editor.chainChanged.connect(self._chain_changed)
        self.export_panel = ExportPanel(self.settings)
        self.device_panel = DevicePanel(self.settings)
        self.stems_panel = StemsPanel(self.chain_editor)
        if self.stems_panel.available:
            self.stems_panel.modelStatusChanged.connect(self.device_panel.show_model_status)
            self.device_panel.modelsChanged.connect(self.stems_panel.refresh)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Settings tabs")
        chain_page = QWidget()
        cl = QVBoxLayout(chain_page)
        cl.setContentsMargins(8, 8, 8, 8)
        cl.addWidget(self.chain_editor)
        self.tabs.addTab(chain_page, "Chain")
        self.tabs.addTab(self.export_panel, "Export")
        self.tabs.addTab(self.device_panel, "Device")
        stems_index = self.tabs.addTab(self.stems_panel, "Stems")
        if not self.stems_panel.available:
            self.tabs.setTabToolTip(stems_index, "Separation is not installed in this build yet")
        self.tabs.setMinimumWidth(340)

        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.setChildrenCollapsible(False)
        self.main_split.addWidget(self.left)
        self.main_split.addWidget(self.tabs)
        self.main_split.setStretchFactor(0, 3)
        self.main_split.setStretchFactor(1, 1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.addWidget(self.main_split)
        self.setCentralWidget(central)

        # --- log dock
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setAccessibleName("Log")
        self.log_handler.emitter.line.connect(self._append_log)
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("log_dock")
        self.log_dock.setWidget(self.log_view)
        self.log_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetMovable
        )
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.log_dock], [110], Qt.Orientation.Vertical)

        # --- status bar
        self.status_label = QLabel("Ready")
        self.status_label.setAccessibleName("Status")
        self.eta_label = QLabel("")
        self.eta_label.setAccessibleName("Time remaining")
        self.overall = QProgressBar()
        self.overall.setAccessibleName("Overall progress")
        self.overall.setRange(0, 1000)
        self.overall.setFixedWidth(220)
        self.overall.setTextVisible(True)
        self.overall.setFormat("%p%")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.eta_label)
        self.statusBar().addPermanentWidget(self.overall)
        self._update_hint()
        self._fill_removed_combo()

    def _build_player_bar(self, style: QStyle) -> QWidget:
        bar = QWidget()
        bar.setAccessibleName("Player")
        row = QHBoxLayout(bar)
        row.setContentsMargins(4, 0, 4, 0)
        self.play_button = QToolButton()
        self.play_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.setAccessibleName("Play or pause")
        self.play_button.clicked.connect(self.player.toggle_play)
        self.stop_button = QToolButton()
        self.stop_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.setToolTip("Stop")
        self.stop_button.setAccessibleName("Stop playback")
        self.stop_button.clicked.connect(self.player.stop)
        row.addWidget(self.play_button)
        row.addWidget(self.stop_button)
        row.addSpacing(8)
        self.ab_group = QButtonGroup(self)
        self.a_button = QToolButton()
        self.a_button.setText("A  Original")
        self.b_button = QToolButton()
        self.b_button.setText("B  Restored")
        for button, mode in ((self.a_button, ORIGINAL), (self.b_button, RESTORED)):
            button.setCheckable(True)
            button.setAccessibleName(f"Listen to the {mode} version")
            button.setToolTip(f"Listen to the {mode} version (T toggles A/B)")
            button.clicked.connect(lambda _=False, m=mode: self.player.switch(m))
            self.ab_group.addButton(button)
            row.addWidget(button)
        self.a_button.setChecked(True)
        row.addSpacing(8)
        row.addWidget(QLabel("Removed only:"))
        self.removed_combo = QComboBox()
        self.removed_combo.setAccessibleName("Listen to what a stage removed")
        self.removed_combo.setToolTip(
            "Hear only what a stage took away (clicks, noise): for stages that offer it"
        )
        self.removed_combo.activated.connect(self._removed_chosen)
        row.addWidget(self.removed_combo)
        row.addStretch(1)
        self.preview_button = QToolButton()
        self.preview_button.setText("Preview")
        self.preview_button.setIcon(
            style.standardIcon(QStyle.StandardPixmap.SP_FileDialogContentsView)
        )
        self.preview_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.preview_button.setAccessibleName("Preview the selected range")
        self.preview_button.setToolTip(
            "Run the chain on the selected range (or the first "
            f"{PREVIEW_DEFAULT_S:g} s) for the After view and B playback.\n"
            "Stages that analyse the whole file analyse only this range in a preview."
        )
        self.preview_button.clicked.connect(self.preview)
        row.addWidget(self.preview_button)
        self.profile_button = QToolButton()
        self.profile_button.setText("Use as noise profile")
        self.profile_button.setAccessibleName("Use the selection as the noise profile")
        self.profile_button.setToolTip(
            "Set the noise-profile range of the stages that learn noise from a passage"
        )
        self.profile_button.clicked.connect(self.use_selection_as_profile)
        row.addWidget(self.profile_button)
        return bar

    def _build_actions(self) -> None:
        style = self.style()
        sp = QStyle.StandardPixmap

        def act(text: str, icon: Any, slot: Callable, key: Any = None, tip: str = "") -> QAction:
            action = QAction(
                style.standardIcon(icon) if icon is not None else QAction().icon(), text, self
            )
            action.triggered.connect(slot)
            if key is not None:
                action.setShortcut(QKeySequence(key))
                action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setToolTip(
                f"{tip or text}" + (f" ({QKeySequence(key).toString()})" if key else "")
            )
            self.addAction(action)
            return action

        self.act_open = act(
            "Open files…", sp.SP_DialogOpenButton, self.open_files, QKeySequence.StandardKey.Open
        )
        self.act_open_folder = act(
            "Open folder…", sp.SP_DirOpenIcon, self.open_folder, "Ctrl+Shift+O"
        )
        self.act_remove = act(
            "Remove",
            sp.SP_TrashIcon,
            self.remove_selected,
            QKeySequence.StandardKey.Delete,
            "Remove the selected files from the queue",
        )
        self.act_up = act("Move up", sp.SP_ArrowUp, lambda: self.move_selected(-1), "Alt+Up")
        self.act_down = act("Move down", sp.SP_ArrowDown, lambda: self.move_selected(1), "Alt+Down")
        self.act_retry = act(
            "Retry",
            sp.SP_BrowserReload,
            self.retry_selected,
            "Ctrl+Shift+R",
            "Queue the selected failed or cancelled files again",
        )
        self.act_clear = act("Clear finished", sp.SP_DialogResetButton, self.model.clear_finished)
        self.act_start = act(
            "Start", sp.SP_MediaSeekForward, self.start, "Ctrl+Return", "Restore every waiting file"
        )
        self.act_cancel = act(
            "Cancel",
            sp.SP_BrowserStop,
            self.cancel,
            "Esc",
            "Cancel the batch (no partial file is left)",
        )
        self.act_preview = act(
            "Preview",
            sp.SP_FileDialogContentsView,
            self.preview,
            "P",
            "Preview the chain on the selected range",
        )
        self.act_play = act(
            "Play / pause", sp.SP_MediaPlay, self.player.toggle_play, Qt.Key.Key_Space
        )
        self.act_ab = act(
            "Toggle A/B",
            sp.SP_BrowserReload,
            self.player.toggle_ab,
            "T",
            "Switch between original and restored at the same position",
        )
        self.act_about = act("About Audio Restorer", sp.SP_MessageBoxInformation, self.about)
        self.act_quit = act("Quit", None, self.close, QKeySequence.StandardKey.Quit)
        self.act_log = self.log_dock.toggleViewAction()
        self.act_log.setText("Log panel")
        self.act_log.setShortcut(QKeySequence("Ctrl+L"))

        tb = QToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (self.act_open, self.act_open_folder, self.act_remove, self.act_retry):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.act_start)
        tb.addAction(self.act_cancel)
        self.addToolBar(tb)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for a in (self.act_open, self.act_open_folder):
            file_menu.addAction(a)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        queue_menu = menu.addMenu("&Queue")
        for a in (self.act_remove, self.act_up, self.act_down, self.act_retry, self.act_clear):
            queue_menu.addAction(a)
        queue_menu.addSeparator()
        queue_menu.addAction(self.act_start)
        queue_menu.addAction(self.act_cancel)
        play_menu = menu.addMenu("&Playback")
        for a in (self.act_play, self.act_ab, self.act_preview):
            play_menu.addAction(a)
        view_menu = menu.addMenu("&View")
        view_menu.addAction(self.act_log)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.act_about)
        help_menu.addAction("Open debug log folder", self._show_log_path)

    def _connect_worker(self) -> None:
        w = self.runner.worker
        w.fileStarted.connect(self._file_started)
        w.fileProgress.connect(self._file_progress)
        w.fileDone.connect(self._file_done)
        w.fileFailed.connect(self._file_failed)
        w.fileCancelled.connect(self._file_cancelled)
        w.finished.connect(self._batch_finished)

    # ================================================================ persistence
    def _restore_state(self) -> None:
        s = self.settings
        geometry = s.get("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = s.get("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        splitters = s.get("window/splitters")
        if isinstance(splitters, str) and splitters:
            try:
                sizes = json.loads(splitters)
                self.main_split.setSizes(sizes["main"])
                self.left.setSizes(sizes["left"])
            except (ValueError, KeyError, TypeError):
                pass
        else:
            self.main_split.setSizes([880, 400])
            self.left.setSizes([180, 520])
        preset = s.get("chain/preset") or None
        custom = s.get("chain/custom") or ""
        if custom:
            try:
                chain = Chain.from_list(json.loads(custom))
                chain.validate()
                self.chain_editor.preset_name = preset
                self.chain_editor.set_chain(chain, modified=True)
                self.chain_editor._select_combo(preset)
                return
            except (ValueError, AudioRestorerError) as exc:
                log.warning("the saved chain could not be restored: %s", exc)
        if preset and preset in self.chain_editor.preset_names():
            self.chain_editor.load_preset(preset)
        elif "none" in self.chain_editor.preset_names():
            self.chain_editor.load_preset("none")

    def save_state(self) -> None:
        s = self.settings
        s.set("window/geometry", self.saveGeometry())
        s.set("window/state", self.saveState())
        s.set(
            "window/splitters",
            json.dumps({"main": self.main_split.sizes(), "left": self.left.sizes()}),
        )
        s.set("chain/preset", self.chain_editor.preset_name or "")
        editor = self.chain_editor
        s.set("chain/custom", json.dumps(editor.chain.to_list()) if editor.modified else "")
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.running:
            answer = QMessageBox.question(self, "Quit", "A restore is running. Cancel it and quit?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self._closing = True
        self.save_state()
        self.player.stop()
        self.runner.shutdown()
        self._decodes.close()
        self.player.set_sources({})
        self._drop_preview()
        logger = logging.getLogger("audio_restorer")
        logger.removeHandler(self.log_handler)
        if self.file_handler is not None:
            logger.removeHandler(self.file_handler)
            self.file_handler.close()
        super().closeEvent(event)

    # ================================================================ files
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self.add_mime(event.mimeData()):
            event.acceptProposedAction()

    def add_mime(self, mime: QMimeData) -> int:
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        return len(self.add_paths(paths))

    def add_paths(self, paths: list[str] | list[Path]) -> list[QueueItem]:
        new = self.model.add_paths(paths)
        for item in new:
            if item.status is Status.FAILED:
                log.error("cannot queue %s", item.error)
        if new:
            log.info("queued %d file(s)", len(new))
            if self.table.currentIndex().row() < 0:
                self.table.selectRow(self.model.row_of(new[0].id))
        self._update_hint()
        self._update_actions()
        return new

    def open_files(self) -> None:
        exts = " ".join(f"*{e}" for e in sorted(READ_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open audio files", self.settings.get("files/last_folder"), f"Audio ({exts})"
        )
        if files:
            self.settings.set("files/last_folder", str(Path(files[0]).parent))
            self.add_paths(files)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a folder (searched recursively)", self.settings.get("files/last_folder")
        )
        if folder:
            self.settings.set("files/last_folder", folder)
            self.add_paths([folder])

    def selected_rows(self) -> list[int]:
        return sorted({i.row() for i in self.table.selectionModel().selectedRows()})

    def remove_selected(self) -> None:
        rows = self.selected_rows()
        for row in rows:
            self._decodes.discard(self.model.items[row].path)
        self.model.remove_rows(rows)
        self._update_hint()
        self._update_actions()

    def move_selected(self, delta: int) -> None:
        rows = self.selected_rows()
        if len(rows) == 1:
            self.table.selectRow(self.model.move_row(rows[0], delta))

    def retry_selected(self) -> None:
        self.model.retry(self.selected_rows())
        self._update_actions()

    def _queue_menu(self, pos: Any) -> None:
        menu = QMenu(self)
        for a in (self.act_remove, self.act_up, self.act_down, self.act_retry, self.act_clear):
            menu.addAction(a)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def _update_hint(self) -> None:
        empty = not self.model.items
        self.empty_hint.setVisible(empty)
        self.table.setVisible(not empty)

    # ================================================================ selection, views
    def current_item(self) -> QueueItem | None:
        return self.model.item(self._current_id) if self._current_id is not None else None

    def _row_selected(self, current: Any, _previous: Any = None) -> None:
        row = current.row()
        item = self.model.items[row] if 0 <= row < len(self.model.items) else None
        self._current_id = item.id if item else None
        self.player.set_sources({})
        self._drop_preview()
        if item is None or item.info is None:
            self.views.show_before(None)
            self._update_actions()
            return
        self.views.show_before(None, f"{item.path.name} — loading…")
        self._load_overview(item.path, lambda ov, it=item: self._show_item(it, ov))
        self._set_default_sources(item)
        self._update_actions()

    def _load_overview(self, path: Path, then: Callable[[Overview], None]) -> None:
        cached = self._overviews.get(path)
        if cached is not None:
            then(cached)
            return

        def done(overview: Overview) -> None:
            if len(self._overviews) > 16:
                self._overviews.pop(next(iter(self._overviews)))
            self._overviews[path] = overview
            then(overview)

        def failed(reason: str) -> None:
            log.error("cannot show %s: %s", path.name, reason)

        load = lambda: load_overview(path, decode_cache=self._decodes)  # noqa: E731
        self._tasks.append(self._submit(load, done, failed))
        self._tasks = self._tasks[-8:]

    def _show_item(self, item: QueueItem, overview: Overview) -> None:
        if item.id != self._current_id:
            return
        info = item.info
        title = item.path.name
        if info is not None:
            title += (
                f"  ·  {format_duration(info.duration_s)}  ·  {info.rate} Hz, {info.channels} ch"
            )
        self.views.show_before(overview, title)
        self._show_result(item)

    def _show_result(self, item: QueueItem) -> None:
        if item.status is Status.DONE and item.output is not None and item.output.exists():
            out = item.output
            self._load_overview(
                out,
                lambda ov, i=item.id: self.views.show_after(ov) if i == self._current_id else None,
            )

    def _set_default_sources(self, item: QueueItem) -> None:
        sources = {ORIGINAL: item.path}
        if item.status is Status.DONE and item.output is not None and item.output.exists():
            sources[RESTORED] = item.output
        self.player.set_sources(sources)
        self._fill_removed_combo()

    def _selection_changed(self, start: float, end: float) -> None:
        self._update_actions()

    # ================================================================ preview and playback
    def preview(self) -> None:
        item = self.current_item()
        if item is None or item.info is None:
            return
        sel = self.views.selection()
        start, end = sel if sel else (0.0, min(item.info.duration_s, PREVIEW_DEFAULT_S))
        chain = self.chain_editor.current_chain()
        removed = [
            c.stage
            for c in chain.stages
            if c.enabled and getattr(get_stage_class(c.stage), "offers_removed", False)
        ]
        self.status_label.setText(f"Previewing {item.path.name} {start:.1f}–{end:.1f} s…")
        self.preview_button.setEnabled(False)
        item_id = item.id

        def done(preview: Preview) -> None:
            self.preview_button.setEnabled(True)
            self.status_label.setText("Preview ready: B plays the restored range")
            if item_id != self._current_id or self._closing:
                shutil.rmtree(preview.folder, ignore_errors=True)
                return
            self.views.show_after(preview.after, preview.start_s)
            self.player.set_sources(preview.clips, preview.start_s)
            self._drop_preview()  # the player has let go of the last clips
            self._preview = preview
            self._fill_removed_combo()

        def failed(reason: str) -> None:
            self.preview_button.setEnabled(True)
            self.status_label.setText("Preview failed")
            log.error("preview failed: %s", reason)

        self._tasks.append(
            self._submit(
                lambda: run_preview(
                    item.path, start, end, chain, removed, decode_cache=self._decodes
                ),
                done,
                failed,
            )
        )

    def _drop_preview(self) -> None:
        """Remove the current preview's clips (each preview writes a few WAV files)."""
        if self._preview is not None:
            shutil.rmtree(self._preview.folder, ignore_errors=True)
            self._preview = None

    def _fill_removed_combo(self) -> None:
        self.removed_combo.clear()
        offered = [k for k in self.player.sources if k.startswith("removed:")]
        chain_offers = [
            c.stage
            for c in self.chain_editor.chain.stages
            if c.enabled and getattr(get_stage_class(c.stage), "offers_removed", False)
        ]
        if offered:
            self.removed_combo.addItem("—", None)
            for key in offered:
                stage = key.split(":", 1)[1]
                self.removed_combo.addItem(get_stage_class(stage).title, key)
            self.removed_combo.setEnabled(True)
        else:
            self.removed_combo.addItem(
                "preview first" if chain_offers else "no stage offers it", None
            )
            self.removed_combo.setEnabled(False)

    def _removed_chosen(self, index: int) -> None:
        key = self.removed_combo.itemData(index)
        self.player.switch(key if key else ORIGINAL)

    def _mode_changed(self, mode: str) -> None:
        self.a_button.setChecked(mode == ORIGINAL)
        self.b_button.setChecked(mode == RESTORED)
        if not mode.startswith("removed:"):
            self.removed_combo.setCurrentIndex(0)

    def _play_state(self, playing: bool) -> None:
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.play_button.setIcon(self.style().standardIcon(icon))

    def _playback_error(self, message: str) -> None:
        log.error("playback: %s", message)
        self.status_label.setText(f"Playback unavailable: {message}")

    def use_selection_as_profile(self) -> None:
        sel = self.views.selection()
        if sel is None:
            return
        editor = self.chain_editor
        for config in editor.chain.stages:
            names = {i.name for i in get_stage_class(config.stage).Params.infos()}
            if set(PROFILE_PARAMS) <= names:
                editor.set_param(config.stage, PROFILE_PARAMS[0], round(sel[0], 3))
                editor.set_param(config.stage, PROFILE_PARAMS[1], round(sel[1], 3))
                log.info("%s noise profile: %.2f–%.2f s", config.stage, *sel)
        editor._rebuild_list(select=max(editor.stage_list.currentRow(), 0))

    def _profile_stages(self) -> list[str]:
        out = []
        for config in self.chain_editor.chain.stages:
            names = {i.name for i in get_stage_class(config.stage).Params.infos()}
            if config.enabled and set(PROFILE_PARAMS) <= names:
                out.append(config.stage)
        return out

    # ================================================================ run
    def _chain_changed(self) -> None:
        self._fill_removed_combo()
        self._update_actions()

    def build_jobs(self) -> list[Job]:
        """Jobs for every waiting file; files whose output path is invalid fail at once."""
        chain = self.chain_editor.current_chain()
        preset = self.chain_editor.preset_name if not self.chain_editor.modified else None
        options = self.export_panel.options(self.device_panel.value(), preset)
        jobs = []
        taken: set[Path] = set()
        for item in self.model.waiting():
            try:
                dst = self.export_panel.output_path(item.path, preset)
                if dst in taken:
                    dst = dst.with_name(f"{dst.stem} ({item.id}){dst.suffix}")
            except AudioRestorerError as exc:
                self.model.update(item.id, status=Status.FAILED, error=str(exc))
                continue
            taken.add(dst)
            opts = type(options)(**{**options.__dict__, "block_frames": GUI_BLOCK_FRAMES})
            jobs.append(Job(item.id, item.path, dst, chain.copy(), opts, self._decodes))
        return jobs

    def start(self) -> None:
        if self.running:
            return
        try:
            self.chain_editor.chain.validate()
        except AudioRestorerError as exc:
            QMessageBox.warning(self, "Chain", str(exc))
            return
        jobs = self.build_jobs()
        if not jobs:
            self.status_label.setText("Nothing to do: no waiting files")
            return
        self.last_jobs = jobs
        self.running, self.cancelling = True, False
        self._run_ids = [j.item_id for j in jobs]
        self._fractions = dict.fromkeys(self._run_ids, 0.0)
        self._run_started = time.monotonic()
        self.overall.setValue(0)
        self.status_label.setText(f"Restoring {len(jobs)} file(s)…")
        log.info("starting a batch of %d file(s)", len(jobs))
        self.runner.start(jobs)
        self._update_actions()

    def cancel(self) -> None:
        if not self.running:
            return
        self.cancelling = True
        self.runner.cancel()
        self.status_label.setText("Cancelling…")
        self._update_actions()

    def _file_started(self, item_id: int) -> None:
        self.model.update(item_id, status=Status.PROCESSING, progress=0.0, error="")

    def _file_progress(self, item_id: int, fraction: float, message: str) -> None:
        self.model.update(item_id, progress=fraction, message=message)
        self._fractions[item_id] = fraction
        self.status_label.setText(message)
        self._update_overall()

    def _file_done(self, item_id: int, output: str, result: Any) -> None:
        # what the automatic stages decided, and any warning: the status cell's tooltip
        lines = [
            f"{f['stage']}: {f['summary']}"
            for f in getattr(result, "findings", [])
            if "summary" in f
        ]
        lines += [f"warning: {w}" for w in getattr(result, "warnings", [])]
        self.model.update(
            item_id,
            status=Status.DONE,
            progress=1.0,
            output=Path(output),
            message="\n".join(lines),
        )
        self._fractions[item_id] = 1.0
        self._update_overall()
        item = self.model.item(item_id)
        if item is not None and item_id == self._current_id:
            self._set_default_sources(item)
            self._show_result(item)

    def _file_failed(self, item_id: int, reason: str) -> None:
        self.model.update(item_id, status=Status.FAILED, error=reason)
        self._fractions[item_id] = 1.0
        self._update_overall()

    def _file_cancelled(self, item_id: int) -> None:
        item = self.model.item(item_id)
        if item is not None and item.status is Status.PROCESSING:
            self.model.update(item_id, status=Status.CANCELLED, progress=0.0)

    def _batch_finished(self) -> None:
        self.running = False
        items = [self.model.item(i) for i in self._run_ids]
        counts = {s: sum(1 for it in items if it and it.status is s) for s in Status}
        text = f"Finished: {counts[Status.DONE]} done, {counts[Status.FAILED]} failed"
        if self.cancelling or counts[Status.CANCELLED]:
            text += f", {counts[Status.CANCELLED]} cancelled"
        self.cancelling = False
        self.status_label.setText(text)
        self.eta_label.setText("")
        self.overall.setValue(1000 if not counts[Status.CANCELLED] else self.overall.value())
        log.info(text)
        self._update_actions()

    def _update_overall(self) -> None:
        weights = {}
        for item_id in self._run_ids:
            item = self.model.item(item_id)
            weights[item_id] = item.info.duration_s if item and item.info else 1.0
        total = sum(weights.values()) or 1.0
        done = sum(weights[i] * self._fractions.get(i, 0.0) for i in self._run_ids) / total
        self.overall.setValue(int(done * 1000))
        elapsed = time.monotonic() - self._run_started
        if 0.02 < done < 1.0 and elapsed > 1.0:
            self.eta_label.setText(f"{format_duration(elapsed * (1 - done) / done)} left")
        else:
            self.eta_label.setText("")

    # ================================================================ misc
    def _update_actions(self) -> None:
        rows = self.selected_rows() if hasattr(self, "table") else []
        items = [self.model.items[r] for r in rows if r < len(self.model.items)]
        has_waiting = bool(self.model.waiting())
        self.act_start.setEnabled(not self.running and has_waiting)
        self.act_cancel.setEnabled(self.running and not self.cancelling)
        self.act_remove.setEnabled(
            bool(items) and all(i.status is not Status.PROCESSING for i in items)
        )
        self.act_retry.setEnabled(
            any(i.status in (Status.FAILED, Status.CANCELLED, Status.DONE) for i in items)
        )
        self.act_up.setEnabled(len(items) == 1)
        self.act_down.setEnabled(len(items) == 1)
        item = self.current_item()
        can_preview = item is not None and item.info is not None
        self.preview_button.setEnabled(can_preview)
        self.act_preview.setEnabled(can_preview)
        has_sources = bool(self.player.sources)
        self.play_button.setEnabled(has_sources)
        self.stop_button.setEnabled(has_sources)
        self.a_button.setEnabled(self.player.available(ORIGINAL))
        self.b_button.setEnabled(self.player.available(RESTORED))
        profile = bool(self._profile_stages()) and self.views.selection() is not None
        self.profile_button.setEnabled(profile)
        self.profile_button.setVisible(bool(self._profile_stages()))

    def _append_log(self, line: str, level: int) -> None:
        if level >= logging.ERROR:
            line = f"⚠ {line}"
        self.log_view.appendPlainText(line)

    def _probe_gpu(self) -> None:
        self._tasks.append(
            self._submit(
                gpu_available,
                self.device_panel.gpu_checked,
                lambda _r: self.device_panel.gpu_checked(False),
            )
        )

    def _submit(self, fn: Callable[[], Any], done: Callable, failed: Callable) -> Any:
        """Run ``fn`` on the pool; its callbacks are dropped once the window is closing."""

        def guard(callback: Callable) -> Callable:
            def call(value: Any) -> None:
                if not self._closing:
                    callback(value)

            return call

        return submit(fn, guard(done), guard(failed))

    def _show_log_path(self) -> None:
        QMessageBox.information(
            self, "Debug log", f"The debug log is written to\n{debug_log_path()}"
        )

    def about_text(self) -> str:
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        rows = [
            ("Audio Restorer", __version__, "MIT"),
            ("Python", platform.python_version(), "PSF"),
            ("Qt", qVersion(), "LGPL-3.0"),
            ("PySide6", pyside_version, "LGPL-3.0"),
            ("pyqtgraph", package_version("pyqtgraph") or "?", "MIT"),
            ("NumPy", package_version("numpy") or "?", "BSD-3-Clause"),
            ("SciPy", package_version("scipy") or "?", "BSD-3-Clause"),
            ("soundfile (libsndfile)", package_version("soundfile") or "?", "BSD-3 / LGPL-2.1"),
            ("soxr", package_version("soxr") or "?", "LGPL-2.1"),
        ]
        torch = package_version("torch")
        if torch:
            rows.append(("PyTorch", torch, "BSD-3-Clause"))
        table = "".join(
            f"<tr><td>{n}</td><td>&nbsp;{v}&nbsp;</td><td>{lic}</td></tr>" for n, v, lic in rows
        )
        return (
            f"<h3>Audio Restorer {__version__}</h3>"
            "<p>Offline restoration of historical and degraded recordings: 78s, cylinders, "
            "tape, vinyl, MP3. Sources are never modified; every output can carry a "
            "provenance report.</p>"
            f"<table>{table}</table>"
        )

    def about(self) -> None:
        QMessageBox.about(self, "About Audio Restorer", self.about_text())
