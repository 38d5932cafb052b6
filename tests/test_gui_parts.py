"""GUI building blocks: widgets generated from parameter metadata, overviews, A/B logic."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QSlider

from audio_restorer.gui.compat import install_bool_guard
from audio_restorer.gui.overview import OverviewBuilder, overview_of_array
from audio_restorer.gui.params import ParamEditor, StageForm, param_label
from audio_restorer.gui.player import ABPlayer
from audio_restorer.stages.params import ParamInfo, ParamSpec
from audio_restorer.stages.registry import get_stage_class, stage_names
from gui_support import FakeBackend

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _guard(qapp):
    install_bool_guard(QApplication.instance())


# ---------------------------------------------------------------- parameter widgets


@pytest.mark.parametrize("name", stage_names())
def test_every_registered_stage_gets_a_widget_per_parameter(qtbot, name):
    cls = get_stage_class(name)
    form = StageForm(cls, {})
    qtbot.addWidget(form)
    infos = cls.Params.infos()
    assert set(form.editors) == {i.name for i in infos}
    for info in infos:
        editor = form.editors[info.name]
        assert info.spec.help in editor.toolTip()
        assert editor.box.accessibleName() == f"{name}.{info.name}"
        assert editor.value() == info.default
        bounded = info.kind in (int, float) and None not in (info.spec.min, info.spec.max)
        assert (editor.slider is not None) == bounded
        if info.spec.unit and info.kind in (int, float):
            assert editor.box.suffix() == f" {info.spec.unit}"
    # every emitted value is one the parameter dataclass accepts
    seen: list[tuple[str, object]] = []
    form.paramChanged.connect(lambda n, v: seen.append((n, v)))
    for info in infos:
        editor = form.editors[info.name]
        if editor.slider is not None:
            editor.slider.setValue(editor.slider.maximum())
    for n, v in seen:
        cls.Params.from_dict({n: v})


def _info(kind, default, optional=False, **spec):
    return ParamInfo("x_db", kind, optional, default, ParamSpec(help="Help text.", **spec))


def test_editor_kinds_follow_the_metadata(qtbot):
    choice = ParamEditor("s", _info(str, "b", choices=("a", "b")), "b")
    flag = ParamEditor("s", _info(bool, True), True)
    auto = ParamEditor("s", _info(float, None, optional=True, min=0.0, step=0.01, unit="s"), None)
    ranged = ParamEditor("s", _info(float, 1.0, min=-6.0, max=6.0, step=0.5, unit="dB"), 1.0)
    for w in (choice, flag, auto, ranged):
        qtbot.addWidget(w)
    assert isinstance(choice.box, QComboBox) and choice.value() == "b"
    assert isinstance(flag.box, QCheckBox) and flag.value() is True
    # optional: "Auto" means None, unticking it gives a number
    assert auto.value() is None and not auto.box.isEnabled() and auto.slider is None
    got: list[object] = []
    auto.valueChanged.connect(got.append)
    auto.auto.setChecked(False)
    assert got[-1] == 0.0 and auto.box.isEnabled()
    assert auto.box.decimals() == 2
    # slider and spin box move together, on the parameter's step grid
    assert isinstance(ranged.slider, QSlider)
    ranged.slider.setValue(ranged.slider.maximum() * 3 // 4)
    assert ranged.value() == 3.0
    ranged.box.setValue(-6.0)
    assert ranged.slider.value() == 0


def test_param_labels_drop_the_unit_suffix():
    assert param_label("cutoff_hz") == "Cutoff"
    assert param_label("max_gain_db") == "Max gain"
    assert param_label("strength") == "Strength"


# ---------------------------------------------------------------- overview


def test_overview_blockwise_equals_whole_and_keeps_extremes(rng):
    rate = 8000
    audio = np.clip(0.1 * rng.standard_normal((2, 50_001)), -0.5, 0.5).astype(np.float32)
    audio[1, 12_345] = 0.99
    audio[0, 40_000] = -0.97
    whole = overview_of_array(audio, rate)
    builder = OverviewBuilder(rate, audio.shape[1])
    for start in range(0, audio.shape[1], 7777):  # a block size that divides nothing
        builder.update(audio[:, start : start + 7777])
    blocks = builder.result()
    np.testing.assert_array_equal(whole.lo, blocks.lo)
    np.testing.assert_array_equal(whole.hi, blocks.hi)
    np.testing.assert_allclose(whole.spec_db, blocks.spec_db, atol=1e-3)
    assert whole.hi.max() == pytest.approx(0.99) and whole.lo.min() == pytest.approx(-0.97)
    assert whole.frames == 50_001


def test_overview_size_is_bounded_for_long_input():
    rate = 8000
    frames = 2_000_000
    builder = OverviewBuilder(rate, frames, max_buckets=1000, max_columns=200)
    block = np.zeros((1, 100_000), dtype=np.float32)
    block[0, 50_000] = 0.5
    for _ in range(frames // block.shape[1]):
        builder.update(block)
    ov = builder.result()
    assert ov.lo.size <= 1000 and ov.spec_db.shape[0] <= 201
    assert ov.hi.max() == pytest.approx(0.5)


def test_spectrogram_peak_is_at_the_tone_frequency():
    rate = 16000
    t = np.arange(rate * 2) / rate
    audio = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)[None, :]
    ov = overview_of_array(audio, rate)
    peak_bin = int(np.argmax(ov.spec_db.mean(axis=0)))
    freqs = np.linspace(0, rate / 2, ov.spec_db.shape[1])
    assert abs(freqs[peak_bin] - 1000.0) < rate / 1024
    # a 0.5 amplitude sine reads about -6 dBFS at its peak bin
    assert ov.spec_db.mean(axis=0)[peak_bin] == pytest.approx(-6.0, abs=1.5)


# ---------------------------------------------------------------- A/B logic


def test_ab_player_switches_in_place_and_handles_removed(qapp):
    backend = FakeBackend()
    player = ABPlayer(backend)
    a, b, r = Path("a.wav"), Path("b.wav"), Path("r.wav")
    player.set_sources({"original": a, "restored": b, "removed:declick": r}, start_s=10.0)
    assert backend.source == a and not backend.playing
    player.toggle_play()
    backend.position = 2500
    assert player.switch("removed:declick")
    assert backend.source == r and backend.position == 2500 and backend.playing
    assert player.toggle_ab()  # from "removed" back to the original
    assert player.mode == "original" and backend.source == a
    assert not player.switch("missing")
    assert player.position_s() == pytest.approx(12.5)
    # new versions of the same span keep the position and the mode
    player.switch("restored")
    player.set_sources({"original": a, "restored": Path("b2.wav"), "removed:declick": r}, 10.0)
    assert backend.source == Path("b2.wav") and backend.position == 2500 and backend.playing


# ---------------------------------------------------------------- binding work-around


def test_bool_guard_keeps_singletons_alive_under_many_emits(qapp):
    class Emitter(QObject):
        ping = Signal()

        def slot(self) -> None:
            return None

    e = Emitter()
    e.ping.connect(e.slot)
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(20_000):
        e.ping.emit()
    assert sys.getrefcount(True) > 1000 and sys.getrefcount(None) > 1000
    assert before[0] > 1000


# ---------------------------------------------------------------- range selection by dragging


class _Drag:
    """What pyqtgraph hands a view box while the mouse is dragged (scene coordinates)."""

    def __init__(self, down, now, *, finish=False, shift=False, button=None, item=None):
        from PySide6.QtCore import Qt

        self.item = item
        self._down, self._now, self._finish = down, now, finish
        self._button = button or Qt.MouseButton.LeftButton
        self._mods = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier(0)
        self.accepted = False

    def button(self):
        return self._button

    def modifiers(self):
        return self._mods

    def buttonDownScenePos(self):  # noqa: N802 (pyqtgraph's name)
        return self._down

    def scenePos(self):  # noqa: N802
        return self._now

    def lastScenePos(self):  # noqa: N802
        return self._down

    def pos(self):
        return _point(self.item.mapFromScene(self._now))

    def lastPos(self):  # noqa: N802
        return _point(self.item.mapFromScene(self._down))

    def buttonDownPos(self, button=None):  # noqa: N802
        return _point(self.item.mapFromScene(self._down))

    def isStart(self):  # noqa: N802
        return False

    def isFinish(self):  # noqa: N802
        return self._finish

    def accept(self):
        self.accepted = True

    def ignore(self):
        pass


def test_left_drag_on_a_plot_selects_a_range_and_shift_drag_pans(qtbot):
    from audio_restorer.gui.views import AudioViews

    views = AudioViews()
    qtbot.addWidget(views)
    views.resize(900, 500)
    views.show()
    rate = 8000
    t = np.arange(10 * rate) / rate
    views.show_before(overview_of_array(np.sin(2 * np.pi * 220 * t)[None, :], rate), "tone")
    views.zoom_all()
    qtbot.wait(20)
    got = []
    views.selectionChanged.connect(lambda a, b: got.append((a, b)))
    vb = views.after.spec.getViewBox()  # any of the four plots
    a, b = vb.mapViewToScene(pg_point(2.0, 1.0)), vb.mapViewToScene(pg_point(5.0, 1.0))
    drag = _Drag(b, a, finish=True)  # right to left works too
    vb.mouseDragEvent(drag)
    assert drag.accepted
    start, end = views.selection()
    assert abs(start - 2.0) < 0.05 and abs(end - 5.0) < 0.05
    assert got and abs(got[-1][0] - 2.0) < 0.05
    # mirrored in every plot
    assert all(abs(r.getRegion()[1] - end) < 1e-9 for r in views.regions)
    # a drag past the end is clamped to the file
    vb.mouseDragEvent(_Drag(a, vb.mapViewToScene(pg_point(30.0, 1.0)), finish=True))
    assert views.selection()[1] == pytest.approx(10.0, abs=1e-3)
    # shift+drag pans: the selection stays, the view moves
    views.plots[0].setXRange(3.0, 6.0, padding=0)
    before = views.visible_range()
    vb.mouseDragEvent(_Drag(a, b, shift=True, item=vb))
    assert views.selection()[1] == pytest.approx(10.0, abs=1e-3)
    assert views.visible_range() != before
    # a click (no movement) clears the selection
    vb.mouseDragEvent(_Drag(a, a, finish=True))
    assert views.selection() is None


def _point(p):
    import pyqtgraph as pg

    return pg.Point(p)


def pg_point(x, y):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)
