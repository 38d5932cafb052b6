"""Quick comparison of declick/decrackle/declip against ffmpeg's adeclick/adeclip.

Seeded synthetic material (piano-like notes, plucked strings, castanet-like strokes), 4 s at
44.1 kHz stereo. Prints SI-SDR (input and output, dB), detection recall/precision and speed as
"x real time" = audio seconds / CPU seconds (our stage: time.process_time(); ffmpeg: child CPU
time from getrusage). Run with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1.

    PYTHONPATH=src python scripts/bench_impulsive.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(__file__))
from _impulsive_material import add_clicks, castanets, karplus_strong, piano_like
from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.stages.declick import Declick, Decrackle
from audio_restorer.stages.declip import Declip

RATE = 44100
SECONDS = 4.0


def ffmpeg(audio: np.ndarray, filt: str) -> tuple[np.ndarray, float]:
    """Run an ffmpeg audio filter on (channels, frames) float audio; returns output, CPU s."""
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.wav"), os.path.join(d, "out.wav")
        sf.write(src, audio.T, RATE, subtype="FLOAT")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-threads",
                "1",
                "-i",
                src,
                "-af",
                filt,
                "-c:a",
                "pcm_f32le",
                dst,
            ],
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out, _ = sf.read(dst, dtype="float32", always_2d=True)
        return out.T[:, : audio.shape[1]], cpu


def ours(stage, audio: np.ndarray) -> tuple[np.ndarray, float]:
    t0 = time.process_time()
    out = stage(audio, RATE)
    return out, time.process_time() - t0


SENTENCES = (
    "The quick brown fox jumps over the lazy dog. Peter picked a peck of pickled peppers.",
    "Please stop talking about the big black bag; kick the ball, catch it quickly.",
)


def speech() -> np.ndarray | None:
    """Two espeak-ng sentences (22.05 kHz, resampled with soxr), or None without espeak-ng."""
    import shutil

    import soxr

    if shutil.which("espeak-ng") is None:
        return None
    chans = []
    with tempfile.TemporaryDirectory() as d:
        for i, text in enumerate(SENTENCES):
            path = os.path.join(d, f"s{i}.wav")
            subprocess.run(["espeak-ng", "-w", path, text], check=True)
            x, r = sf.read(path)
            x = soxr.resample(x, r, RATE)[: int(RATE * SECONDS)]
            chans.append(np.pad(x, (0, int(RATE * SECONDS) - x.size)) / np.max(np.abs(x)) * 0.5)
    return np.stack(chans)


def material(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, gen in (("piano", piano_like), ("strings", karplus_strong), ("castanets", castanets)):
        left, right = gen(RATE, SECONDS, rng), gen(RATE, SECONDS, rng)
        out[name] = np.stack([left, 0.6 * left + 0.4 * right])
    voice = speech()
    if voice is not None:
        out["speech"] = voice
    return out


def bench_clicks(label: str, stage, width: int, count: int, amp: tuple[float, float]) -> None:
    print(f"\n== {label}: {count} clicks/channel, widths 1-{width}, amplitude {amp}")
    print(
        f"{'clip':10s} {'in':>6s} {'ours':>6s} {'ffmpeg best':>12s} {'recall':>7s} "
        f"{'prec':>6s} {'ours xRT':>9s} {'ffmpeg xRT':>10s} {'clean->':>8s}"
    )
    gains = []
    for name, clean in material(1).items():
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        dirty = np.empty_like(clean)
        truths = []
        for c in range(2):
            dirty[c], t = add_clicks(
                clean[c], RATE, count, rng, max_width=width, min_amp=amp[0], max_amp=amp[1]
            )
            truths.append(t)
        audio = dirty.astype(np.float32)
        out, cpu = ours(stage, audio)
        mask = stage.detect(audio, RATE)
        hits = sum(bool(mask[c, s:e].any()) for c in range(2) for s, e in truths[c])
        near = np.zeros_like(mask)
        for c in range(2):
            for s, e in truths[c]:
                near[c, max(0, s - 3) : e + 3] = True
        d = np.diff(mask.astype(np.int8), axis=1, prepend=0, append=0)
        bursts = [(c, a) for c in range(2) for a in np.flatnonzero(d[c] == 1)]
        stops = [b for c in range(2) for b in np.flatnonzero(d[c] == -1)]
        true_b = sum(near[c, a:b].any() for (c, a), b in zip(bursts, stops, strict=True))
        best, best_cpu = -np.inf, 0.0
        for t in (1, 2, 4, 8):
            for a in (2, 8, 16):
                f_out, f_cpu = ffmpeg(audio, f"adeclick=t={t}:a={a}")
                score = si_sdr(clean, f_out)
                if score > best:
                    best, best_cpu = score, f_cpu
        clean_out, _ = ours(stage, clean.astype(np.float32))
        score = si_sdr(clean, out)
        gains.append(score - best)
        print(
            f"{name:10s} {si_sdr(clean, audio):6.1f} {score:6.1f} {best:12.1f} "
            f"{hits / (2 * count):7.1%} {true_b / max(1, len(bursts)):6.1%} "
            f"{SECONDS / cpu:9.1f} {SECONDS / best_cpu:10.1f} {si_sdr(clean, clean_out):8.1f}"
        )
    print(f"median SI-SDR advantage over best adeclick: {np.median(gains):+.1f} dB")


def bench_declip() -> None:
    print("\n== declip: hard clipping at 50 % and 30 % of the peak")
    print(
        f"{'clip':14s} {'in':>6s} {'ours':>6s} {'adeclip':>8s} {'ours xRT':>9s} {'ffmpeg xRT':>10s}"
    )
    gains = []
    for name, clean in material(2).items():
        clean = clean / np.max(np.abs(clean))
        for level in (0.5, 0.3):
            audio = np.clip(clean, -level, level).astype(np.float32)
            out, cpu = ours(Declip(), audio)
            best, best_cpu = -np.inf, 0.0
            for t in (5, 10, 20):
                f_out, f_cpu = ffmpeg(audio, f"adeclip=t={t}")
                if si_sdr(clean, f_out) > best:
                    best, best_cpu = si_sdr(clean, f_out), f_cpu
            score = si_sdr(clean, out)
            gains.append(score - best)
            print(
                f"{name + ' ' + str(level):14s} {si_sdr(clean, audio):6.1f} {score:6.1f} "
                f"{best:8.1f} {SECONDS / cpu:9.1f} {SECONDS / best_cpu:10.1f}"
            )
    print(f"median SI-SDR advantage over best adeclip: {np.median(gains):+.1f} dB")


if __name__ == "__main__":
    bench_clicks("declick", Declick(), 40, 50, (0.05, 0.6))
    bench_clicks("decrackle", Decrackle(), 3, 400, (0.02, 0.2))
    bench_declip()
