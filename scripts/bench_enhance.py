#!/usr/bin/env python3
"""Measure the ``enhance`` stage on the clips held out from its training (by source).

For every held-out clip (with the benchmark's 0.5 s lead-in and its seeds: ``crc32(task/clip)``)
the shellac78 and cylinder carriers are simulated and restored by:

* ``none`` (the degraded input), the DSP chain of the benchmark's shellac78 task
  (dehum, declick, decrackle, denoise), the same chain followed by ``enhance`` (strength 1 and
  0.5), and ``enhance`` alone;
* the ``shellac78`` preset as shipped, and with ``enhance`` inserted after ``denoise``;
* the peers of ``scripts/bench_peers.py`` at their default settings.

Clean input is run through ``enhance`` alone and through the DSP chain with and without it.
Scores: SI-SDR against the (warped) clean reference, its improvement over the input, and the
log-spectral distance. Speed: audio seconds / CPU seconds, one thread.

Usage::

    python scripts/bench_enhance.py [--no-peers] [--json .bench/enhance.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import benchmark as B  # noqa: E402, N812
from audio_restorer.evaluation import metrics as M  # noqa: E402, N812
from audio_restorer.evaluation import simulate as S  # noqa: E402, N812
from audio_restorer.stages.registry import create_stage  # noqa: E402
from train_enhance import DSP_CHAIN, bench_clips, with_lead  # noqa: E402

PEER_NAMES = ("afftdn", "afftdn_tn", "sox_noisered", "noisereduce", "adeclick")


def run_chain(stages: list, audio: np.ndarray, rate: int) -> np.ndarray:
    out = audio
    for stage in stages:
        out = stage(out, rate)
    return out


def preset_parts() -> tuple[list, list]:
    """The enabled stages of the ``shellac78`` preset: up to ``denoise``, and after it."""
    from audio_restorer.pipeline.presets import load_preset

    head, tail = [], []
    for config in load_preset("shellac78").chain.stages:
        if config.enabled:
            after = bool(tail) or (bool(head) and head[-1].name == "denoise")
            (tail if after else head).append(config.build())
    return head, tail


def scores(ref: np.ndarray, degraded: np.ndarray, out: np.ndarray, rate: int) -> dict:
    out, _ = B.align(out, degraded, rate)
    s = M.si_sdr(ref, out)
    return {
        "si_sdr": s,
        "si_sdr_i": s - M.si_sdr(ref, degraded),
        "lsd": M.log_spectral_distance(ref, out, rate),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", type=Path, default=ROOT / "bench-data" / "clean")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--carriers", nargs="*", default=["shellac78", "cylinder"])
    parser.add_argument("--json", type=Path, default=ROOT / ".bench" / "enhance.json")
    args = parser.parse_args(argv)
    from bench_peers import PEERS

    rate = 44100
    clips = [(cid, with_lead(a)) for cid, a in bench_clips(args.clean, held_out=True)]
    dsp = [create_stage(n, {}) for n in DSP_CHAIN]
    enh = create_stage("enhance", {})
    enh_half = create_stage("enhance", {"strength": 0.5})
    head, tail = preset_parts()
    #: name -> (cached intermediate it starts from, stages)
    systems = {
        "dsp chain": ("input", dsp),
        "dsp chain + enhance": ("dsp chain", [enh]),
        "dsp chain + enhance 0.5": ("dsp chain", [enh_half]),
        "enhance alone": ("input", [enh]),
        "preset head": ("input", head),
        "preset shellac78": ("preset head", tail),
        "preset shellac78 + enhance": ("preset head", [enh, *tail]),
    }
    results: dict = {"clips": [c for c, _ in clips], "carriers": {}}
    cpu = {"enhance_s": 0.0, "audio_s": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for carrier in [*args.carriers, "clean"]:
            rows: dict[str, dict] = {}
            for cid, clean in clips:
                if carrier == "clean":
                    degraded, ref = clean, clean
                else:
                    seed = zlib.crc32(f"{carrier}/{cid}".encode())
                    d = B._carrier(carrier)(clean, rate, np.random.default_rng(seed))
                    degraded = d.audio
                    ref = d.warped_reference if d.warped_reference is not None else d.reference
                rows.setdefault("none", {})[cid] = scores(ref, degraded, degraded, rate)
                if carrier != "clean":
                    # what a perfect noise remover without bandwidth extension could reach:
                    # the reference through the recipe's own band-limit (and distortion)
                    inner = int(np.random.default_rng(seed).integers(2**31))
                    steps = S.CARRIERS[carrier](np.random.default_rng(inner), rate)
                    kept = [st for st in steps if st[0] in ("band_limit", "distort")]
                    limited = S.apply_steps(ref, rate, kept[:1], rng=np.random.default_rng(0))
                    both = S.apply_steps(ref, rate, kept, rng=np.random.default_rng(0))
                    rows.setdefault("ceiling: band-limited reference", {})[cid] = scores(
                        ref, degraded, limited.audio, rate
                    )
                    rows.setdefault("ceiling: band-limited + distorted reference", {})[cid] = (
                        scores(ref, degraded, both.audio, rate)
                    )
                outputs = {"input": degraded}
                for name, (start, stages) in systems.items():
                    if carrier == "clean" and name.startswith("preset"):
                        continue
                    c0 = time.process_time()
                    outputs[name] = out = run_chain(stages, outputs[start], rate)
                    if name == "enhance alone":
                        cpu["enhance_s"] += time.process_time() - c0
                        cpu["audio_s"] += degraded.shape[1] / rate
                    if name != "preset head":
                        rows.setdefault(name, {})[cid] = scores(ref, degraded, out, rate)
                if not args.no_peers and carrier != "clean":
                    for pname in PEER_NAMES:
                        peer = PEERS[pname]
                        setting = peer.settings[peer.default]
                        out = B.run_peer(setting, degraded, rate, 50.0, Path(tmp))
                        rows.setdefault(f"peer {pname}", {})[cid] = scores(ref, degraded, out, rate)
                print(f"{carrier} {cid} done", flush=True)
            results["carriers"][carrier] = rows
    results["enhance_x_real_time"] = cpu["audio_s"] / max(cpu["enhance_s"], 1e-9)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(report(results))
    return 0


def report(results: dict) -> str:
    lines = [f"held-out clips ({len(results['clips'])}): {', '.join(results['clips'])}", ""]
    for carrier, rows in results["carriers"].items():
        lines += [
            f"### {carrier}",
            "",
            "| system | median SI-SDR dB | median SI-SDRi dB | median LSD dB | clips improved "
            "over dsp chain |",
            "|---|---|---|---|---|",
        ]
        base = rows.get("dsp chain", {})
        for name, clip_rows in rows.items():
            vals = list(clip_rows.values())
            med = {k: float(np.median([v[k] for v in vals])) for k in vals[0]}
            better = sum(
                1 for c, v in clip_rows.items() if c in base and v["si_sdr"] > base[c]["si_sdr"]
            )
            lines.append(
                f"| {name} | {med['si_sdr']:.2f} | {med['si_sdr_i']:+.2f} | {med['lsd']:.2f} | "
                f"{better}/{len(vals)} |"
            )
        lines.append("")
    lines.append(f"enhance alone: {results['enhance_x_real_time']:.1f} x real time (1 thread)")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
