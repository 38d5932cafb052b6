"""Capture screenshots of the desktop application's main states into docs/images/.

Runs the real application on generated files (the demo 78 and a few synthetic takes, one of
them damaged so its failure shows), restores some of them, previews a range and grabs the
window at 1280×800 and 1920×1080. Run it under a virtual X server:

    Xvfb :99 -screen 0 1920x1080x24 &
    DISPLAY=:99 PYTHONPATH=src python scripts/screenshots.py [--out docs/images]

(``QT_QPA_PLATFORM=offscreen`` works too, with fonts rendered slightly differently.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def _music(rate: int, seconds: float, seed: int) -> np.ndarray:
    """Decaying harmonic notes with hiss and a few clicks (stereo)."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = np.zeros(n)
    note = int(rate * 0.5)
    for start in range(0, n, note):
        f0 = 130.8 * 2 ** (rng.integers(0, 15) / 12)
        seg = t[start : start + note] - t[start]
        out[start : start + note] += sum(
            np.sin(2 * np.pi * f0 * k * seg) / k**1.5 for k in range(1, 8)
        ) * np.exp(-seg * 3.0)
    out = 0.3 * out / np.abs(out).max()
    out += 0.01 * rng.standard_normal(n)
    for pos in rng.integers(0, n - 10, 12):
        out[pos : pos + 3] += rng.choice([-0.6, 0.6])
    return np.stack([out, 0.9 * out]).astype(np.float32)


def _speech_like(rate: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    env = np.clip(np.sin(2 * np.pi * 3.0 * t) * np.sin(2 * np.pi * 0.4 * t), 0, None)
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20)) * env
    out = 0.25 * voice / np.abs(voice).max() + 0.02 * rng.standard_normal(n)
    out += 0.01 * np.sin(2 * np.pi * 50 * t)
    return out[None, :].astype(np.float32)


def make_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    demo = ROOT / "resources" / "samples" / "demo-shellac78.flac"
    files = [folder / "Frère Jacques (demo 78).flac"]
    shutil.copy(demo, files[0])
    takes = [
        ("Dance band 1931 - side A.wav", _music(44100, 12.0, 1), 44100),
        ("Interview 1962.wav", _speech_like(22050, 9.0, 2), 22050),
        ("Piano roll, worn.flac", _music(44100, 7.0, 3), 44100),
    ]
    for name, audio, rate in takes:
        sf.write(str(folder / name), audio.T, rate)
        files.append(folder / name)
    damaged = _music(44100, 3.0, 4)
    damaged[:, 44100] = np.nan
    sf.write(str(folder / "Transfer with NaN samples.wav"), damaged.T, 44100, subtype="FLOAT")
    files.append(folder / "Transfer with NaN samples.wav")
    late = folder / "Side B.wav"
    sf.write(str(late), _music(44100, 20.0, 5).T, 44100)
    files.append(late)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ar-shots-"))
    os.environ["AUDIO_RESTORER_CONFIG_DIR"] = str(work / "config")
    os.environ["AUDIO_RESTORER_DATA_DIR"] = str(work / "data")

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from audio_restorer.gui.app import create_app
    from audio_restorer.gui.main_window import MainWindow
    from audio_restorer.gui.queue_model import Status
    from audio_restorer.pipeline.runner import restore_file

    def slowed(*a, progress, cancel, **k):
        def slow(fraction: float, message: str) -> None:
            time.sleep(0.01)
            progress(fraction, message)

        return restore_file(*a, progress=slow, cancel=cancel, **k)

    app = create_app([])

    def pump(seconds: float = 0.3, until=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            if until is not None and until():
                return
            time.sleep(0.01)

    files = make_files(work / "Transfers 2024")
    shots: list[Path] = []

    def shot(window: MainWindow, name: str) -> None:
        pump(0.4)
        path = args.out / name
        window.grab().save(str(path))
        shots.append(path)

    for width, height in ((1280, 800), (1920, 1080)):
        shutil.rmtree(files[0].parent / "restored", ignore_errors=True)
        window = MainWindow(restore=slowed, probe_gpu=False)
        window.device_panel.gpu_checked(False)
        window.resize(width, height)
        window.show()
        pump(0.5)
        size = f"{width}x{height}"
        if width == 1280:
            shot(window, f"empty-{size}.png")
        window.chain_editor.load_preset("shellac78")
        window.add_paths(files[:-1])
        window.start()
        pump(60, until=lambda w=window: not w.running)
        window.add_paths(files[-1:])
        window.table.selectRow(0)
        pump(2, until=lambda w=window: w.views.after.overview is not None)
        window.views.set_selection(2.0, 4.5)
        window.preview()
        pump(5, until=lambda w=window: w._preview is not None)
        window.chain_editor.stage_list.setCurrentRow(1)  # declick: a stage with parameters
        shot(window, f"main-{size}.png")
        if width == 1280:
            window.tabs.setCurrentIndex(1)
            shot(window, f"export-{size}.png")
            # device: the Demucs model chosen in the Stems tab is not installed
            stems = window.stems_panel
            stems.enable.setChecked(True)
            stems.editors["backend"].box.setCurrentText("demucs")
            window.tabs.setCurrentIndex(2)
            shot(window, f"device-{size}.png")
            # stems: HPSS, raw stems exported, the harmonic stem restored with a preset's chain
            stems.editors["backend"].box.setCurrentText("hpss")
            stems.editors["export"].box.setCurrentText("raw")
            stems.use_preset_for_stem("harmonic", "shellac78")
            window.tabs.setCurrentIndex(3)
            shot(window, f"stems-{size}.png")
            # the harmonic stem's own chain, edited in its dialog
            from audio_restorer.gui.stems import StemChainDialog

            dialog = StemChainDialog("harmonic", stems.stem_chain("harmonic"), window)
            dialog.show()
            dialog.editor.stage_list.setCurrentRow(0)
            pump(0.4)
            path = args.out / "stem-chain-dialog.png"
            dialog.grab().save(str(path))
            shots.append(path)
            dialog.close()
            stems.enable.setChecked(False)
            window.tabs.setCurrentIndex(0)
            window.chain_editor.stage_list.setCurrentRow(2)
            # processing: the last file, part way through
            window.start()
            pump(20, until=lambda w=window: w.model.items[-1].progress > 0.4)
            shot(window, f"processing-{size}.png")
            pump(60, until=lambda w=window: not w.running)
            hints = app.styleHints()
            if hasattr(hints, "setColorScheme"):
                hints.setColorScheme(Qt.ColorScheme.Dark)
                pump(0.5)
                window.views.apply_palette()
                if window.palette().color(window.palette().ColorRole.Window).lightness() < 128:
                    shot(window, f"dark-{size}.png")
                hints.setColorScheme(Qt.ColorScheme.Unknown)
                pump(0.3)
        assert any(i.status is Status.FAILED for i in window.model.items)
        window.close()
        pump(0.2)
    QApplication.processEvents()
    shutil.rmtree(work, ignore_errors=True)
    for path in shots:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
