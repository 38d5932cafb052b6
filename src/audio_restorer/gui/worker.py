"""Background work for the GUI: the batch restore worker and short tasks (overviews, previews).

The GUI thread never touches audio. A :class:`BatchWorker` lives on its own ``QThread`` and runs
:func:`~audio_restorer.pipeline.runner.restore_file` for each job in turn; short tasks run on the
global ``QThreadPool``. Results reach the GUI only through queued signals, each with one shape:
a result or an error message. Progress signals are throttled to at most 20 per second.
"""

# ruff: noqa: N815  (Qt's camelCase signal and override names)

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot

from audio_restorer.audio.ffmpeg import DecodeCache
from audio_restorer.audio.io import AudioReader
from audio_restorer.errors import AudioRestorerError, Cancelled
from audio_restorer.gui.overview import Overview, overview_of_array, overview_of_file
from audio_restorer.pipeline.cancel import CancelToken
from audio_restorer.pipeline.chain import Chain
from audio_restorer.pipeline.runner import RestoreOptions, restore_file

log = logging.getLogger("audio_restorer.gui")

#: minimum seconds between two progress signals of one file (20 per second)
PROGRESS_INTERVAL_S = 0.05
#: block size the GUI asks the runner for: small enough that cancel is checked often
GUI_BLOCK_FRAMES = 1 << 14


@dataclass
class Job:
    """One file to restore: what the worker receives (a private copy of the chain)."""

    item_id: int
    src: Path
    dst: Path
    chain: Chain
    options: RestoreOptions = field(default_factory=RestoreOptions)
    #: shares an ffmpeg decode with the overview and previews of the same file
    decode_cache: DecodeCache | None = None


def describe_error(exc: BaseException) -> str:
    """A one-line reason for the queue: our own errors verbatim, bugs with their type."""
    if isinstance(exc, AudioRestorerError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


class BatchWorker(QObject):
    """Runs jobs one after another; lives on a worker thread (see :class:`BatchRunner`)."""

    fileStarted = Signal(int)
    fileProgress = Signal(int, float, str)
    fileDone = Signal(int, str, object)  # item id, output path, RestoreResult
    fileFailed = Signal(int, str)
    fileCancelled = Signal(int)
    finished = Signal()

    def __init__(self, restore: Callable[..., Any] = restore_file) -> None:
        super().__init__()
        self._restore = restore
        self._lock = threading.Lock()
        self._token: CancelToken | None = None
        self._stop = False

    def cancel(self) -> None:
        """Stop the current file (at its next block) and skip the rest; thread-safe."""
        with self._lock:
            self._stop = True
            if self._token is not None:
                self._token.cancel()

    @Slot(object)
    def run(self, jobs: list[Job]) -> None:
        for job in jobs:
            with self._lock:
                if self._stop:
                    self.fileCancelled.emit(job.item_id)
                    continue
                self._token = CancelToken()
                token = self._token
            self._run_one(job, token)
        with self._lock:
            self._token = None
        self.finished.emit()

    def _run_one(self, job: Job, token: CancelToken) -> None:
        self.fileStarted.emit(job.item_id)
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if fraction >= 1.0 or now - last[0] >= PROGRESS_INTERVAL_S:
                last[0] = now
                self.fileProgress.emit(job.item_id, float(fraction), message)

        log.info("restoring %s -> %s", job.src, job.dst)
        try:
            job.dst.parent.mkdir(parents=True, exist_ok=True)
            extra = {} if job.decode_cache is None else {"decode_cache": job.decode_cache}
            result = self._restore(
                job.src, job.dst, job.chain, job.options, progress=progress, cancel=token, **extra
            )
        except Cancelled:
            log.info("cancelled %s", job.src.name)
            self.fileCancelled.emit(job.item_id)
        except Exception as exc:
            reason = describe_error(exc)
            if not isinstance(exc, AudioRestorerError):
                log.debug("traceback:\n%s", traceback.format_exc())
            log.error("failed %s: %s", job.src.name, reason)
            self.fileFailed.emit(job.item_id, reason)
        else:
            for found in result.findings:
                if "summary" in found:
                    log.info("%s: %s: %s", job.src.name, found["stage"], found["summary"])
            for warning in result.warnings:
                log.warning("%s: %s", job.src.name, warning)
            log.info("done %s", job.dst)
            self.fileDone.emit(job.item_id, str(result.output), result)


class BatchRunner(QObject):
    """Owns the worker thread of one batch; ``start(jobs)`` returns at once."""

    _go = Signal(object)

    def __init__(self, restore: Callable[..., Any] = restore_file, parent: QObject | None = None):
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("restore-worker")
        self.worker = BatchWorker(restore)
        self.worker.moveToThread(self.thread)
        self._go.connect(self.worker.run)
        self.thread.start()

    def start(self, jobs: list[Job]) -> None:
        with self.worker._lock:
            self.worker._stop = False
        self._go.emit(jobs)

    def cancel(self) -> None:
        self.worker.cancel()

    def shutdown(self) -> None:
        self.worker.cancel()
        self.thread.quit()
        self.thread.wait(5000)


class _TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str)


class Task(QRunnable):
    """Run ``fn()`` on the thread pool; ``signals.done(result)`` or ``signals.failed(reason)``."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _TaskSignals()
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn()
        except InterruptedError:
            return
        except Exception as exc:
            if not isinstance(exc, AudioRestorerError):
                log.debug("task traceback:\n%s", traceback.format_exc())
            self._emit(self.signals.failed, describe_error(exc))
            return
        self._emit(self.signals.done, result)

    @staticmethod
    def _emit(signal: Any, value: Any) -> None:
        """Deliver a result; when the window closed meanwhile its receiver is gone: drop it."""
        try:
            signal.emit(value)
        except RuntimeError as exc:  # "Signal source has been deleted" after the app quit
            log.debug("result dropped: %s", exc)


def submit(fn: Callable[[], Any], on_done: Callable, on_failed: Callable) -> Task:
    """Start ``fn`` on the global pool; callbacks run on the GUI thread via queued signals."""
    task = Task(fn)
    task.signals.done.connect(on_done)
    task.signals.failed.connect(on_failed)
    QThreadPool.globalInstance().start(task)
    return task


# ---------------------------------------------------------------- previews


@dataclass
class Preview:
    """A chain run on a range of one file, ready to show and play.

    ``clips`` maps a listening mode (``original``, ``restored``, ``removed:<stage>``) to a WAV
    file holding that version of the range.
    """

    src: Path
    start_s: float
    rate: int
    before: Overview
    after: Overview
    clips: dict[str, Path]
    folder: Path


#: temporary folders of preview clips: ``<prefix><pid>-...`` (see ffmpeg.sweep_stale)
PREVIEW_PREFIX = "audio-restorer-preview-"


def run_preview(
    src: Path,
    start_s: float,
    end_s: float,
    chain: Chain,
    removed_stages: list[str] | None = None,
    folder: Path | None = None,
    decode_cache: DecodeCache | None = None,
) -> Preview:
    """Run the enabled stages of ``chain`` on ``[start_s, end_s)`` of ``src`` (worker side).

    Whole-file analysis stages then analyse only the range: fine for listening, and said so
    in the GUI's tooltip.
    """
    with AudioReader(src, decode_cache=decode_cache) as reader:
        rate = reader.info.rate
        start = max(0, round(start_s * rate))
        frames = max(1, min(round((end_s - start_s) * rate), reader.info.frames - start))
        audio = reader.read(start, frames)
    stages = chain.build()
    out = audio
    removed: dict[str, np.ndarray] = {}
    wanted = set(removed_stages or [])
    for stage in stages:
        before_stage = out
        out = np.asarray(stage(out, rate), dtype=np.float32)
        if stage.name in wanted and stage.offers_removed and out.shape == before_stage.shape:
            removed[stage.name] = before_stage - out
    folder = folder or Path(tempfile.mkdtemp(prefix=f"{PREVIEW_PREFIX}{os.getpid()}-"))
    clips = {"original": folder / "original.wav", "restored": folder / "restored.wav"}
    sf.write(str(clips["original"]), audio.T, rate, subtype="FLOAT")
    sf.write(str(clips["restored"]), out.T, rate, subtype="FLOAT")
    for name, signal in removed.items():
        clips[f"removed:{name}"] = folder / f"removed-{name}.wav"
        sf.write(str(clips[f"removed:{name}"]), signal.T, rate, subtype="FLOAT")
    return Preview(
        src=src,
        start_s=start / rate,
        rate=rate,
        before=overview_of_array(audio, rate),
        after=overview_of_array(out, rate),
        clips=clips,
        folder=folder,
    )


def load_overview(
    path: Path,
    should_stop: Callable[[], bool] | None = None,
    decode_cache: DecodeCache | None = None,
) -> Overview:
    return overview_of_file(path, should_stop=should_stop, decode_cache=decode_cache)
