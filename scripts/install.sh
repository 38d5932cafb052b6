#!/usr/bin/env bash
# Install Audio Restorer with everything it needs (GUI, ML stages, benchmark peers, dev tools)
# into ./.venv. Works offline against a local package mirror; needs Python 3.11+.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
# torch first, pinned: an unpinned torch (or one pulled in by another package) is the
# multi-GB CUDA build; 2.13.0 resolves to the CPU wheel.
pip install "torch==2.13.0"
pip install -e ".[gui,ml,bench,dev,pack]"
# demucs and torchcrepe declare torchaudio, which cannot load on CPU-only machines and is only
# used by them to read files: install them without it (their real needs are in the [ml] extra).
pip install --no-deps "demucs==4.1.0" "torchcrepe==0.0.24"
echo "Audio Restorer installed in .venv ($(.venv/bin/audio-restorer --version))"
