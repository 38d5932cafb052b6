#!/bin/sh
# Install (or uninstall) Audio Restorer from this unpacked folder: the .run installer runs
# this script; from the .tar.gz run it yourself. Offline; needs only a POSIX shell.
#   ./install.sh              install for the current user (~/.local/opt, ~/.local/bin)
#   ./install.sh --system     install for everyone (/opt + /usr/local/bin; run as root)
#   ./install.sh --prefix DIR install the app folder under DIR
#   ./install.sh --uninstall  remove what an earlier install put in place
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
APP=audio-restorer
MODE=user
PREFIX=""
UNINSTALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --system) MODE=system; shift ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$MODE" = system ]; then
  : "${PREFIX:=/opt}"; BIN=/usr/local/bin; SHARE=/usr/local/share
else
  # not ~/.local/share/audio-restorer: that is the app's user data folder (your models)
  : "${PREFIX:=$HOME/.local/opt}"; BIN="$HOME/.local/bin"
  SHARE="${XDG_DATA_HOME:-$HOME/.local/share}"
fi
TARGET="$PREFIX/$APP"
if [ "$UNINSTALL" = 1 ]; then
  rm -rf "$TARGET" "$BIN/$APP" "$SHARE/applications/$APP.desktop" \
         "$SHARE/icons/hicolor/256x256/apps/$APP.png" "$SHARE/icons/hicolor/scalable/apps/$APP.svg"
  echo "Audio Restorer removed (your models and settings folders are kept)."
  exit 0
fi
mkdir -p "$PREFIX" "$BIN" "$SHARE/applications" "$SHARE/icons/hicolor/256x256/apps" \
         "$SHARE/icons/hicolor/scalable/apps"
rm -rf "$TARGET.new"
cp -R "$HERE/$APP" "$TARGET.new"
rm -rf "$TARGET"
mv "$TARGET.new" "$TARGET"
cat >"$BIN/$APP" <<WRAP
#!/bin/sh
APPDIR="$TARGET"
[ -d "\$APPDIR/bin" ] && PATH="\$APPDIR/bin:\$PATH" && export PATH
exec "\$APPDIR/$APP" "\$@"
WRAP
chmod 755 "$BIN/$APP"
sed "s|^Exec=audio-restorer|Exec=$BIN/$APP|; s|^TryExec=audio-restorer|TryExec=$BIN/$APP|" \
  "$HERE/share/$APP.desktop" >"$SHARE/applications/$APP.desktop"
cp "$HERE/share/$APP.png" "$SHARE/icons/hicolor/256x256/apps/$APP.png"
cp "$HERE/share/$APP.svg" "$SHARE/icons/hicolor/scalable/apps/$APP.svg"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$SHARE/applications" || true
echo "Audio Restorer installed in $TARGET; command: $BIN/$APP"
case ":$PATH:" in *":$BIN:"*) ;; *) echo "(add $BIN to your PATH to run it as '$APP')" ;; esac
