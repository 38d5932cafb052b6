"""Print the Debian ``Depends`` line for a PyInstaller bundle (used by build_linux.sh).

PyInstaller bundles the app's Python extensions and most of their libraries, but leaves out
the base system libraries (libc, libGL/EGL, fontconfig, freetype, X11/xcb, glib, D-Bus, ...)
that must match the target system. This script runs ``ldd`` on every ELF file of the bundle,
keeps the libraries resolved outside the bundle, and maps them to their packages with
``dpkg -S``. Libraries that only Qt's optional platform plugins need (Wayland, EGLFS, VNC...)
are collected too: they are what Qt needs to start on a desktop.

Usage: python deb_depends.py BUNDLE_DIR   (prints e.g. "libc6, libegl1, libfontconfig1, ...")
       python deb_depends.py --missing BUNDLE_DIR   (libraries nothing provides: a broken bundle)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

#: The base packages a desktop install always needs, named when dpkg cannot tell.
FALLBACK = (
    "libc6",
    "libgcc-s1",
    "libstdc++6",
    "zlib1g",
    "libglib2.0-0",
    "libdbus-1-3",
    "libfontconfig1",
    "libfreetype6",
    "libgl1",
    "libegl1",
    "libx11-6",
    "libx11-xcb1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xfixes0",
    "libxcb-xkb1",
)
_LDD_LINE = re.compile(r"^\s*(\S+) => (/\S+) \(0x")


def elf_files(root: Path) -> list[Path]:
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            with open(path, "rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    out.append(path)
    return out


def _ldd_lines(root: Path) -> Iterator[tuple[Path, str]]:
    """``(ELF file, line of its ldd output)`` for every ELF file under ``root`` (files ldd
    cannot run on are skipped)."""
    for path in elf_files(root):
        try:
            text = subprocess.run(
                ["ldd", str(path)], capture_output=True, text=True, timeout=60
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in text.splitlines():
            yield path, line


def external_libraries(root: Path) -> set[str]:
    """Absolute paths of libraries the bundle's ELF files load from outside the bundle."""
    root = root.resolve()
    bundled = {p.name for p in root.rglob("*.so*")}
    found: set[str] = set()
    for _path, line in _ldd_lines(root):
        m = _LDD_LINE.match(line)
        if m and m.group(1) not in bundled and not m.group(2).startswith(str(root)):
            found.add(os.path.realpath(m.group(2)))
    return found


def missing_libraries(root: Path) -> dict[str, list[str]]:
    """``{library: [bundle files needing it]}`` for libraries ldd cannot find at all.

    Run with the bundle in place: a library listed here was dropped from the bundle (or
    never collected) and is not on this system either, so whatever needs it cannot load.
    """
    root = root.resolve()
    bundled = {p.name for p in root.rglob("*.so*")}  # found at run time once loaded
    missing: dict[str, list[str]] = {}
    for path, line in _ldd_lines(root):
        if "=> not found" in line:
            lib = line.split("=>", 1)[0].strip()
            if lib not in bundled:
                missing.setdefault(lib, []).append(str(path.relative_to(root)))
    return missing


def packages_of(paths: set[str]) -> set[str]:
    pkgs: set[str] = set()
    for path in sorted(paths):
        for candidate in (path, path.replace("/usr/lib/", "/lib/", 1)):
            res = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if res.returncode == 0:
                pkgs.add(res.stdout.split(":", 1)[0].strip())
                break
    return pkgs


def depends_line(root: Path) -> str:
    try:
        pkgs = packages_of(external_libraries(root))
    except FileNotFoundError:  # no ldd/dpkg: fall back to the list Qt is known to need
        pkgs = set()
    if not pkgs:
        pkgs = set(FALLBACK)
    pkgs.update({"libxcb-cursor0", "libxkbcommon-x11-0"})  # xcb plugin's dlopen'ed needs
    return ", ".join(sorted(pkgs))


if __name__ == "__main__":
    args = sys.argv[1:]
    check_missing = args[:1] == ["--missing"]
    args = args[1:] if check_missing else args
    if len(args) != 1 or not Path(args[0]).is_dir():
        sys.exit("usage: deb_depends.py [--missing] BUNDLE_DIR")
    if check_missing:
        for lib, users in sorted(missing_libraries(Path(args[0])).items()):
            print(f"{lib}: needed by {', '.join(users[:3])}{' ...' if len(users) > 3 else ''}")
    else:
        print(depends_line(Path(args[0])))
