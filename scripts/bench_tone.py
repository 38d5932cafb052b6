"""Benchmark of the tone stages: speed, EQ accuracy, air LSD, codec LSD, loudness, true peak.

Run with single-threaded BLAS so the CPU time is comparable:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        PYTHONPATH=src python scripts/bench_tone.py

Speed is "x real time" = audio seconds / CPU seconds (``time.process_time``) for stereo 44.1 kHz
pushed through the runner's block path (analysis pass included). The signal generators are the
seeded ones of the tests (tests/test_tone.py, tests/test_loudness_limiter.py).
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from audio_restorer.analysis import true_peak_dbtp  # noqa: E402
from audio_restorer.stages.base import process_in_blocks  # noqa: E402
from audio_restorer.stages.eq import CURVES, Eq, analog_response_db  # noqa: E402
from audio_restorer.stages.registry import create_stage  # noqa: E402
from test_loudness_limiter import music, overs, speech, tone  # noqa: E402
from test_tone import band_limit, codec_holes, harmonic_music, lsd_db, with_hiss  # noqa: E402

RATE = 44100


def speed(name: str, params: dict, x: np.ndarray) -> float:
    stage = create_stage(name, params)
    start = time.process_time()
    analysis = None
    analyzer = stage.analyzer(RATE, x.shape[0])
    if analyzer is not None:
        for i in range(0, x.shape[1], 65536):
            analyzer.update(x[:, i : i + 65536])
        analysis = analyzer.result()
    process_in_blocks(stage, x, RATE, 65536, analysis)
    return x.shape[1] / RATE / (time.process_time() - start)


def main() -> None:
    seconds = 20.0
    x = band_limit(with_hiss(RATE, seconds), RATE, 9000.0)
    print(f"## Speed (stereo 44.1 kHz, {seconds:g} s, x real time, CPU time)")
    for name, params in [
        ("eq", {"curve": "riaa", "lowpass_hz": 6000}),
        ("air", {}),
        ("transient", {}),
        ("codec", {}),
        ("clarity", {}),
        ("loudness", {}),
        ("loudness", {"mode": "adaptive"}),
        ("limiter", {}),
    ]:
        print(f"| {name} {params or ''} | {speed(name, params, x):.0f}x |")

    print("\n## EQ: max |digital - analog| (dB), 20 Hz - 20 kHz, over all named curves")
    f = np.geomspace(20, 20000, 3000)
    for rate in (44100, 48000, 96000):
        worst = 0.0
        for key, curve in CURVES.items():
            if key == "custom":
                continue
            _, h = signal.sosfreqz(Eq(curve=key, rumble_hz=0).sos(rate), worN=f, fs=rate)
            err = np.max(np.abs(20 * np.log10(np.abs(h)) - analog_response_db(curve, f)))
            worst = max(worst, err)
        print(f"| {rate} Hz | {worst:.3f} dB |")

    print("\n## air: log-spectral distance to the full-band original (dB)")
    print("| cutoff | detected | LSD edge..2x edge: limited -> air | full band: limited -> air |")
    full = harmonic_music(RATE, 6.0)
    for cutoff in (5000.0, 8000.0, 11000.0, 16000.0):
        limited = band_limit(full, RATE, cutoff)
        stage = create_stage("air")
        an = stage.analyzer(RATE, 2)
        an.update(limited)
        res = an.result()
        y = stage.process(limited, RATE, analysis=res)
        hi = min(2 * res.cutoff_hz, RATE / 2)
        band = (
            lsd_db(full, limited, RATE, res.cutoff_hz, hi),
            lsd_db(full, y, RATE, res.cutoff_hz, hi),
        )
        whole = (lsd_db(full, limited, RATE, 20, RATE / 2), lsd_db(full, y, RATE, 20, RATE / 2))
        print(
            f"| {cutoff:.0f} | {res.cutoff_hz:.0f} | {band[0]:.2f} -> {band[1]:.2f} "
            f"| {whole[0]:.2f} -> {whole[1]:.2f} |"
        )

    print("\n## codec: LSD 3-16 kHz (1024-point frames) to the original, simulated band dropping")
    clean = with_hiss(RATE, 6.0)
    for p in (0.15, 0.3, 0.5):
        damaged = codec_holes(clean, RATE, p)
        y = create_stage("codec")(damaged, RATE)
        a = lsd_db(clean, damaged, RATE, 3000, 16000, nperseg=1024)
        b = lsd_db(clean, y, RATE, 3000, 16000, nperseg=1024)
        print(f"| {int(p * 100)} % bands dropped | {a:.2f} -> {b:.2f} dB |")
    print("\n## codec on real MP3 (libsndfile/LAME via soundfile), LSD 3-10 kHz, 1024-point frames")
    for level in (0.5, 0.8, 0.9):
        buf = io.BytesIO()
        sf.write(buf, clean.T.astype(np.float32), RATE, format="MP3", compression_level=level)
        kbps = buf.getbuffer().nbytes * 8 / 6.0 / 1000
        buf.seek(0)
        coded = sf.read(buf, dtype="float32")[0].T[:, : clean.shape[1]]
        ref = clean[:, : coded.shape[1]]
        y = create_stage("codec")(coded, RATE)
        a = lsd_db(ref, coded, RATE, 3000, 10000, nperseg=1024)
        b = lsd_db(ref, y, RATE, 3000, 10000, nperseg=1024)
        print(f"| MP3 ~{kbps:.0f} kbit/s | {a:.2f} -> {b:.2f} dB |")
    y = create_stage("codec")(clean.astype(np.float32), RATE)
    snr = 10 * np.log10(np.sum(clean**2) / np.sum((y - clean) ** 2))
    print(f"| clean input | change SNR {snr:.1f} dB |")

    print("\n## loudness: error of the result (pyloudnorm), LU")
    meter = pyloudnorm.Meter(RATE)
    for make in (music, speech, tone):
        sig = make(RATE, 10.0).astype(np.float32)
        for target in (-16.0, -23.0):
            for mode in ("integrated", "adaptive"):
                st = create_stage("loudness", {"target_lufs": target, "mode": mode})
                out = st(sig, RATE)
                err = meter.integrated_loudness(out.T.astype(np.float64)) - target
                print(f"| {make.__name__} | {target:g} | {mode} | {err:+.3f} |")

    print("\n## limiter: true peak (dBTP) in -> out, ceiling -1 dBTP")
    print("| signal | in | out (BS.1770 4x meter) | out (8x resample_poly) |")
    for name, sig in overs(RATE, 5.0).items():
        xx = (1.4 * np.vstack([sig, np.roll(sig, 3)])).astype(np.float32)
        y = create_stage("limiter")(xx, RATE)
        r8 = 20 * np.log10(np.max(np.abs(signal.resample_poly(y.astype(np.float64), 8, 1, axis=1))))
        print(f"| {name} | {true_peak_dbtp(xx):+.2f} | {true_peak_dbtp(y):+.3f} | {r8:+.3f} |")


if __name__ == "__main__":
    main()
