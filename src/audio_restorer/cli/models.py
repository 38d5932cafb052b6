"""``models``: list, import and verify model weights in the model store (offline)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audio_restorer.models import store


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list, import or verify model weights",
        description="Model weights are found offline, in order: the bundled models folder, "
        "your models folder, Demucs's download cache. Nothing is downloaded.",
    )
    p.set_defaults(func=run_list, json=False)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    ls = msub.add_parser("list", help="list installed model files with sizes and sha256")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    imp = msub.add_parser("import", help="install a weights file into your models folder")
    imp.add_argument("path", type=Path, metavar="PATH", help="the weights file")
    imp.add_argument("--name", help="file name to install it under (default: its own)")
    imp.set_defaults(func=run_import)
    ver = msub.add_parser("verify", help="re-check every model file against its checksum")
    ver.set_defaults(func=run_verify)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def run_list(args: argparse.Namespace) -> int:
    files = store.list_models()
    if getattr(args, "json", False):
        print(json.dumps([f.to_dict() for f in files], indent=2))
        return 0
    print("Model folders (searched in this order):")
    for kind, folder in store.model_dirs():
        print(f"  {kind:<13} {folder}{'' if folder.is_dir() else '  (absent)'}")
    if not files:
        print(
            "No model files installed. Copy weights into your models folder or run "
            "`audio-restorer models import PATH`."
        )
        return 0
    print()
    for f in files:
        print(f"{f.name:<32} {_size(f.size):>9}  {f.source:<13} sha256 {f.sha256()}")
    print("\nTo add models (e.g. Demucs weights), run `audio-restorer models import PATH`.")
    return 0


def run_import(args: argparse.Namespace) -> int:
    installed = store.import_model(args.path, name=args.name)
    print(f"installed {installed.name} ({_size(installed.size)}) in {installed.path.parent}")
    print(f"sha256 {installed.sha256()}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    results = store.verify_models()
    if not results:
        print("No model files installed.")
        return 0
    bad = 0
    for f, ok, message in results:
        status = {True: "OK", False: "FAILED", None: "--"}[ok]
        print(f"{status:<7} {f.path}: {message}")
        bad += ok is False
    if bad:
        print(f"{bad} file(s) failed verification; replace them.", file=sys.stderr)
        return 1
    return 0
