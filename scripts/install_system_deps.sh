#!/usr/bin/env bash
# Debian/Ubuntu packages used beyond Python: Qt's X11/EGL libraries for the GUI, PulseAudio
# client for playback, ffmpeg and SoX (benchmark peers, MP3 tools), fluidsynth + General MIDI
# sound font and espeak-ng (benchmark material), xvfb (screenshots), makeself (installer).
set -euo pipefail
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install_system_deps: needs root and apt-get; skipping" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 \
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libpulse0 \
  ffmpeg sox libsox-fmt-all fluidsynth fluid-soundfont-gm espeak-ng xvfb makeself
