#!/usr/bin/env bash
# Build Audio Restorer's Linux artefacts from one command: the PyInstaller one-folder build,
# an AppDir (runnable as is), an AppImage (when appimagetool is on PATH), a .deb, a
# self-extracting .run installer (makeself) and a .tar.gz. Everything runs offline.
# See docs/packaging.md for what each artefact contains and how to install it.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-}"
VARIANT=full
EXTRAS=demucs,torchcrepe
MODELS_DIR=""
FFMPEG=""
FORMATS=appdir,appimage,deb,run,tar
SKIP_PYINSTALLER=0
DRY_RUN=0
DEB_COMPRESSION="${DEB_COMPRESSION:-xz}"

usage() {
  cat <<'EOF'
Usage: scripts/build_linux.sh [options]

Build Audio Restorer's Linux artefacts into dist/ (work files in build/).

Options:
  --variant full|lite   full: PyTorch + ML stages (Demucs, CREPE); lite: HPSS + DSP only,
                        no torch (default: full)
  --extras LIST         ML extras for the full variant, comma-separated from
                        demucs,torchcrepe, or "none" (default: demucs,torchcrepe)
  --models DIR          bundle the model weights in DIR (e.g. Demucs .th files you
                        downloaded); a manifest with their sha256 is written
  --ffmpeg PATH         bundle this ffmpeg executable (a static build: a dynamically linked
                        one needs its libraries on the target); default: not bundled, the .deb
                        recommends the system's ffmpeg
  --formats LIST        which artefacts, comma-separated from appdir,appimage,deb,run,tar
                        (default: all; appimage needs appdir)
  --python PATH         the Python whose environment holds the app and PyInstaller
                        (default: $PYTHON, else .venv/bin/python, else /work/main/.venv/bin/python)
  --skip-pyinstaller    reuse the existing one-folder build in dist/<variant>/
  --dry-run             print the plan and exit without building
  -h, --help            show this help

Environment: DEB_COMPRESSION (xz, gzip, zstd or none; default xz).
The AppImage is built only when `appimagetool` is on PATH (and, for appimagetool builds that
need it, APPIMAGE_RUNTIME names the runtime file); otherwise the script says so and builds
the rest. The AppDir is the AppImage's content and runs as is (AppDir/AppRun).
EOF
}

die() { echo "build_linux.sh: error: $*" >&2; exit 2; }
note() { echo "==> $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --variant) VARIANT="${2:?--variant needs a value}"; shift 2 ;;
    --extras) EXTRAS="${2:?--extras needs a value}"; shift 2 ;;
    --models) MODELS_DIR="${2:?--models needs a folder}"; shift 2 ;;
    --ffmpeg) FFMPEG="${2:?--ffmpeg needs a path}"; shift 2 ;;
    --formats) FORMATS="${2:?--formats needs a value}"; shift 2 ;;
    --python) PYTHON="${2:?--python needs a path}"; shift 2 ;;
    --skip-pyinstaller) SKIP_PYINSTALLER=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

case "$VARIANT" in full|lite) ;; *) die "--variant must be full or lite, got '$VARIANT'" ;; esac
[ "$VARIANT" = lite ] && EXTRAS=none
IFS=, read -r -a _formats <<<"$FORMATS"
for f in "${_formats[@]}"; do
  case "$f" in appdir|appimage|deb|run|tar) ;; *) die "unknown format '$f' (appdir,appimage,deb,run,tar)" ;; esac
done
want() { [[ ",$FORMATS," == *",$1,"* ]]; }
if want appimage && ! want appdir; then FORMATS="$FORMATS,appdir"; fi
[ -z "$MODELS_DIR" ] || [ -d "$MODELS_DIR" ] || die "--models: no folder $MODELS_DIR"
[ -z "$FFMPEG" ] || [ -x "$FFMPEG" ] || die "--ffmpeg: $FFMPEG is not an executable file"
if [ -z "$PYTHON" ]; then
  for p in "$ROOT/.venv/bin/python" /work/main/.venv/bin/python; do
    [ -x "$p" ] && { PYTHON="$p"; break; }
  done
fi
[ -n "$PYTHON" ] || die "no Python found: pass --python PATH"

VERSION="$(PYTHONPATH="$ROOT/src" "$PYTHON" -c 'import audio_restorer; print(audio_restorer.__version__)' 2>/dev/null || echo 0.0.0)"
ARCH="$(uname -m)"
case "$ARCH" in x86_64) DEB_ARCH=amd64 ;; aarch64) DEB_ARCH=arm64 ;; *) DEB_ARCH="$ARCH" ;; esac
if [ "$VARIANT" = lite ]; then PKG=audio-restorer-lite; else PKG=audio-restorer; fi
APP=audio-restorer                      # executable and command name
BUNDLE="$ROOT/dist/$VARIANT/$APP"       # PyInstaller's one-folder output
OUT="$ROOT/dist/packages"
STAGE="$ROOT/build/stage-$VARIANT"
BASENAME="$PKG-$VERSION-linux-$ARCH"
APPIMAGETOOL="$(command -v appimagetool || command -v appimagetool-x86_64.AppImage || true)"

echo "Audio Restorer $VERSION, variant $VARIANT (extras: $EXTRAS), package $PKG"
echo "  python      $PYTHON"
echo "  bundle      $BUNDLE"
echo "  models      ${MODELS_DIR:-(none beyond resources/)}"
echo "  ffmpeg      ${FFMPEG:-(not bundled)}"
echo "  formats     $FORMATS"
echo "  outputs     $OUT/$BASENAME.{AppDir,AppImage,tar.gz,run} and ${PKG}_${VERSION}_${DEB_ARCH}.deb"
if want appimage && [ -z "$APPIMAGETOOL" ]; then
  echo "  AppImage    SKIPPED: appimagetool is not on PATH (it is not available from this"
  echo "              machine's package registries). The AppDir is built; to make the AppImage"
  echo "              elsewhere: appimagetool $OUT/$BASENAME.AppDir"
fi
[ "$DRY_RUN" = 1 ] && { echo "(dry run: nothing built)"; exit 0; }

# --- 1. PyInstaller one-folder build ---------------------------------------------------------
if [ "$SKIP_PYINSTALLER" = 0 ]; then
  note "PyInstaller ($VARIANT)"
  AR_VARIANT="$VARIANT" AR_EXTRAS="$EXTRAS" AR_MODELS_DIR="$MODELS_DIR" AR_NAME="$APP" \
  AR_VERSION="$VERSION" PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
      --distpath "$ROOT/dist/$VARIANT" --workpath "$ROOT/build/$VARIANT" \
      "$ROOT/packaging/audio_restorer.spec"
fi
[ -x "$BUNDLE/$APP" ] || die "no one-folder build at $BUNDLE (run without --skip-pyinstaller)"
if [ -n "$FFMPEG" ]; then
  note "bundling ffmpeg from $FFMPEG"
  mkdir -p "$BUNDLE/bin"
  cp -L "$FFMPEG" "$BUNDLE/bin/ffmpeg"
  # M4A/AAC/WMA input is probed with ffprobe: bundle the one beside ffmpeg when there is one
  FFPROBE="$(dirname "$FFMPEG")/ffprobe"
  if [ -x "$FFPROBE" ]; then
    cp -L "$FFPROBE" "$BUNDLE/bin/ffprobe"
  else
    echo "    warning: no ffprobe beside $FFMPEG; M4A/AAC/WMA input needs ffprobe on PATH"
  fi
  if command -v ldd >/dev/null && ldd "$BUNDLE/bin/ffmpeg" 2>/dev/null | grep -q '=> /'; then
    echo "    warning: $FFMPEG is dynamically linked; it runs only where its libraries exist"
  fi
fi
"$BUNDLE/$APP" --version >/dev/null || die "the built binary does not run"
MISSING="$("$PYTHON" "$ROOT/packaging/linux/deb_depends.py" --missing "$BUNDLE" || true)"
if [ -n "$MISSING" ]; then
  echo "    warning: libraries neither bundled nor on this system (parts needing them won't load):"
  echo "$MISSING" | sed 's/^/      /'
fi

mkdir -p "$OUT"
rm -rf "$STAGE"; mkdir -p "$STAGE"
ICON="$ROOT/packaging/icons/audio-restorer"
DESKTOP="$ROOT/packaging/linux/audio-restorer.desktop"
LICENCES=("$ROOT/LICENSE" "$ROOT/THIRD_PARTY_LICENSES.md")

# The wrapper every artefact installs as the command: puts a bundled ffmpeg on PATH.
write_wrapper() {  # $1 = file, $2 = bundle folder as the wrapper should see it
  cat >"$1" <<EOF
#!/bin/sh
# Audio Restorer launcher: runs the bundled app (installed by the $PKG package).
APPDIR="$2"
[ -d "\$APPDIR/bin" ] && PATH="\$APPDIR/bin:\$PATH" && export PATH
exec "\$APPDIR/$APP" "\$@"
EOF
  chmod 755 "$1"
}

# --- 2. AppDir (and AppImage) ----------------------------------------------------------------
if want appdir; then
  note "AppDir"
  APPDIR="$OUT/$BASENAME.AppDir"
  rm -rf "$APPDIR"
  mkdir -p "$APPDIR/usr/lib" "$APPDIR/usr/share/applications" \
           "$APPDIR/usr/share/icons/hicolor/256x256/apps" "$APPDIR/usr/share/icons/hicolor/scalable/apps"
  cp -a "$BUNDLE" "$APPDIR/usr/lib/$APP"
  cat >"$APPDIR/AppRun" <<EOF
#!/bin/sh
# AppImage/AppDir entry point: with no arguments the app opens its window (when a display
# is available); with arguments it is the audio-restorer command.
HERE="\$(dirname "\$(readlink -f "\$0")")"
[ -d "\$HERE/usr/lib/$APP/bin" ] && PATH="\$HERE/usr/lib/$APP/bin:\$PATH" && export PATH
exec "\$HERE/usr/lib/$APP/$APP" "\$@"
EOF
  chmod 755 "$APPDIR/AppRun"
  cp "$DESKTOP" "$APPDIR/$APP.desktop"
  cp "$DESKTOP" "$APPDIR/usr/share/applications/$APP.desktop"
  cp "$ICON.png" "$APPDIR/$APP.png"
  cp "$ICON.png" "$APPDIR/usr/share/icons/hicolor/256x256/apps/$APP.png"
  cp "$ICON.svg" "$APPDIR/usr/share/icons/hicolor/scalable/apps/$APP.svg"
  ln -sf "$APP.png" "$APPDIR/.DirIcon"
  if want appimage; then
    if [ -n "$APPIMAGETOOL" ]; then
      note "AppImage ($APPIMAGETOOL)"
      runtime_args=()
      [ -n "${APPIMAGE_RUNTIME:-}" ] && runtime_args=(--runtime-file "$APPIMAGE_RUNTIME")
      ARCH="$ARCH" "$APPIMAGETOOL" --no-appstream "${runtime_args[@]}" "$APPDIR" "$OUT/$BASENAME.AppImage"
    else
      echo "    AppImage SKIPPED: appimagetool is not on PATH (not available from this machine's"
      echo "    package registries). Put appimagetool (and its runtime) on PATH and rerun with"
      echo "    --skip-pyinstaller --formats appimage, or run: appimagetool $APPDIR"
    fi
  fi
fi

# --- 3. .deb ---------------------------------------------------------------------------------
if want deb; then
  note ".deb"
  DEBROOT="$STAGE/deb"
  mkdir -p "$DEBROOT/DEBIAN" "$DEBROOT/opt" "$DEBROOT/usr/bin" "$DEBROOT/usr/share/applications" \
           "$DEBROOT/usr/share/icons/hicolor/256x256/apps" "$DEBROOT/usr/share/icons/hicolor/scalable/apps" \
           "$DEBROOT/usr/share/doc/$PKG"
  cp -a "$BUNDLE" "$DEBROOT/opt/$APP"
  write_wrapper "$DEBROOT/usr/bin/$APP" "/opt/$APP"
  cp "$DESKTOP" "$DEBROOT/usr/share/applications/$APP.desktop"
  cp "$ICON.png" "$DEBROOT/usr/share/icons/hicolor/256x256/apps/$APP.png"
  cp "$ICON.svg" "$DEBROOT/usr/share/icons/hicolor/scalable/apps/$APP.svg"
  cp "$ROOT/LICENSE" "$DEBROOT/usr/share/doc/$PKG/copyright"
  gzip -9n -c "$ROOT/THIRD_PARTY_LICENSES.md" >"$DEBROOT/usr/share/doc/$PKG/THIRD_PARTY_LICENSES.md.gz"
  # Dependencies: the system libraries the bundle links to but does not carry (libc, GL,
  # fontconfig, X11/xcb, ...), found with ldd and mapped to their packages with dpkg -S.
  DEPENDS="$("$PYTHON" "$ROOT/packaging/linux/deb_depends.py" "$DEBROOT/opt/$APP")"
  RECOMMENDS="ffmpeg"
  [ -n "$FFMPEG" ] && RECOMMENDS=""
  CONFLICTS=audio-restorer-lite
  [ "$PKG" = audio-restorer-lite ] && CONFLICTS=audio-restorer
  cat >"$DEBROOT/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: $DEB_ARCH
Maintainer: Audio Restorer contributors <audio-restorer@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$DEBROOT" | cut -f1)
Depends: $DEPENDS
${RECOMMENDS:+Recommends: $RECOMMENDS
}Conflicts: $CONFLICTS
Section: sound
Priority: optional
Homepage: https://github.com/audio-restorer/audio-restorer
Description: offline restoration of historical and degraded recordings
 Audio Restorer restores 78 rpm shellac, cylinders, tape, vinyl and MP3 sources: declick,
 decrackle, denoise, dehum, EQ, speed and wow/flutter correction, separation, loudness.
 Everything runs offline; every output gets a provenance report. Variant: $VARIANT.
EOF
  find "$DEBROOT" -type d -exec chmod 755 {} +
  DEB="$OUT/${PKG}_${VERSION}_${DEB_ARCH}.deb"
  fakeroot dpkg-deb --build -Z"$DEB_COMPRESSION" "$DEBROOT" "$DEB" >/dev/null
  echo "    $DEB"
fi

# --- 4. .tar.gz and .run ---------------------------------------------------------------------
if want tar || want run; then
  TARROOT="$STAGE/$BASENAME"
  mkdir -p "$TARROOT/share"
  cp -a "$BUNDLE" "$TARROOT/$APP"
  cp "$DESKTOP" "$ICON.png" "$ICON.svg" "$TARROOT/share/"
  cp "${LICENCES[@]}" "$TARROOT/"
  cp "$ROOT/packaging/linux/install.sh" "$TARROOT/install.sh"
  chmod 755 "$TARROOT/install.sh"
  printf 'Audio Restorer %s (%s)\n\nRun it in place: ./%s/%s   (no arguments: the window)\nInstall for yourself: ./install.sh   (or as root, for everyone: ./install.sh --system)\nUninstall: ./install.sh --uninstall\n' \
    "$VERSION" "$VARIANT" "$APP" "$APP" >"$TARROOT/README.txt"
  if want tar; then
    note ".tar.gz"
    tar -C "$STAGE" -czf "$OUT/$BASENAME.tar.gz" "$BASENAME"
    echo "    $OUT/$BASENAME.tar.gz"
  fi
  if want run; then
    note ".run (makeself)"
    command -v makeself >/dev/null || die "makeself is not installed (Debian package makeself)"
    makeself --quiet --xz --nox11 "$TARROOT" "$OUT/$BASENAME.run" \
      "Audio Restorer $VERSION ($VARIANT)" ./install.sh
    echo "    $OUT/$BASENAME.run"
  fi
fi

note "sizes"
for f in "$BUNDLE" "$OUT/$BASENAME".* "$OUT/${PKG}_${VERSION}_${DEB_ARCH}.deb"; do
  [ -e "$f" ] && printf '  %8s  %s\n' "$(du -sh "$f" | cut -f1)" "$f"
done
exit 0
