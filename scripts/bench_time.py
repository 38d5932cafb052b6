"""Benchmark the time/channel stages on seeded synthetic material (numbers for docs/bench/time.md).

Run with one thread so "x real time" is audio seconds per CPU second:
``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src:tests python
scripts/bench_time.py [--crepe]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _time_signals import make_clip, speed_curve
from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.stages.channels import Channels
from audio_restorer.stages.wowflutter import CENTS, WowFlutter

RATE = 44100
WOW_FLUTTER = [(0.55, 0.003, 0.3), (6.0, 0.001, 1.0)]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def wowflutter_rows(engine: str, model: str, seconds: float) -> None:
    for voices in (1, 2, 3):
        _, warped = make_clip(seconds, RATE, WOW_FLUTTER, seed=voices, voices=voices)
        stage = WowFlutter(engine=engine, model=model)
        t0 = time.process_time()
        an = stage.analyzer(RATE, 1)
        an.update(warped)
        tm = an.result()
        out = stage.process(warped, RATE, analysis=tm)
        cpu = time.process_time() - t0
        t = np.arange(tm.correction_cents.size) * tm.hop_s
        true = np.log(speed_curve(t, WOW_FLUTTER)) * CENTS
        true -= true.mean()
        core = slice(50, -50)
        probe = WowFlutter(vibrato_protection=0.0).analyzer(RATE, 1)
        probe.update(out)
        residual = rms(probe.result().correction_cents[core])
        print(
            f"| wowflutter {engine}/{model} | {voices} voice(s) | deviation {rms(true[core]):.2f} c"
            f" | curve error {rms(tm.correction_cents[core] - true[core]):.2f} c"
            f" | residual (re-measured) {residual:.2f} c | {seconds / cpu:.1f}x RT |"
        )


def steady_rows(seconds: float) -> None:
    """SI-SDR loss on music without wow (input: clean + white noise)."""
    for voices in (1, 2, 3):
        for level in (0.01, 0.03):
            clean, _ = make_clip(seconds, RATE, [(1.0, 0.0, 0.0)], seed=voices, voices=voices)
            rng = np.random.default_rng(0)
            noisy = clean + level * rng.standard_normal(clean.shape).astype(np.float32)
            out = WowFlutter()(noisy, RATE)
            loss = si_sdr(clean, noisy) - si_sdr(clean, out)
            print(f"| steady {voices} voice(s), noise {level} | SI-SDR loss {loss:.2f} dB |")


def walls_row(seconds: float) -> None:
    clean, _ = make_clip(seconds, RATE, [(1.0, 0.0, 0.0)], seed=3, voices=3)
    rng = np.random.default_rng(0)
    m = clean[0]
    nl = 0.02 * rng.standard_normal(m.size)
    nr = 0.05 * rng.standard_normal(m.size)
    for i in rng.integers(0, m.size // 2, 40):
        nr[i : i + 40] += rng.uniform(-0.8, 0.8)
    for i in rng.integers(m.size // 2, m.size - 40, 40):
        nl[i : i + 40] += rng.uniform(-0.8, 0.8)
    x = np.stack([m + nl, m + nr]).astype(np.float32)
    for mode in ("lateral", "left", "right", "best"):
        stage = Channels(mode=mode, azimuth=False)
        t0 = time.process_time()
        y = stage(x, RATE)
        cpu = time.process_time() - t0
        print(f"| channels {mode} | SI-SDR {si_sdr(clean, y):.2f} dB | {seconds / cpu:.0f}x RT |")


if __name__ == "__main__":
    print(f"rate {RATE} Hz")
    wowflutter_rows("builtin", "tiny", 10.0)
    steady_rows(6.0)
    if "--crepe" in sys.argv:
        wowflutter_rows("crepe", "tiny", 4.0)
        wowflutter_rows("crepe", "full", 4.0)
    walls_row(5.0)
