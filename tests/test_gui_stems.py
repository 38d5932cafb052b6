"""The Stems tab and the models list, offscreen: edits reach the worker's chain, stems are
written, model files in the user folder are listed, imported and verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


from audio_restorer.gui.queue_model import Status
from audio_restorer.models import user_models_dir
from audio_restorer.pipeline.chain import Chain, StageConfig
from audio_restorer.pipeline.runner import restore_file
from audio_restorer.util import sha256_file
from gui_support import run_batch, window_factory, write

pytestmark = pytest.mark.gui


@pytest.fixture
def make_window(qtbot, tmp_path):
    return window_factory(qtbot, tmp_path)


def test_stems_tab_edits_reach_the_chain_the_worker_receives(make_window, qtbot, tmp_path):
    received: list[Chain] = []

    def recording(src, dst, chain, options, *, progress, cancel, **kwargs):
        received.append(chain)
        return restore_file(src, dst, chain, options, progress=progress, cancel=cancel, **kwargs)

    window = make_window(recording)
    window.chain_editor.set_chain(Chain([StageConfig("gain", {"gain_db": -1.0})]))
    panel = window.stems_panel
    assert panel.available and not panel.enable.isChecked()
    assert not panel.sep_box.isEnabled()
    panel.enable.setChecked(True)
    stages = window.chain_editor.chain.stages
    assert [c.stage for c in stages] == ["separate", "gain"]  # inserted at the top
    # the chain editor's list shows it too
    assert window.chain_editor.stage_list.item(0).data(256) == "separate"

    # backend demucs: the model combo marks missing models, the store's message is shown
    panel.editors["backend"].box.setCurrentText("demucs")
    assert window.chain_editor.chain.find("separate").params["backend"] == "demucs"
    assert panel.model.isVisibleTo(panel)
    labels = [panel.model.itemText(i) for i in range(panel.model.count())]
    assert "htdemucs (not installed)" in labels
    assert "not installed" in panel.model_note.text()
    assert str(user_models_dir()) in panel.model_note.text()
    assert "not installed" in window.device_panel.model_status.text()
    assert sorted(panel.stems.boxes) == ["bass", "drums", "other", "vocals"]

    # back to hpss: its stems as check boxes, mode, export settings
    panel.editors["backend"].box.setCurrentText("hpss")
    assert list(panel.stems.boxes) == ["harmonic", "percussive"]
    assert window.device_panel.model_status.text() == ""
    panel.stems.boxes["percussive"].setChecked(False)
    panel.editors["mode"].box.setCurrentText("mix")
    panel.editors["export"].box.setCurrentText("both")
    assert list(panel.export_stems.boxes) == ["harmonic", "residual"]
    panel.export_stems.boxes["residual"].setChecked(False)
    panel.export_dir.setText(str(tmp_path / "stems"))
    panel.export_dir.editingFinished.emit()
    pattern = panel.editors["export_pattern"].box
    pattern.setText("{name}-nostem.{ext}")  # refused: the pattern must name the stem
    pattern.editingFinished.emit()
    assert "must contain {stem}" in panel.export_example.text()
    pattern.setText("{stem}_{name}.{ext}")
    pattern.editingFinished.emit()

    window.add_paths([write(tmp_path / "take.wav", channels=2)])
    run_batch(qtbot, window, 30000)
    assert window.model.items[0].status is Status.DONE, window.model.items[0].error
    sep = received[0].find("separate")
    assert sep is not None and sep.enabled
    assert sep.params == {
        "backend": "hpss",
        "stems": "harmonic",
        "mode": "mix",
        "export": "both",
        "export_stems": "harmonic",
        "export_dir": str(tmp_path / "stems"),
        "export_pattern": "{stem}_{name}.{ext}",
    }
    # mode 'mix': only raw stems exist, written where asked
    assert sorted(p.name for p in (tmp_path / "stems").iterdir()) == [
        "harmonic.raw_take.restored.wav"
    ]

    # turning stems off disables the entry (settings kept) and the worker gets it disabled
    panel.enable.setChecked(False)
    assert window.chain_editor.chain.find("separate").enabled is False
    assert window.chain_editor.chain.find("separate").params["mode"] == "mix"
    assert not panel.sep_box.isEnabled()


def test_restore_with_separation_from_the_gui_writes_stem_files(make_window, qtbot, tmp_path):
    window = make_window()
    window.chain_editor.load_preset("tape")
    panel = window.stems_panel
    panel.enable.setChecked(True)
    panel.editors["export"].box.setCurrentText("raw")
    # a preset's chain for one stem: only stages that can run on a stem are taken
    dropped = panel.use_preset_for_stem("harmonic", "shellac78")
    entry = window.chain_editor.chain.find("separate")
    kept = [e["stage"] for e in entry.stems["harmonic"]["chain"]]
    assert kept and "separate" not in kept
    assert "loudness" in dropped  # needs a whole-file analysis: stays in the main chain
    summary = [
        w.text()
        for w in panel.chains_box.findChildren(type(panel.residual_note))
        if w.accessibleName() == "harmonic chain"
    ]
    assert summary and "→" in summary[0]
    panel.use_preset_for_stem("harmonic", None)  # back to pass-through
    assert window.chain_editor.chain.find("separate").stems is None
    panel.set_stem_gain("percussive", -6.0)
    assert window.chain_editor.chain.find("separate").stems == {"percussive": {"gain_db": -6.0}}

    src = write(tmp_path / "in" / "song.wav", 3.0, channels=2)
    window.add_paths([src])
    run_batch(qtbot, window, 60000)
    item = window.model.items[0]
    assert item.status is Status.DONE, item.error
    out = item.output
    stems = {
        p.name for p in out.parent.iterdir() if ".restored." in p.name and "json" not in p.name
    }
    assert stems == {
        "song.restored.wav",
        "song.restored.harmonic.wav",
        "song.restored.percussive.wav",
        "song.restored.residual.wav",
    }
    parts = [
        sf.read(str(out.parent / f"song.restored.{s}.wav"))[0]
        for s in ("harmonic", "percussive", "residual")
    ]
    mix = sf.read(str(src))[0]
    assert all(p.shape == mix.shape for p in parts)
    # the raw stems add back up to the mix (16-bit files: rounding only)
    assert abs(sum(parts) - mix).max() < 1e-3
    report = json.loads(Path(str(out) + ".restoration.json").read_text())
    assert report["chain"][0]["stage"] == "separate"


def test_models_list_shows_imports_and_verifies_user_model_files(make_window, qtbot, tmp_path):
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    placed = folder / "mymodel.th"
    placed.write_bytes(b"not really weights" * 100)
    digest = sha256_file(placed)
    (folder / "manifest.json").write_text(
        json.dumps({"version": 1, "files": {"mymodel.th": digest}})
    )
    window = make_window()
    panel = window.device_panel
    table = panel.models_table
    # the bundled enhance weights come first (lookup order), then the user's files
    assert table.rowCount() == 2
    assert table.item(0, 0).text() == "enhance/enhance-v1.pt"
    assert table.item(0, 3).text() == "bundled"
    assert table.item(1, 0).text() == "mymodel.th"
    assert table.item(1, 1).text() == "1.8 KB"
    assert table.item(1, 2).text() == digest[:12]
    assert table.item(1, 3).text() == "user"
    assert str(placed) in table.item(1, 0).toolTip()

    # import through the store (what "Import model file…" calls)
    src = tmp_path / "other.pt"
    src.write_bytes(b"\x00" * 5000)
    assert panel.import_files([str(src)]) == []
    assert (folder / "other.pt").is_file()
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert names == ["enhance/enhance-v1.pt", "mymodel.th", "other.pt"]
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    problems = panel.import_files([str(bad)])
    assert len(problems) == 1 and "not a model file" in problems[0]

    # verify: both match; then damage one
    results = panel.verify()
    assert [ok for _, ok, _ in results] == [True, True, True]
    placed.write_bytes(b"changed")
    results = dict((n, ok) for n, ok, _ in panel.verify())
    assert results == {"enhance/enhance-v1.pt": True, "mymodel.th": False, "other.pt": True}
    assert table.item(1, 0).text().startswith("✗")
    assert "damaged" in panel.models_note.text()


def test_a_stems_chain_is_edited_stage_by_stage_in_its_own_dialog(make_window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QPushButton

    from audio_restorer.gui.stems import StemChainDialog

    window = make_window()
    panel = window.stems_panel
    panel.enable.setChecked(True)
    panel.use_preset_for_stem("harmonic", "shellac78")
    before = panel.stem_chain("harmonic").to_list()
    assert before

    edits = []

    def edit_and_accept(dialog):
        # the dialog starts from the stem's chain, not the main chain
        assert dialog.chain().to_list() == before
        dialog.editor.add_stage("denoise")  # cannot run on a stem: left out on OK
        dialog.editor.set_param("declick", "sensitivity", 0.8)
        dialog.editor.set_enabled(1, False)  # switch the second stage off: not stored
        edits.append(dialog.chain().stages[1].stage)
        return StemChainDialog.DialogCode.Accepted

    monkeypatch.setattr(StemChainDialog, "exec", edit_and_accept)
    edit = [
        b
        for b in panel.chains_box.findChildren(QPushButton)
        if b.accessibleName() == "Edit the harmonic chain"
    ]
    assert len(edit) == 1
    edit[0].click()
    stored = window.chain_editor.chain.find("separate").stems["harmonic"]["chain"]
    names = [e["stage"] for e in stored]
    assert "denoise" not in names and edits[0] not in names
    declick = next(e for e in stored if e["stage"] == "declick")
    assert declick["params"]["sensitivity"] == 0.8

    # Cancel keeps what was there
    monkeypatch.setattr(StemChainDialog, "exec", lambda d: StemChainDialog.DialogCode.Rejected)
    assert not panel.edit_stem_chain("harmonic")
    assert window.chain_editor.chain.find("separate").stems["harmonic"]["chain"] == stored
