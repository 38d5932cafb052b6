"""``audio-restorer simulate``: damage a clean file the way a carrier would, with ground truth.

Writes the damaged file, the clean reference aligned to it (``<out>.reference.wav``) and the
ground truth (``<out>.truth.json`` with every setting drawn, ``<out>.truth.npz`` with the click,
clip and dropout masks and the wow time map). Archivists use it to hear what a restoration
setting does to a known defect; the benchmark uses the same code through the Python API.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from audio_restorer.audio.io import sf_path
from audio_restorer.errors import AudioFileError, AudioRestorerError, OutputError
from audio_restorer.evaluation.simulate import CARRIERS, Degraded, simulate

#: extensions the simulator writes, and the libsndfile subtype used for each
_FORMATS = {".wav": "FLOAT", ".flac": "PCM_24"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``simulate`` sub-command to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "simulate",
        help="degrade a clean file like a carrier would (for demos and benchmarks)",
        description=textwrap.fill(
            "Apply a carrier's degradation recipe (clicks, crackle, hiss, hum, clipping, "
            "band-limiting, wow & flutter, distortion, MP3 coding, dropouts) to a clean file. "
            "Also writes OUT.reference.wav (the clean signal aligned to OUT), OUT.truth.json "
            "(settings used) and OUT.truth.npz (click/clip/dropout masks, wow time map)."
        ),
        epilog="carriers:\n"
        + "\n".join(
            f"  {name:10s} {(recipe.__doc__ or '').strip().splitlines()[0]}"
            for name, recipe in CARRIERS.items()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="IN", help="clean input audio file")
    parser.add_argument("-o", "--output", metavar="OUT", required=True, help="output .wav/.flac")
    parser.add_argument("--carrier", choices=sorted(CARRIERS), default="shellac78")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file)")
    parser.set_defaults(func=run)
    return parser


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Read a file as float32 ``(channels, frames)`` (the one place that touches the input)."""
    import soundfile as sf

    if not path.is_file():
        raise AudioFileError(path, "no such file")
    try:
        data, rate = sf.read(sf_path(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFileError(path, f"cannot read audio: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioFileError(path, "the file holds no audio frames")
    return np.ascontiguousarray(data.T), int(rate)


def write_audio(path: Path, audio: np.ndarray, rate: int) -> None:
    """Write float32 ``(channels, frames)`` as WAV (32-bit float) or FLAC (24-bit)."""
    import soundfile as sf

    subtype = _FORMATS.get(path.suffix.lower())
    if subtype is None:
        raise OutputError(path, f"output must end in {' or '.join(_FORMATS)}")
    try:
        sf.write(sf_path(path), audio.T, rate, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise OutputError(path, f"cannot write: {exc}") from exc


def write_result(out: Path, result: Degraded) -> list[Path]:
    """Write the damaged audio, its reference and the ground truth next to ``out``."""
    audio, reference = result.audio, result.reference
    scale = 1.0
    if out.suffix.lower() != ".wav":
        # integer formats cannot hold peaks above full scale: scale both files alike
        peak = float(max(np.abs(audio).max(), np.abs(reference).max()))
        if peak > 1.0:
            scale = 0.99 / peak
    ref_path = out.with_name(out.stem + ".reference" + out.suffix)
    json_path = out.with_name(out.stem + ".truth.json")
    npz_path = out.with_name(out.stem + ".truth.npz")
    write_audio(out, audio * np.float32(scale), result.rate)
    write_audio(ref_path, reference * np.float32(scale), result.rate)
    truth = {
        "output": out.name,
        "reference": ref_path.name,
        "rate": result.rate,
        "hum_hz": result.hum_hz,
        "scale": scale,
        "params": result.params,
    }
    try:
        json_path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
        arrays = {"click_mask": result.click_mask, "clip_mask": result.clip_mask}
        if result.time_map is not None:
            arrays["time_map"] = result.time_map
        if result.dropout_mask is not None:
            arrays["dropout_mask"] = result.dropout_mask
        np.savez_compressed(npz_path, **arrays)
    except OSError as exc:
        raise OutputError(json_path, f"cannot write ground truth: {exc}") from exc
    return [out, ref_path, json_path, npz_path]


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit code (0 ok, 1 failure, 2 bad usage)."""
    src, out = Path(args.input), Path(args.output)
    if out.suffix.lower() not in _FORMATS:
        print(f"error: {out}: output must end in {' or '.join(_FORMATS)}", file=sys.stderr)
        return 2
    if out.resolve() == src.resolve():
        print(f"error: {out}: output would overwrite the input", file=sys.stderr)
        return 2
    try:
        clean, rate = read_audio(src)
        result = simulate(clean, rate, carrier=args.carrier, seed=args.seed)
        written = write_result(out, result)
    except AudioRestorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    steps = ", ".join(s["step"] for s in result.params["steps"])
    print(f"{src} -> {out} ({args.carrier}, seed {args.seed}: {steps})")
    for path in written[1:]:
        print(f"  wrote {path}")
    return 0
