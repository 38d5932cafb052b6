"""Benchmarks of the separation stage: HPSS speed and quality, Demucs wrapper overhead, memory.

Run with one thread per library so the CPU times mean something on a shared machine::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        PYTHONPATH=src python scripts/bench_separation.py [--demucs-seconds 12] [--memory S]

"x real time" is audio seconds / CPU seconds (``time.process_time``). The Demucs model is a
randomly initialised default-size HTDemucs (the architecture and size of ``htdemucs``): the
speed and memory of a network do not depend on its weights.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from audio_restorer.evaluation.metrics import si_sdr
from audio_restorer.separation import create_backend
from audio_restorer.separation.hpss import HpssSettings, hpss
from audio_restorer.separation.streaming import separate_in_blocks
from audio_restorer.stages import create_stage

RATE = 44100


def tone_and_clicks(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic notes with vibrato (stereo) and decaying noise bursts (drum-like clicks)."""
    r = np.random.default_rng(seed)
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    harm = np.zeros(n)
    note = int(0.5 * RATE)
    for s in range(0, n, note):
        f0 = 110 * 2 ** (r.integers(0, 24) / 12)
        seg = t[s : s + note] - t[s]
        ph = 2 * np.pi * (f0 * seg + 0.01 * f0 * np.sin(2 * np.pi * 5 * seg) / (2 * np.pi * 5))
        harm[s : s + note] = sum(0.3 / k * np.sin(k * ph) for k in range(1, 8) if k * f0 < 8000)
    perc = np.zeros(n)
    for p in r.choice(np.arange(n - 2000), int(seconds * 4), replace=False):
        burst = r.standard_normal(1500) * np.exp(-np.arange(1500) / (0.004 * RATE))
        perc[p : p + 1500] += 0.5 * burst
    return (
        np.stack([harm, 0.8 * harm]).astype(np.float32),
        np.stack([perc, perc]).astype(np.float32),
    )


def bench_hpss() -> None:
    harm, perc = tone_and_clicks(30.0, 0)
    mix = harm + perc
    s = HpssSettings(RATE)
    t0 = time.process_time()
    hpss(mix, s)
    whole = time.process_time() - t0
    stage = create_stage("separate", {"stems": "harmonic,percussive", "mode": "mix"})
    stream = stage.open(RATE, 2)
    t0 = time.process_time()
    for i in range(0, mix.shape[1], 1 << 16):
        stream.push(mix[:, i : i + (1 << 16)])
    stream.finish()
    staged = time.process_time() - t0
    print(
        f"HPSS speed, 30 s stereo 44.1 kHz: whole array {30 / whole:.0f}x real time, "
        f"streamed through the separate stage {30 / staged:.0f}x real time"
    )
    print("HPSS quality (SI-SDR dB vs the true parts, mean of 3 seeds, 10 s each):")
    print("  margin  harmonic  percussive  mix-as-harmonic  mix-as-percussive  residual share")
    for margin in (1.0, 2.0, 3.0):
        rows = []
        for seed in (1, 2, 3):
            harm, perc = tone_and_clicks(10.0, seed)
            mix = harm + perc
            out = hpss(mix, HpssSettings(RATE, margin=margin))
            resid = mix - out["harmonic"] - out["percussive"]
            rows.append(
                [
                    si_sdr(harm, out["harmonic"]),
                    si_sdr(perc, out["percussive"]),
                    si_sdr(harm, mix),
                    si_sdr(perc, mix),
                    float(np.sum(resid**2) / np.sum(mix**2)),
                ]
            )
        m = np.mean(rows, axis=0)
        print(
            f"  {margin:6.1f}  {m[0]:8.1f}  {m[1]:10.1f}  {m[2]:15.1f}  {m[3]:17.1f}"
            f"  {100 * m[4]:13.1f} %"
        )


def default_model():
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    kwargs = {"sources": ["drums", "bass", "other", "vocals"]}
    return HTDemucs(**kwargs).eval(), kwargs


def install(model, kwargs) -> str:
    """Save the model as Demucs publishes models, in a temporary user models folder."""
    from demucs.states import get_state, save_with_checksum

    folder = Path(os.environ["AUDIO_RESTORER_DATA_DIR"]) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    package = {
        "klass": type(model),
        "args": (),
        "kwargs": kwargs,
        "state": get_state(model, None, half=True),
        "training_args": {},
    }
    save_with_checksum(package, folder / "b0b0b0b0.th")
    (folder / "benchht.yaml").write_text("models: ['b0b0b0b0']\n")
    return "benchht"


def bench_demucs(seconds: float) -> None:
    import torch
    from demucs.apply import apply_model

    model, kwargs = default_model()
    n_params = sum(p.numel() for p in model.parameters())
    name = install(model, kwargs)
    from audio_restorer.separation import demucs_backend

    t0 = time.process_time()
    loaded, _ = demucs_backend.load(name)
    load_s = time.process_time() - t0
    harm, perc = tone_and_clicks(seconds, 5)
    mix = harm + perc
    x = torch.from_numpy(mix)[None]
    with torch.no_grad():
        apply_model(loaded, x[..., : RATE * 2], shifts=0, split=True)  # warm-up
        t0 = time.process_time()
        direct = apply_model(loaded, x, shifts=0, split=True)[0].numpy()
        direct_s = time.process_time() - t0
    backend = create_backend("demucs", model=name, normalize=False)
    t0 = time.process_time()
    got = separate_in_blocks(backend.open(RATE, 2, "cpu"), mix, 1 << 16, list(loaded.sources))
    wrap_s = time.process_time() - t0
    diff = max(np.max(np.abs(got[s] - direct[k])) for k, s in enumerate(loaded.sources))
    print(
        f"Demucs (random default-size HTDemucs, {n_params / 1e6:.1f} M parameters), "
        f"{seconds:g} s stereo, CPU, 1 thread:"
    )
    print(f"  load through the store {load_s:.2f} s CPU")
    print(
        f"  apply_model directly (shifts=0, split=True): {direct_s:.1f} s CPU "
        f"({seconds / direct_s:.2f}x real time)"
    )
    print(
        f"  streamed wrapper: {wrap_s:.1f} s CPU, overhead {100 * (wrap_s / direct_s - 1):+.1f} %,"
        f" max difference {diff:.2e}"
    )


def memory_child(seconds: float) -> None:
    """Run ``separate`` (demucs, default-size model) on ``seconds`` of generated audio."""
    model, kwargs = default_model()
    name = install(model, kwargs)
    del model
    stage = create_stage("separate", {"backend": "demucs", "model": name, "mode": "mix"})
    rng = np.random.default_rng(0)
    block = 1 << 16
    total = int(seconds * RATE)
    analyzer = stage.analyzer(RATE, 2)
    for i in range(0, total, block):  # the analysis pass, as the runner does it
        analyzer.update(0.1 * rng.standard_normal((2, min(block, total - i))).astype(np.float32))
    stream = stage.open(RATE, 2, analyzer.result())
    stream.stem_sink = lambda stem, data, restored: None
    t0 = time.process_time()
    for i in range(0, total, block):
        stream.push(0.1 * rng.standard_normal((2, min(block, total - i))).astype(np.float32))
    stream.finish()
    cpu = time.process_time() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {seconds:6.0f} s of audio: peak RSS {peak:.0f} MB, {cpu:.0f} s CPU")


def bench_memory(durations: list[float]) -> None:
    print("Peak memory of `separate` (demucs, default-size model, CPU), one process per run:")
    for seconds in durations:
        subprocess.run([sys.executable, __file__, "--memory-child", str(seconds)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demucs-seconds", type=float, default=12.0)
    ap.add_argument("--memory", type=float, nargs="*", default=[])
    ap.add_argument("--memory-child", type=float)
    ap.add_argument("--skip-hpss", action="store_true")
    ap.add_argument("--skip-demucs", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUDIO_RESTORER_DATA_DIR"] = tmp
        if args.memory_child is not None:
            memory_child(args.memory_child)
            return
        if not args.skip_hpss:
            bench_hpss()
        if not args.skip_demucs:
            bench_demucs(args.demucs_seconds)
        if args.memory:
            bench_memory(args.memory)


if __name__ == "__main__":
    main()
