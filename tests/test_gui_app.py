"""The desktop application, offscreen: queue, chain editor, worker, cancel, failures, presets."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QAbstractButton, QComboBox

from audio_restorer.audio import ffmpeg
from audio_restorer.gui.main_window import MainWindow
from audio_restorer.gui.queue_model import Status
from audio_restorer.pipeline import presets
from audio_restorer.pipeline.chain import Chain, StageConfig
from audio_restorer.pipeline.runner import restore_file
from gui_support import RATE, run_batch, window_factory, write
from signals import music_like

pytestmark = pytest.mark.gui


def slowed(delay_s: float):
    """restore_file whose progress callback sleeps: makes runs long enough to interact with."""

    def run(*args, progress, cancel, **kwargs):
        def slow(fraction: float, message: str) -> None:
            time.sleep(delay_s)
            progress(fraction, message)

        return restore_file(*args, progress=slow, cancel=cancel, **kwargs)

    return run


@pytest.fixture
def make_window(qtbot, tmp_path):
    return window_factory(qtbot, tmp_path)


def use_chain(window: MainWindow, *configs: StageConfig) -> None:
    window.chain_editor.set_chain(Chain(list(configs)))


# ---------------------------------------------------------------- queue


def test_dropping_files_and_folders_queues_audio_recursively(make_window, tmp_path):
    window = make_window()
    loose = write(tmp_path / "in" / "loose.wav", 2.0, 2)
    write(tmp_path / "in" / "album" / "b.wav", 3.0)
    write(tmp_path / "in" / "album" / "disc2" / "c.flac", 1.0)
    (tmp_path / "in" / "album" / "notes.txt").write_text("not audio")
    mime = QMimeData()
    mime.setUrls(
        [QUrl.fromLocalFile(str(loose)), QUrl.fromLocalFile(str(tmp_path / "in" / "album"))]
    )
    event = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)  # what Qt calls when files are dropped on the window
    assert event.isAccepted()
    model = window.model
    names = [model.index(r, 0).data() for r in range(model.rowCount())]
    assert names == ["loose.wav", "b.wav", "c.flac"]
    assert model.index(0, 1).data() == "0:02"
    assert model.index(0, 2).data() == "22.05 kHz stereo"
    assert model.index(1, 2).data() == "22.05 kHz mono"
    assert all(model.index(r, 3).data() == "waiting" for r in range(3))
    # dropping the same folder again adds nothing
    assert window.add_mime(mime) == 0
    # reorder and remove
    window.table.selectRow(2)
    window.move_selected(-1)
    assert [i.path.name for i in model.items] == ["loose.wav", "c.flac", "b.wav"]
    window.table.selectRow(0)
    window.remove_selected()
    assert [i.path.name for i in model.items] == ["c.flac", "b.wav"]


def test_unreadable_file_is_queued_as_failed_with_its_reason(make_window, tmp_path):
    window = make_window()
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    window.add_paths([bad])
    item = window.model.items[0]
    assert item.status is Status.FAILED
    assert "broken.wav" in item.error
    assert window.model.index(0, 3).data().startswith("failed: ")


# ---------------------------------------------------------------- chain -> worker


def test_changed_parameter_is_in_the_chain_the_worker_receives(make_window, qtbot, tmp_path):
    received: list[Chain] = []

    def recording(src, dst, chain, options, *, progress, cancel, **kwargs):
        received.append(chain)
        return restore_file(src, dst, chain, options, progress=progress, cancel=cancel, **kwargs)

    window = make_window(recording)
    window.chain_editor.load_preset("vinyl")
    window.add_paths([write(tmp_path / "take.wav")])
    editor = window.chain_editor
    editor.stage_list.setCurrentRow(2)  # vinyl: declick, decrackle, eq, ...
    box = editor.form.editors["rumble_hz"].box
    assert box.accessibleName() == "eq.rumble_hz"
    box.setValue(80.0)
    assert editor.modified and "(modified)" in editor.preset_note.text()
    run_batch(qtbot, window)
    assert len(received) == 1
    assert received[0].find("eq").params["rumble_hz"] == 80.0
    # the worker got a private copy: editing now does not change what it ran
    box.setValue(120.0)
    assert received[0].find("eq").params["rumble_hz"] == 80.0
    item = window.model.items[0]
    assert item.status is Status.DONE
    report = json.loads(Path(str(item.output) + ".restoration.json").read_text())
    assert report["chain"][2]["params"]["rumble_hz"] == 80.0


def test_real_restore_completes_while_the_gui_thread_stays_responsive(make_window, qtbot, tmp_path):
    window = make_window(slowed(0.01))
    src = write(tmp_path / "long.wav", 30.0)
    use_chain(
        window,
        StageConfig("rumble", {"cutoff_hz": 40.0}),
        StageConfig("gain", {"mode": "peak", "peak_dbfs": -3.0}),
    )
    window.add_paths([src])
    progress: list[float] = []
    window.runner.worker.fileProgress.connect(lambda _i, f, _m: progress.append(f))
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    run_batch(qtbot, window)
    timer.stop()
    item = window.model.items[0]
    assert item.status is Status.DONE, item.error
    out, rate = sf.read(str(item.output), always_2d=True)
    assert rate == RATE and out.shape[0] == sf.info(str(src)).frames
    assert 20 * np.log10(np.abs(out).max()) == pytest.approx(-3.0, abs=0.1)
    assert window.overall.value() == 1000
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)
    gaps = np.diff(ticks)
    assert len(ticks) > 50, "the run was too short to measure"
    # the GUI thread was not blocked for more than 50 ms while the file was processed; on a
    # loaded 2-core machine the OS scheduler alone can add a rare longer pause, so the bound
    # on the single worst gap is looser (docs/bench/gui.md has the measured numbers)
    assert np.percentile(gaps, 99) < 0.050, f"GUI p99 pause {np.percentile(gaps, 99) * 1e3:.0f} ms"
    assert gaps.max() < 0.150, f"GUI blocked for {gaps.max() * 1000:.0f} ms"


def test_cancel_mid_file_stops_quickly_and_leaves_nothing(make_window, qtbot, tmp_path):
    window = make_window(slowed(0.02))
    files = [write(tmp_path / "a.wav", 30.0), write(tmp_path / "b.wav", 2.0)]
    use_chain(window, StageConfig("rumble"))
    window.add_paths(files)
    cancelled_at: list[float] = []
    window.runner.worker.fileCancelled.connect(lambda _i: cancelled_at.append(time.perf_counter()))
    window.start()
    qtbot.waitUntil(lambda: window.model.items[0].progress > 0.1, timeout=10000)
    assert window.model.items[0].status is Status.PROCESSING
    clicked = time.perf_counter()
    window.act_cancel.trigger()
    qtbot.waitUntil(lambda: not window.running, timeout=5000)
    assert cancelled_at and cancelled_at[0] - clicked < 0.5
    assert window.model.items[0].status is Status.CANCELLED
    assert window.model.items[1].status is Status.WAITING  # never started: still queued
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []  # no partial or hidden file
    # it can be run again afterwards
    window.model.retry([0])
    run_batch(qtbot, window, 20000)
    assert [i.status for i in window.model.items] == [Status.DONE, Status.DONE]


def test_a_failing_file_shows_its_reason_and_the_rest_finish(make_window, qtbot, tmp_path):
    window = make_window()
    bad = tmp_path / "nan.wav"
    audio = music_like(RATE, 2.0, 1)
    audio[0, RATE] = np.nan
    sf.write(str(bad), audio.T, RATE, subtype="FLOAT")
    window.add_paths([write(tmp_path / "one.wav"), bad, write(tmp_path / "three.wav")])
    use_chain(window, StageConfig("gain", {"gain_db": -6.0}))
    run_batch(qtbot, window)
    statuses = [i.status for i in window.model.items]
    assert statuses == [Status.DONE, Status.FAILED, Status.DONE]
    failed = window.model.items[1]
    assert "NaN" in failed.error and "nan.wav" in failed.error
    assert window.model.index(1, 3).data() == f"failed: {failed.reason}"
    assert failed.reason.startswith("contains NaN")
    assert "1 failed" in window.status_label.text()
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".wav") == [
        "one.restored.wav",
        "three.restored.wav",
    ]
    # retry puts it back in the queue
    window.table.selectRow(1)
    window.retry_selected()
    assert window.model.items[1].status is Status.WAITING


def test_existing_output_is_not_replaced_by_default(make_window, qtbot, tmp_path):
    window = make_window()
    src = write(tmp_path / "x.wav")
    existing = tmp_path / "out" / "x.restored.wav"
    existing.parent.mkdir()
    existing.write_bytes(b"keep me")
    window.add_paths([src])
    use_chain(window)
    run_batch(qtbot, window)
    assert existing.read_bytes() == b"keep me"
    assert window.model.items[0].output == tmp_path / "out" / "x.restored (2).wav"


# ---------------------------------------------------------------- presets and settings


def test_preset_save_rename_delete_round_trip(make_window):
    window = make_window()
    editor = window.chain_editor
    editor.load_preset("vinyl")
    editor.stage_list.setCurrentRow(2)
    editor.form.editors["rumble_hz"].box.setValue(42.0)
    editor.save_preset_as("my vinyl")
    assert (presets.user_dir() / "my vinyl.json").exists()
    assert "my vinyl" in editor.preset_names()
    assert editor.preset_combo.currentData() == "my vinyl" and not editor.modified
    editor.load_preset("none")
    assert editor.chain.find("eq") is None
    editor.load_preset("my vinyl")
    assert editor.chain.find("eq").params["rumble_hz"] == 42.0
    editor.rename_preset("my vinyl 2")
    assert "my vinyl 2" in editor.preset_names() and "my vinyl" not in editor.preset_names()
    editor.delete_preset()
    assert "my vinyl 2" not in editor.preset_names()
    assert not (presets.user_dir() / "my vinyl 2.json").exists()


def test_settings_and_edited_chain_persist_across_restarts(make_window, tmp_path):
    window = make_window()
    window.chain_editor.load_preset("vinyl")
    window.chain_editor.stage_list.setCurrentRow(2)
    window.chain_editor.form.editors["rumble_hz"].box.setValue(33.0)
    window.export_panel.format.setCurrentText("flac")
    window.export_panel.bit_depth.setCurrentText("16")
    window.resize(640, 470)
    window.close()
    again = make_window()
    assert again.chain_editor.preset_name == "vinyl"
    assert again.chain_editor.chain.find("eq").params["rumble_hz"] == 33.0
    assert again.export_panel.format.currentText() == "flac"
    assert again.export_panel.bit_depth.currentText() == "16"
    assert (again.size().width(), again.size().height()) == (640, 470)


def test_stage_can_be_disabled_and_reordered(make_window):
    window = make_window()
    use_chain(window, StageConfig("rumble"), StageConfig("gain"))
    editor = window.chain_editor
    editor.set_enabled(0, False)
    assert not editor.current_chain().stages[0].enabled
    editor.stage_list.setCurrentRow(1)
    editor.move_current(-1)
    assert [c.stage for c in editor.current_chain().stages] == ["gain", "rumble"]
    assert [s.name for s in editor.current_chain().build()] == ["gain"]


# ---------------------------------------------------------------- views, preview, playback


def test_selecting_a_file_draws_it_and_preview_fills_after_and_b(make_window, qtbot, tmp_path):
    window = make_window()
    src = write(tmp_path / "p.wav", 4.0)
    use_chain(window, StageConfig("gain", {"gain_db": 6.0}))
    window.add_paths([src])
    qtbot.waitUntil(lambda: window.views.before.overview is not None, timeout=5000)
    assert window.views.before.overview.frames == 4 * RATE
    window.views.set_selection(1.0, 2.0)
    window.preview()
    qtbot.waitUntil(lambda: window._preview is not None, timeout=5000)
    preview = window._preview
    assert preview.start_s == pytest.approx(1.0)
    assert window.views.after.offset_s == pytest.approx(1.0)
    original, _ = sf.read(str(preview.clips["original"]))
    restored, _ = sf.read(str(preview.clips["restored"]))
    assert original.shape[0] == RATE
    np.testing.assert_allclose(restored, original * 10 ** (6 / 20), rtol=1e-5, atol=1e-7)
    assert window.b_button.isEnabled()
    # A/B switch keeps the position and playing state
    backend = window.backend
    window.player.toggle_play()
    backend.position = 640
    window.player.toggle_ab()
    assert backend.source == preview.clips["restored"] and backend.position == 640
    assert backend.playing and window.b_button.isChecked()
    window.player.toggle_ab()
    assert backend.source == preview.clips["original"] and backend.position == 640
    assert window.player.position_s() == pytest.approx(1.64)
    # a new preview replaces the clips of the last one, which are removed; so does closing
    assert preview.folder.is_dir()
    window.preview()
    qtbot.waitUntil(lambda: window._preview is not preview, timeout=5000)
    assert not preview.folder.exists() and window._preview.folder.is_dir()
    last = window._preview.folder
    window.close()
    assert not last.exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not on PATH")
def test_an_m4a_is_decoded_once_for_overview_preview_and_run(
    make_window, qtbot, tmp_path, monkeypatch
):
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    calls = []
    real = ffmpeg.decode

    def decode(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ffmpeg, "decode", decode)
    wav = write(tmp_path / "m.wav", 3.0, channels=2)
    src = tmp_path / "m.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), str(src)], check=True)
    window = make_window()
    use_chain(window, StageConfig("gain", {"gain_db": -3.0}))
    window.add_paths([src])
    qtbot.waitUntil(lambda: window.views.before.overview is not None, timeout=10000)
    window.views.set_selection(0.5, 1.5)
    window.preview()
    qtbot.waitUntil(lambda: window._preview is not None, timeout=10000)
    run_batch(qtbot, window)
    assert window.model.items[0].status is Status.DONE
    assert len(calls) == 1
    folders = list((tmp_path / "tmp").glob("audio-restorer-decode-*"))
    assert len(folders) == 1  # kept for the session ...
    window.remove_selected()  # nothing selected: still kept
    window.table.selectRow(0)
    window.remove_selected()
    assert not window.model.items and not folders[0].exists()  # ... until the file is dropped


def test_about_box_and_accessible_names(make_window):
    window = make_window()
    text = window.about_text()
    for needle in ("Audio Restorer", "PySide6", "LGPL-3.0", "pyqtgraph", "MIT", "NumPy"):
        assert needle in text
    unnamed = [
        w
        for w in window.findChildren(QAbstractButton) + window.findChildren(QComboBox)
        if not (w.accessibleName() or (isinstance(w, QAbstractButton) and w.text()))
        and w.isVisibleTo(window)
        and type(w).__name__ not in ("QToolBarExtension", "QTabBar")
    ]
    assert unnamed == [], [type(w).__name__ for w in unnamed]


def test_what_the_stages_decided_shows_on_the_finished_file(make_window, qtbot, tmp_path):
    window = make_window(restore_file)
    t = np.arange(4 * RATE) / RATE
    hum = 0.02 * np.sin(2 * np.pi * 60.0 * t) + 0.01 * np.sin(2 * np.pi * 120.0 * t)
    src = tmp_path / "hum.wav"
    sf.write(str(src), music_like(RATE, 4.0, channels=1, seed=2)[0] * 0.3 + hum, RATE)
    use_chain(window, StageConfig("dehum", {}))
    window.add_paths([src])
    run_batch(qtbot, window)
    item = window.model.items[0]
    assert item.status is Status.DONE, item.error
    tip = window.model.data(window.model.index(0, 3), Qt.ItemDataRole.ToolTipRole)
    assert "dehum: 60 Hz hum found in the spectrum" in tip
