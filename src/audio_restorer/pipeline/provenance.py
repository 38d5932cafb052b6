"""Provenance: what was done to a recording, recorded with the result (archival practice).

Every output gets a sidecar ``<output>.restoration.json`` (inputs and outputs with their sizes
and SHA-256, software and dependency versions, the full chain with every parameter, models,
device, timings, measurements before and after) and WAV outputs carry a BWF ``bext`` chunk whose
CodingHistory lists the chain as EBU R98-style lines.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import sys
from pathlib import Path
from typing import Any

import soundfile as sf

from audio_restorer import __version__
from audio_restorer.audio.bwf import BextInfo
from audio_restorer.audio.io import AudioInfo
from audio_restorer.stages.base import Stage
from audio_restorer.util import atomic_write_text, package_version

FORMAT = "audio-restorer-provenance"
VERSION = 1
_DEPENDENCIES = (
    "numpy",
    "scipy",
    "soundfile",
    "soxr",
    "pyloudnorm",
    "platformdirs",
    "torch",
    "demucs",
    "torchcrepe",
    "PySide6-Essentials",
)
_CODING = {"MP3": "MPEG1L3", "OGG": "VORBIS"}


def sidecar_path(output: Path) -> Path:
    return output.with_name(output.name + ".restoration.json")


def software_versions() -> dict[str, Any]:
    deps = {name: package_version(name) for name in _DEPENDENCIES}
    deps = {k: v for k, v in deps.items() if v is not None}
    deps["libsndfile"] = sf.__libsndfile_version__
    return {
        "name": "audio-restorer",
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "dependencies": deps,
    }


def _mode(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, "multitrack")


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def coding_history(
    source: AudioInfo, stages: list[Stage], rate: int, channels_after: list[int]
) -> list[str]:
    """EBU R98-style lines: the source, then one line per stage (processing in 32-bit float)."""
    algo = source.subtype if source.decoder else _CODING.get(source.format, "PCM")
    word = f",W={source.bits}" if source.bits else ""
    via = f" decoded by {source.decoder}" if source.decoder else ""
    lines = [
        f"A={algo},F={source.rate}{word},M={_mode(source.channels)},"
        f"T=source {_ascii(Path(source.path).name)}{_ascii(via)}"
    ]
    for stage, channels in zip(stages, channels_after, strict=True):
        values = "; ".join(f"{k}={v}" for k, v in stage.params.to_dict().items())
        lines.append(
            f"A=PCM,F={rate},W=32,M={_mode(channels)},"
            f"T=Audio Restorer {__version__} {stage.name}({_ascii(values)})"
        )
    return lines


def build_bext(
    source: AudioInfo, input_sha256: str, input_mtime: float, history: list[str]
) -> BextInfo:
    """The ``bext`` chunk. Its date and time are the source file's modification time (the
    origin of the audio), so the same input always gives the same bytes; the processing time is
    in the sidecar."""
    when = dt.datetime.fromtimestamp(input_mtime, dt.UTC)
    return BextInfo(
        description=_ascii(f"Restored access copy of {Path(source.path).name}"),
        originator="Audio Restorer",
        originator_reference=input_sha256[:32],
        origination_date=when.strftime("%Y-%m-%d"),
        origination_time=when.strftime("%H:%M:%S"),
        coding_history=history,
    )


def chain_report(stages: list[Stage]) -> list[dict[str, Any]]:
    return [
        {
            "stage": s.name,
            "title": s.title,
            "params": s.params.to_dict(),
            "changes_length": s.changes_length,
        }
        for s in stages
    ]


def write_report(path: Path, report: dict[str, Any]) -> Path:
    """Write ``report`` as JSON; a measurement that is not a number (NaN, e.g. the loudness
    range of a file too short to have one) is written as null, as JSON has no NaN."""
    atomic_write_text(path, json.dumps(_finite(report), indent=2, allow_nan=False) + "\n")
    return path


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
