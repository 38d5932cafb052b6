"""The file queue: which files to restore, their properties, status and output path.

A table model (name, duration, format, status, output) over :class:`QueueItem` records. Items
keep a stable integer id so the worker's signals find their row even after the user reorders
or removes rows while a batch runs.
"""

# ruff: noqa: N802  (Qt's camelCase signal and override names)

from __future__ import annotations

import enum
import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from audio_restorer.audio.io import READ_EXTENSIONS, AudioInfo, probe
from audio_restorer.errors import AudioRestorerError


class Status(enum.Enum):
    WAITING = "waiting"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class QueueItem:
    id: int
    path: Path
    info: AudioInfo | None = None
    status: Status = Status.WAITING
    progress: float = 0.0
    message: str = ""
    output: Path | None = None
    error: str = ""

    @property
    def status_text(self) -> str:
        if self.status is Status.PROCESSING:
            return f"processing {self.progress * 100:.0f}%"
        if self.status is Status.FAILED:
            return f"failed: {self.reason}"
        return self.status.value

    @property
    def output_text(self) -> str:
        """The output path, relative to the source's folder when it lies inside it."""
        if self.output is None:
            return ""
        try:
            return str(self.output.relative_to(self.path.parent))
        except ValueError:
            return str(self.output)

    @property
    def reason(self) -> str:
        """The error without the file's path in front (the row already names the file)."""
        prefix = f"{self.path}: "
        return self.error[len(prefix) :] if self.error.startswith(prefix) else self.error


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    h, rest = divmod(round(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def is_audio_path(path: Path) -> bool:
    return path.suffix.lower() in READ_EXTENSIONS and not path.name.startswith(".")


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, and audio files found recursively in folders (sorted, hidden skipped)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(root) / f for f in sorted(files) if is_audio_path(Path(f))]
        elif path.is_file():
            found.append(path)
    return found


COLUMNS = ("Name", "Duration", "Format", "Status", "Output")
_Index = QModelIndex | QPersistentModelIndex


class QueueModel(QAbstractTableModel):
    """Rows of :class:`QueueItem`; edit only through the methods below."""

    _ids = itertools.count(1)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.items: list[QueueItem] = []

    # ------------------------------------------------------------ Qt model API
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = 0) -> Any:
        if not index.isValid():
            return None
        item = self.items[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return item.path.name
            if col == 1:
                return format_duration(item.info.duration_s) if item.info else "–"
            if col == 2:
                if not item.info:
                    return "–"
                ch = {1: "mono", 2: "stereo"}.get(item.info.channels, f"{item.info.channels} ch")
                return f"{item.info.rate / 1000:g} kHz {ch}"
            if col == 3:
                return item.status_text
            if col == 4:
                return item.output_text
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 3 and item.status is Status.FAILED:
                return item.error
            if col == 3 and item.message:
                return item.message
            return str(item.output if col == 4 and item.output else item.path)
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            colors = {Status.FAILED: "#d9534f", Status.DONE: "#3c9a5f"}
            if item.status in colors:
                return QBrush(QColor(colors[item.status]))
        if role == Qt.ItemDataRole.UserRole:
            return item.id
        return None

    # ------------------------------------------------------------ queue operations
    def add_paths(self, paths: Iterable[str | os.PathLike[str]]) -> list[QueueItem]:
        """Queue the audio files among ``paths`` (folders recursively); skip duplicates.

        Unreadable files are queued as failed with the reason, so the user sees why.
        """
        known = {item.path.resolve() for item in self.items}
        new: list[QueueItem] = []
        for path in expand_paths(paths):
            if path.resolve() in known:
                continue
            known.add(path.resolve())
            item = QueueItem(next(self._ids), path)
            try:
                item.info = probe(path)
            except AudioRestorerError as exc:
                item.status, item.error = Status.FAILED, str(exc)
            new.append(item)
        if new:
            first = len(self.items)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self.items += new
            self.endInsertRows()
        return new

    def row_of(self, item_id: int) -> int:
        for row, item in enumerate(self.items):
            if item.id == item_id:
                return row
        return -1

    def item(self, item_id: int) -> QueueItem | None:
        row = self.row_of(item_id)
        return self.items[row] if row >= 0 else None

    def update(self, item_id: int, **changes: Any) -> None:
        row = self.row_of(item_id)
        if row < 0:
            return
        item = self.items[row]
        for key, value in changes.items():
            setattr(item, key, value)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def remove_rows(self, rows: Iterable[int]) -> None:
        for row in sorted(set(rows), reverse=True):
            if 0 <= row < len(self.items) and self.items[row].status is not Status.PROCESSING:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.items[row]
                self.endRemoveRows()

    def move_row(self, row: int, delta: int) -> int:
        """Move a row up (-1) or down (+1); returns its new row."""
        target = row + delta
        if not (0 <= row < len(self.items) and 0 <= target < len(self.items)):
            return row
        dest = target + 1 if delta > 0 else target
        self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), dest)
        self.items.insert(target, self.items.pop(row))
        self.endMoveRows()
        return target

    def retry(self, rows: Iterable[int]) -> None:
        """Put failed or cancelled rows back to waiting (re-probing the file)."""
        for row in rows:
            item = self.items[row]
            if item.status in (Status.FAILED, Status.CANCELLED, Status.DONE):
                changes: dict[str, Any] = {"status": Status.WAITING, "progress": 0.0, "error": ""}
                try:
                    changes["info"] = probe(item.path)
                except AudioRestorerError as exc:
                    changes.update(status=Status.FAILED, error=str(exc))
                self.update(item.id, **changes)

    def waiting(self) -> list[QueueItem]:
        return [item for item in self.items if item.status is Status.WAITING]

    def clear_finished(self) -> None:
        self.remove_rows(i for i, it in enumerate(self.items) if it.status is Status.DONE)
