#!/usr/bin/env bash
# macOS: build "Audio Restorer.app" with the shared spec and wrap it in a .dmg (offline).
# Run on a Mac (Apple silicon or Intel; the build matches the Python it runs on) in the
# project's venv. Not run on the Linux build machine: see docs/packaging.md.
#   packaging/macos/make_dmg.sh [full|lite]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VARIANT="${1:-full}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
VERSION="$("$PY" -c 'import audio_restorer; print(audio_restorer.__version__)')"
ICONSET="$ROOT/build/audio-restorer.iconset"
# the .icns is made here from the committed PNG/SVG (iconutil and sips ship with macOS)
rm -rf "$ICONSET"; mkdir -p "$ICONSET"
for s in 16 32 128 256; do
  sips -z $s $s "$ROOT/packaging/icons/audio-restorer.png" --out "$ICONSET/icon_${s}x${s}.png" >/dev/null
  d=$((s * 2)); [ $d -le 256 ] && sips -z $d $d "$ROOT/packaging/icons/audio-restorer.png" --out "$ICONSET/icon_${s}x${s}@2x.png" >/dev/null
done
iconutil -c icns "$ICONSET" -o "$ROOT/packaging/icons/audio-restorer.icns"
AR_VARIANT="$VARIANT" AR_VERSION="$VERSION" "$PY" -m PyInstaller --noconfirm \
  --distpath "$ROOT/dist/$VARIANT" --workpath "$ROOT/build/$VARIANT" "$ROOT/packaging/audio_restorer.spec"
APP="$ROOT/dist/$VARIANT/Audio Restorer.app"
"$APP/Contents/MacOS/audio-restorer" --version
# ad-hoc signature so Gatekeeper on the build Mac accepts it; sign and notarise with a
# Developer ID for distribution: codesign --deep --options runtime -s "Developer ID ..." "$APP"
codesign --force --deep -s - "$APP"
mkdir -p "$ROOT/dist/packages"
STAGE="$ROOT/build/dmg-$VARIANT"; rm -rf "$STAGE"; mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"; ln -s /Applications "$STAGE/Applications"
cp "$ROOT/THIRD_PARTY_LICENSES.md" "$ROOT/LICENSE" "$STAGE/"
hdiutil create -volname "Audio Restorer $VERSION" -srcfolder "$STAGE" -ov -format UDZO \
  "$ROOT/dist/packages/audio-restorer-$VERSION-$VARIANT-macos-$(uname -m).dmg"
