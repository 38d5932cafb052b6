"""Benchmark the runner itself: throughput and peak memory on long files with cheap stages.

    python scripts/bench_runner.py            # 10-minute 44.1 kHz and 2-hour 96 kHz/24-bit files
    python scripts/bench_runner.py --quick    # 10-minute file only

Each run happens in a fresh child process so its peak RSS (``ru_maxrss``) is the runner's alone.
The chain is ``rumble`` (a streaming IIR filter) then a peak normaliser (an analysis pass), so
the run exercises two passes and a spill file. Test files are generated block by block
(seeded tones + noise) into --workdir and deleted afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import json, sys, time
from audio_restorer.pipeline.chain import Chain
from audio_restorer.pipeline.runner import RestoreOptions, restore_file
chain = Chain.of("rumble", "gain")
chain.set_value("gain.mode", "peak")
start = time.perf_counter()
res = restore_file(sys.argv[1], sys.argv[2], chain, RestoreOptions(bit_depth=sys.argv[3]))
print(json.dumps({"wall_s": time.perf_counter() - start, "timings": res.timings,
                  "frames": res.frames_in, "rate": res.rate}))
"""


def make_file(path: Path, rate: int, seconds: float, subtype_bits: str) -> None:
    from audio_restorer.audio.io import AudioWriter

    rng = np.random.default_rng(0)
    block = 1 << 18
    total = int(rate * seconds)
    with AudioWriter(path, rate, 2, bit_depth=subtype_bits) as writer:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / rate
            tone = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 3300 * t)
            x = tone + 0.02 * rng.standard_normal((2, n))
            writer.write(x.astype(np.float32))


def run_case(name: str, rate: int, seconds: float, bits: str, workdir: Path, keep: bool) -> dict:
    src = workdir / f"{name}.wav"
    dst = workdir / f"{name}.out.wav"
    t0 = time.perf_counter()
    make_file(src, rate, seconds, bits)
    gen_s = time.perf_counter() - t0
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(dst), bits],
        capture_output=True,
        text=True,
        check=True,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    doc = json.loads(out.stdout)
    t = doc["timings"]
    stages = sum(t["stages_s"].values())
    row = {
        "case": name,
        "audio_s": seconds,
        "size_gb": round(src.stat().st_size / 1e9, 2),
        "wall_s": round(doc["wall_s"], 1),
        "x_real_time": round(seconds / doc["wall_s"], 1),
        "peak_rss_mb": round(max(peak_kib, before) / 1024, 1),
        "stages_s": round(stages, 2),
        "io_s": t["io_s"],
        "measure_s": t["measure_s"],
        "hash_s": t["hash_s"],
        "overhead_s": t["runner_overhead_s"],
        "overhead_pct_of_stages": round(100 * t["runner_overhead_s"] / max(stages, 1e-9), 1),
        "generate_s": round(gen_s, 1),
    }
    if not keep:
        for p in (src, dst, dst.with_name(dst.name + ".restoration.json")):
            p.unlink(missing_ok=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the 10-minute file")
    ap.add_argument("--workdir", type=Path, help="where test files go (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ar-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cases = [("10min-44k-stereo-16bit", 44100, 600.0, "16")]
    if not args.quick:
        cases.append(("2h-96k-stereo-24bit", 96000, 7200.0, "24"))
    rows = [run_case(*case, workdir, args.keep) for case in cases]
    if args.workdir is None and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
