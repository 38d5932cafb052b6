"""Build settings shared by the PyInstaller spec, the build script and the packaging tests.

Kept apart from ``audio_restorer.spec`` so the choices (variants, extras, what is excluded and
why, bundled models) are plain functions that tests can check without running PyInstaller.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

VARIANTS = ("full", "lite")
EXTRAS = ("demucs", "torchcrepe")
MODEL_EXTENSIONS = (".th", ".pt", ".pth", ".ckpt", ".yaml")

#: Never used by the app, in any variant: (module, why). Shown in docs/packaging.md.
ALWAYS_EXCLUDED: tuple[tuple[str, str], ...] = (
    ("tkinter", "the GUI is Qt"),
    ("matplotlib", "plots are pyqtgraph; matplotlib is only pulled in by librosa/music21"),
    ("music21", "benchmark material generation only"),
    ("pesq", "benchmark metric (evaluation.metrics imports it lazily)"),
    ("pystoi", "benchmark metric"),
    ("noisereduce", "benchmark peer"),
    ("sklearn", "reached through librosa; no code path of the app uses it"),
    ("torch.utils.tensorboard", "training tooling"),
    ("tensorboard", "training tooling"),
    ("torchvision", "not used"),
    ("torchaudio", "only torchcrepe's file loading uses it; ml/crepe.py stands in for it"),
    ("IPython", "not used"),
    ("pytest", "test tooling"),
    ("mypy", "dev tooling"),
    ("setuptools", "build tooling"),
    ("pip", "build tooling"),
    ("PIL", "not used by the app (the icon is a ready PNG)"),
    ("dora", "Demucs's training tooling"),
    ("hydra", "Demucs's training tooling"),
    ("submitit", "Demucs's training tooling"),
    ("openunmix", "not used"),
    ("requests", "the app never uses the network"),
    ("urllib3", "the app never uses the network"),
    ("chardet", "reached through requests only"),
    ("charset_normalizer", "reached through requests only"),
)

#: Qt modules the app never imports (it is a widgets app: QtCore/Gui/Widgets/Multimedia).
QT_EXCLUDED: tuple[str, ...] = (
    "QtWebEngineCore",
    "QtWebEngineWidgets",
    "QtWebEngineQuick",
    "QtWebChannel",
    "QtWebSockets",
    "QtQml",
    "QtQuick",
    "QtQuick3D",
    "QtQuickControls2",
    "QtQuickWidgets",
    "Qt3DCore",
    "Qt3DRender",
    "Qt3DInput",
    "Qt3DLogic",
    "Qt3DAnimation",
    "Qt3DExtras",
    "QtCharts",
    "QtDataVisualization",
    "QtGraphs",
    "QtGraphsWidgets",
    "QtPdf",
    "QtPdfWidgets",
    "QtBluetooth",
    "QtNfc",
    "QtPositioning",
    "QtLocation",
    "QtSensors",
    "QtSerialPort",
    "QtSerialBus",
    "QtSql",
    "QtTest",
    "QtDesigner",
    "QtHelp",
    "QtUiTools",
    "QtXml",
    "QtNetworkAuth",
    "QtRemoteObjects",
    "QtScxml",
    "QtStateMachine",
    "QtTextToSpeech",
    "QtSpatialAudio",
    "QtHttpServer",
    "QtSvgWidgets",
    "QtConcurrent",
    "QtAxContainer",
)

#: Left out of the lite variant: PyTorch and everything only the ML stages use.
LITE_EXCLUDED: tuple[str, ...] = (
    "torch",
    "torchcrepe",
    "demucs",
    "julius",
    "einops",
    "lameenc",
    "librosa",
    "resampy",
    "audioread",
    "pooch",
    "joblib",
    "networkx",
    "sympy",
    "numba",
    "llvmlite",
    "jinja2",
    "fsspec",
    "filelock",
)


def variant_from_env(env: Mapping[str, str]) -> str:
    variant = env.get("AR_VARIANT", "full").strip().lower() or "full"
    if variant not in VARIANTS:
        raise ValueError(f"AR_VARIANT must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return variant


def extras_from_env(env: Mapping[str, str], variant: str) -> tuple[str, ...]:
    """The ML extras to ship: none in ``lite``; ``AR_EXTRAS`` (default all) in ``full``."""
    if variant == "lite":
        return ()
    raw = env.get("AR_EXTRAS", ",".join(EXTRAS)).strip().lower()
    if raw in ("", "none"):
        return ()
    extras = tuple(e.strip() for e in raw.split(",") if e.strip())
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise ValueError(f"unknown extras {unknown} (known: {', '.join(EXTRAS)})")
    return extras


def excluded_modules(variant: str, extras: tuple[str, ...]) -> list[str]:
    """Module names PyInstaller must leave out for this variant and set of extras."""
    names = [m for m, _why in ALWAYS_EXCLUDED]
    names += [f"PySide6.{m}" for m in QT_EXCLUDED]
    if variant == "lite":
        names += list(LITE_EXCLUDED)
    else:
        for extra in EXTRAS:
            if extra not in extras:
                names.append(extra)
        if "torchcrepe" not in extras:
            # torchcrepe imports librosa and resampy at import time, and they import numba
            # (llvmlite: ~180 MB): only shipped with torchcrepe
            names += ["resampy", "librosa", "numba", "llvmlite"]
    return names


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stage_models(models_dir: str | Path, staging: Path) -> Path:
    """Copy the model files of ``models_dir`` into ``staging`` with a ``manifest.json``.

    The manifest (``{"version": 1, "files": {name: sha256}}``, the model store's format) lets
    ``audio-restorer models verify`` check the bundled weights in the installed app.
    """
    source = Path(models_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"models folder {source} does not exist")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    files = {}
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in MODEL_EXTENSIONS and not path.name.startswith("."):
            shutil.copy2(path, staging / path.name)
            files[path.name] = _sha256(path)
    if not files:
        raise FileNotFoundError(
            f"models folder {source} holds no model files ({', '.join(MODEL_EXTENSIONS)})"
        )
    text = json.dumps({"version": 1, "files": files}, indent=2) + "\n"
    (staging / "manifest.json").write_text(text, encoding="utf-8")
    return staging


def bundled_model_datas(models_dir: str | None, dest: str, build_dir: Path) -> list:
    """PyInstaller ``datas`` entries for the builder's models folder (none when unset)."""
    if not models_dir:
        return []
    staged = stage_models(models_dir, build_dir / "models-staging")
    return [(str(staged), dest)]


#: Files dropped from the bundle after analysis (basename prefixes), with the reason. Qt's
#: plugins are collected wholesale per Qt module; these ones pull in the virtual keyboard,
#: PDF, GTK or network/TLS code the app never uses. (libQt6Quick/Qml stay: Qt Multimedia's
#: FFmpeg plugin, which plays audio, links them.) The smoke test checks the app still starts
#: and finds its playback backend; build_linux.sh warns of any library left unresolved.
DROPPED_BINARIES: tuple[tuple[str, str], ...] = (
    ("libqtvirtualkeyboardplugin", "on-screen keyboard (QtQuick-based)"),
    ("libQt6VirtualKeyboard", "on-screen keyboard"),
    ("libqpdf", "PDF image-format plugin"),
    ("libQt6Pdf", "PDF rendering"),
    ("libqgtk3", "GTK3 theme plugin: the app uses Fusion; pulls GTK, cairo, pango"),
    ("libgtk-3", "only the GTK3 theme plugin needs it"),
    ("libgdk-3", "only the GTK3 theme plugin needs it"),
    ("libatk", "only the GTK3 theme plugin needs it"),
    ("libcairo-gobject", "only the GTK3 theme plugin needs it"),
    ("libepoxy", "only the GTK3 theme plugin needs it"),
    ("libqopensslbackend", "TLS: the app never uses the network"),
    ("libqcertonlybackend", "TLS: the app never uses the network"),
    ("libqconnman", "network information: no network use"),
    ("libqnetworkmanager", "network information: no network use"),
    ("libqglib", "network information: no network use"),
    ("libqeglfs", "embedded (EGLFS) platform"),
    ("libQt6EglFS", "embedded (EGLFS) platform"),
    ("libQt6EglFsKms", "embedded (EGLFS) platform"),
    ("libqlinuxfb", "embedded framebuffer platform"),
    ("libqvnc", "VNC platform"),
    ("libqvkkhrdisplay", "Vulkan display platform"),
    ("libqminimalegl", "embedded EGL platform"),
)


#: Folders of the bundle dropped whole (destination path prefixes): PyTorch's wheel carries
#: its C++ test programs and protoc (~130 MB) that its PyInstaller hook collects as data.
DROPPED_TREES: tuple[tuple[str, str], ...] = (
    ("torch/test/", "PyTorch's C++ unit-test executables"),
    ("torch/bin/", "protoc and C++ store tests (torch_shm_manager is kept: torch needs it)"),
    ("torch/include/", "C++ headers (no extension building at run time)"),
    ("torch/share/", "CMake files"),
)


def keep_binary(dest: str) -> bool:
    """False for a bundle file (its destination path) that :data:`DROPPED_BINARIES` or
    :data:`DROPPED_TREES` drops."""
    path = dest.replace("\\", "/")
    if path == "torch/bin/torch_shm_manager":  # `import torch` checks that it exists
        return True
    if any(path.startswith(prefix) for prefix, _why in DROPPED_TREES):
        return False
    name = path.rsplit("/", 1)[-1]
    if path.startswith("torch/lib/") and name.endswith("_test.so"):
        return False
    return not any(name.startswith(prefix) for prefix, _why in DROPPED_BINARIES)
