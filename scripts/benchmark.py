#!/usr/bin/env python3
"""Benchmark: restoration tasks x systems (our stages and peers) on the clean set.

For every task, each clean clip is degraded by the simulator (seeded by clip and task), every
system restores it, its output is aligned to the input (any delay is reported) and scored
against the clean reference. The table of per-task medians goes into ``docs/benchmarks.md``
between ``<!-- quality-table:start -->`` and ``<!-- quality-table:end -->``; all per-clip numbers
go to ``.bench/results.json``.

Systems: our stages by name through the stage registry (skipped, with a note, while a stage is
not registered yet), and the peers of ``scripts/bench_peers.py``, each tried at all its
settings and reported at its best setting per task.

Speed is reported as "x real time" = audio seconds / CPU seconds of the system (this process'
CPU time plus that of its child processes), with OMP/BLAS threads set to 1.

Usage::

    python scripts/make_clean_set.py --out bench-data/clean     # once
    python scripts/benchmark.py [--quick] [--tasks declick denoise10 ...] [--no-write]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from audio_restorer.evaluation import metrics as M  # noqa: E402, N812
from audio_restorer.evaluation import simulate as S  # noqa: E402, N812
from bench_peers import PEERS, run_command  # noqa: E402

LEAD_S = 0.5  # noise-only lead-in prepended to every clip (run-in groove, leader tape)
QUICK_CLIPS = ["piano_mozart_k545", "strings_haydn_op74", "speech_en_us_aesop", "band_rock_chorale"]
QUICK_SECONDS = 5.0
START, END = "<!-- quality-table:start -->", "<!-- quality-table:end -->"


# -- tasks -------------------------------------------------------------------------------------


@dataclass
class Task:
    """A restoration task: how to degrade, which of our stages address it, which peers."""

    name: str
    title: str
    degrade: Callable[[np.ndarray, int, np.random.Generator], S.Degraded]
    ours: list[str]  # a chain of stage names
    peers: list[str]
    #: main metric used to pick each peer's best setting: (key, higher_is_better)
    primary: tuple[str, bool] = ("si_sdr_i", True)
    extra: list[str] = field(default_factory=list)  # additional metric columns
    #: further rows of ours with non-default parameters: label -> chain of "stage:key=value"
    variants: dict[str, list[str]] = field(default_factory=dict)


def _steps(*steps: tuple[str, Callable[..., Any], dict[str, Any]]):
    def degrade(clean: np.ndarray, rate: int, rng: np.random.Generator) -> S.Degraded:
        return S.apply_steps(clean, rate, list(steps), rng=rng)

    return degrade


def _mains_hum(clean: np.ndarray, rate: int, rng: np.random.Generator) -> S.Degraded:
    """Hum at -25 dB; the mains is 50 or 60 Hz, drawn per clip (the stage must decide)."""
    mains = 50.0 if rng.random() < 0.5 else 60.0
    return S.apply_steps(
        clean, rate, [("add_hum", S.add_hum, {"mains_hz": mains, "level_db": -25.0})], rng=rng
    )


def _carrier(name: str):
    def degrade(clean: np.ndarray, rate: int, rng: np.random.Generator) -> S.Degraded:
        return S.simulate(clean, rate, carrier=name, seed=int(rng.integers(2**31)))

    return degrade


DENOISERS = ["afftdn", "afftdn_tn", "anlmdn", "sox_noisered", "noisereduce", "noisereduce_ns"]
TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task(
            "declick",
            "Clicks, 6/s, 1-40 samples",
            _steps(("add_clicks", S.add_clicks, {"per_second": 6.0})),
            ["declick"],
            ["none", "adeclick"],
            extra=["click_f1", "click_p", "click_r"],
            variants={"wide_bumps": ["declick:wide_bumps=true"]},
        ),
        Task(
            "decrackle",
            "Crackle, 500/s, mean 0.02",
            _steps(("add_crackle", S.add_crackle, {"per_second": 500.0, "level": 0.02})),
            ["decrackle"],
            ["none", "adeclick"],
            extra=["click_f1"],
        ),
        Task(
            "declip",
            "Hard clipping at -6 dB below peak",
            _steps(("clip_hard", S.clip_hard, {"ceiling_db": -6.0})),
            ["declip"],
            ["none", "adeclip"],
        ),
        Task(
            "denoise10",
            "White hiss at 10 dB SNR",
            _steps(("add_hiss", S.add_hiss, {"snr_db": 10.0, "colour": "white"})),
            ["denoise"],
            ["none", *DENOISERS],
            extra=["stoi", "pesq"],
        ),
        Task(
            "denoise20",
            "Tape-coloured hiss at 20 dB SNR",
            _steps(("add_hiss", S.add_hiss, {"snr_db": 20.0, "colour": "tape"})),
            ["denoise"],
            ["none", *DENOISERS],
            extra=["stoi", "pesq"],
        ),
        Task(
            "dehum",
            "50 or 60 Hz hum (drawn per clip) at -25 dB, 6 harmonics, drifting",
            _mains_hum,
            ["dehum"],
            ["none", "notch"],
            extra=["hum_db", "mains_ok"],
        ),
        Task(
            "wowflutter",
            "Wow 0.3 % at 1.3 Hz + flutter 0.08 % at 8 Hz",
            _steps(
                (
                    "wow_flutter",
                    S.wow_flutter,
                    {"wow_percent": 0.3, "wow_hz": 1.3, "flutter_percent": 0.08, "flutter_hz": 8.0},
                )
            ),
            ["wowflutter"],
            ["none"],
            primary=("cents", False),
            extra=["cents"],
        ),
        Task(
            "bandlimit",
            "Low-pass at 4 kHz (band-limit recovery)",
            _steps(("band_limit", S.band_limit, {"low_hz": None, "high_hz": 4000.0})),
            ["air"],
            ["none"],
            primary=("lsd", False),
            extra=["lsd"],
        ),
        Task(
            "shellac78",
            "Full shellac78 carrier recipe",
            _carrier("shellac78"),
            ["dehum", "declick", "decrackle", "denoise"],
            ["none", "adeclick", "afftdn", "afftdn_tn", "sox_noisered", "noisereduce", "notch"],
            primary=("si_sdr_i_w", True),
            extra=["si_sdr_i_w", "click_f1", "hum_db", "cents"],
        ),
        Task(
            "tape",
            "Full tape carrier recipe",
            _carrier("tape"),
            ["dehum", "denoise", "wowflutter"],
            ["none", "afftdn", "afftdn_tn", "sox_noisered", "noisereduce", "notch"],
            primary=("si_sdr_i_w", True),
            extra=["si_sdr_i_w", "hum_db", "cents"],
        ),
        Task(
            "clean",
            "Clean in (what a system costs on audio that needed nothing)",
            _steps(),
            ["declick", "decrackle", "declip", "denoise", "dehum", "wowflutter", "air"],
            list(PEERS),
            primary=("si_sdr", True),
            extra=["lsd"],
        ),
    ]
}


# -- systems -----------------------------------------------------------------------------------


def _cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def run_peer(setting: Any, audio: np.ndarray, rate: int, hum: float, work: Path) -> np.ndarray:
    if callable(setting):
        return setting(audio, rate, lead=LEAD_S)
    inp, out, prof = work / "in.wav", work / "out.wav", work / "noise.prof"
    sf.write(inp, audio.T, rate, subtype="FLOAT")
    run_command(str(setting), inp=str(inp), out=str(out), prof=str(prof), lead=LEAD_S, hum=hum)
    data, _ = sf.read(out, dtype="float32", always_2d=True)
    return data.T


def registered_stages() -> set[str]:
    try:
        from audio_restorer.stages.registry import stage_names

        return set(stage_names())
    except Exception as exc:  # a half-merged stage must not stop the peers from running
        print(f"warning: stage registry failed to load: {exc}", file=sys.stderr)
        return set()


def run_ours(chain: list[str], audio: np.ndarray, rate: int) -> np.ndarray:
    """Run a chain of stage specs: ``name`` (defaults) or ``name:key=value,key=value``."""
    from audio_restorer.stages.registry import create_stage

    out = audio
    for spec in chain:
        name, _, settings = spec.partition(":")
        params = {}
        for item in filter(None, settings.split(",")):
            key, _, value = item.partition("=")
            params[key] = json.loads(value)
        out = create_stage(name, params)(out, rate)
    return out


# -- scoring -----------------------------------------------------------------------------------


def align(output: np.ndarray, degraded: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """Cut/pad the output to the input's shape and undo any delay (searched up to 50 ms)."""
    channels, frames = degraded.shape
    if output.shape[0] != channels:
        output = np.broadcast_to(output.mean(axis=0, keepdims=True), (channels, output.shape[1]))
    output = np.asarray(output, dtype=np.float32)
    lag = S.estimate_delay(degraded, output, max_lag=int(0.05 * rate))
    return S.shift(output, lag, frames), lag


def score(task: Task, d: S.Degraded, out: np.ndarray, category: str) -> dict[str, float]:
    ref, rate = d.reference, d.rate
    r: dict[str, float] = {
        "si_sdr": M.si_sdr(ref, out),
        "si_sdr_i": M.si_sdr(ref, out) - M.si_sdr(ref, d.audio),
        "snr": M.snr(ref, out),
    }
    wanted = set(task.extra) | {task.primary[0]}
    if d.warped_reference is not None and wanted & {"si_sdr_w", "si_sdr_i_w"}:
        # against whichever reference the output is closer to (speed corrected or not), so
        # a system is neither penalised nor rewarded for correcting the wow itself
        w = d.warped_reference
        r["si_sdr_w"] = max(M.si_sdr(w, out), r["si_sdr"])
        r["si_sdr_i_w"] = r["si_sdr_w"] - max(M.si_sdr(w, d.audio), M.si_sdr(ref, d.audio))
    if "lsd" in wanted:
        r["lsd"] = M.log_spectral_distance(ref, out, rate)
    if wanted & {"click_f1", "click_p", "click_r"} and d.click_mask.any():
        s = M.click_detection(d.click_mask, M.changed_samples(d.audio, out), tolerance=8)
        r.update(click_f1=s.f1, click_p=s.precision, click_r=s.recall)
    if "hum_db" in wanted and d.hum_hz:
        # against whichever reference the output follows (speed corrected or not), so the
        # music that wow moved is not counted as hum
        hum_ref = ref
        if d.warped_reference is not None and r.get("si_sdr_w", -1e9) > r["si_sdr"]:
            hum_ref = d.warped_reference
        r["hum_db"] = M.hum_level_db(out, rate, d.hum_hz, reference=hum_ref)
    if "cents" in wanted and d.time_map is not None:
        r["cents"] = M.pitch_deviation_cents(ref, out, rate)
    if category == "speech" and wanted & {"stoi", "pesq"}:
        for key, fn in (("stoi", M.stoi_score), ("pesq", M.pesq_score)):
            value = fn(ref, out, rate)
            if value is not None:
                r[key] = value
    return r


def mains_decision(d: S.Degraded) -> float:
    """1.0 when our dehum analysis names the simulated mains (50 or 60 Hz), else 0.0."""
    from audio_restorer.stages.dehum import Dehum

    found = Dehum().analyze(d.audio, d.rate).mains_hz
    return float(found is not None and abs(found - float(d.hum_hz or 0.0)) < 5.0)


# -- running -----------------------------------------------------------------------------------


def load_clips(clean_dir: Path, quick: bool) -> list[dict[str, Any]]:
    manifest = clean_dir / "manifest.json"
    if not manifest.exists():
        sys.exit(f"error: {manifest} not found: run scripts/make_clean_set.py --out {clean_dir}")
    entries = json.loads(manifest.read_text())["clips"]
    if quick:
        entries = [e for e in entries if e["id"] in QUICK_CLIPS]
    clips = []
    for e in entries:
        audio, rate = sf.read(clean_dir / e["file"], dtype="float32", always_2d=True)
        audio = audio.T
        if quick:
            audio = audio[:, : int(QUICK_SECONDS * rate)]
        lead = np.zeros((audio.shape[0], int(LEAD_S * rate)), dtype=np.float32)
        clips.append({**e, "audio": np.concatenate([lead, audio], axis=1), "rate": rate})
    return clips


def run(args: argparse.Namespace) -> dict[str, Any]:
    clips = load_clips(args.clean, args.quick)
    have = registered_stages()
    results: dict[str, Any] = {"quick": args.quick, "clips": [c["id"] for c in clips], "tasks": {}}
    with tempfile.TemporaryDirectory(prefix="work-", dir=_bench_dir()) as tmp:
        work = Path(tmp)
        for tname in args.tasks:
            task = TASKS[tname]
            t0 = time.time()
            rows: dict[str, dict[str, Any]] = {}
            missing = [s for s in task.ours if s not in have]
            systems: list[tuple[str, str, Any]] = []
            if task.name == "clean":
                systems += [(f"ours:{s}", "defaults", [s]) for s in task.ours if s in have]
                systems += [(f"ours:{s}", "skip", None) for s in missing]
            elif missing:
                systems.append(("ours", "skip", None))
            else:
                systems.append(("ours", "defaults", task.ours))
                systems += [(f"ours+{k}", k, chain) for k, chain in task.variants.items()]
            for pname in task.peers:
                peer = PEERS[pname]
                labels = list(peer.settings)
                if task.name == "clean":
                    labels = [peer.default]
                elif args.quick:
                    labels = peer.quick
                systems += [(pname, label, peer.settings[label]) for label in labels]
            for system, label, spec in systems:
                key = f"{system} [{label}]"
                row = rows.setdefault(key, {"system": system, "setting": label, "clips": {}})
                if label == "skip":
                    row["note"] = "not registered yet: " + ", ".join(
                        missing if system == "ours" else [system.split(":", 1)[1]]
                    )
                    continue
                for clip in clips:
                    seed = zlib.crc32(f"{tname}/{clip['id']}".encode())
                    d = task.degrade(clip["audio"], clip["rate"], np.random.default_rng(seed))
                    hum = d.hum_hz or 50.0
                    c0 = _cpu()
                    try:
                        if system.startswith("ours"):
                            out = run_ours(spec, d.audio, d.rate)
                        else:
                            out = run_peer(spec, d.audio, d.rate, hum, work)
                    except Exception as exc:
                        row.setdefault("errors", []).append(f"{clip['id']}: {exc}")
                        continue
                    cpu = _cpu() - c0
                    out, lag = align(out, d.audio, d.rate)
                    m = score(task, d, out, clip["category"])
                    if "mains_ok" in task.extra and system == "ours" and d.hum_hz:
                        m["mains_ok"] = mains_decision(d)
                    m.update(cpu_s=cpu, seconds=d.audio.shape[1] / d.rate, delay=lag)
                    row["clips"][clip["id"]] = m
            results["tasks"][tname] = {"title": task.title, "rows": rows}
            print(f"{tname}: {len(systems)} system settings x {len(clips)} clips, "
                  f"{time.time() - t0:.0f} s", flush=True)  # fmt: skip
    return results


def _bench_dir() -> Path:
    path = ROOT / ".bench"
    path.mkdir(exist_ok=True)
    return path


# -- report ------------------------------------------------------------------------------------


def summarise(row: dict[str, Any]) -> dict[str, float]:
    clips = list(row["clips"].values())
    if not clips:
        return {}
    keys = {k for c in clips for k in c}
    out = {k: float(np.median([c[k] for c in clips if k in c])) for k in keys}
    if "mains_ok" in keys:  # a share, not a median
        out["mains_ok"] = 100.0 * float(np.mean([c["mains_ok"] for c in clips if "mains_ok" in c]))
    out["x_rt"] = sum(c["seconds"] for c in clips) / max(sum(c["cpu_s"] for c in clips), 1e-6)
    out["max_delay"] = max(abs(c["delay"]) for c in clips)
    return out


def best_rows(task: Task, rows: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """One row per system: the setting with the best median primary metric."""
    key, higher = task.primary
    best: dict[str, tuple[dict[str, Any], dict[str, float]]] = {}
    for row in rows.values():
        s = summarise(row)
        name = row["system"]
        current = best.get(name)
        if current is None or (
            s.get(key) is not None
            and (
                not current[1] or (s[key] > current[1][key] if higher else s[key] < current[1][key])
            )
        ):
            best[name] = (row, s)
    return list(best.values())


COLUMNS = {
    "si_sdr_i": ("SI-SDRi dB", "{:+.2f}"),
    "si_sdr": ("SI-SDR dB", "{:.2f}"),
    "si_sdr_i_w": ("SI-SDRi vs warped ref. dB", "{:+.2f}"),
    "snr": ("SNR dB", "{:.2f}"),
    "lsd": ("LSD dB", "{:.2f}"),
    "click_f1": ("click F1", "{:.2f}"),
    "click_p": ("click P", "{:.2f}"),
    "click_r": ("click R", "{:.2f}"),
    "hum_db": ("hum dB", "{:.1f}"),
    "mains_ok": ("50/60 Hz right %", "{:.0f}"),
    "cents": ("pitch dev. cents", "{:.2f}"),
    "stoi": ("STOI (speech)", "{:.3f}"),
    "pesq": ("PESQ (speech)", "{:.2f}"),
    "x_rt": ("x real time", "{:.0f}"),
}


def table(results: dict[str, Any]) -> str:
    lines = []
    clips = results["clips"]
    mode = (
        f"quick mode: {len(clips)} clips cut to {QUICK_SECONDS:g} s"
        if results["quick"]
        else f"{len(clips)} clips"
    )
    lines.append(
        f"Medians over clips ({mode}, each with a {LEAD_S:g} s silent lead-in). SI-SDRi: "
        "improvement over the degraded input. LSD: log-spectral distance (lower is better). "
        "click F1/P/R: detection scored from the samples a system changed. hum dB: residual hum "
        "relative to the signal (50/60 Hz right: share of clips whose mains our analysis "
        "named). cents: RMS residual pitch deviation. 'vs warped ref.': scored "
        "against whichever is closer, the clean signal or the clean signal put through the "
        "carrier's own wow & flutter, which isolates the other repairs from the speed error "
        "(the cents column scores the speed). x real time: audio "
        "seconds / CPU seconds (child processes included, 1 thread), on a shared machine. "
        "Peers are shown at their best setting for the task."
    )
    for tname, entry in results["tasks"].items():
        task = TASKS[tname]
        cols = ["si_sdr_i", "si_sdr", "snr"] if tname != "clean" else ["si_sdr", "snr", "lsd"]
        cols += [c for c in task.extra if c not in cols]
        if tname == "bandlimit" and "lsd" not in cols:
            cols.append("lsd")
        cols.append("x_rt")
        lines += ["", f"### {tname}: {entry['title']}", ""]
        lines.append(
            "| system | setting | " + " | ".join(COLUMNS[c][0] for c in cols) + " | note |"
        )
        lines.append("|---|---|" + "---|" * len(cols) + "---|")
        best = best_rows(task, entry["rows"])
        for row, s in best:
            cells = []
            for c in cols:
                v = s.get(c)
                if v is None:
                    cells.append("")
                elif c in ("si_sdr", "snr") and v > 99:
                    cells.append("> 99 (identical)")
                else:
                    cells.append(COLUMNS[c][1].format(v))
            notes = [row.get("note", "")]
            if s.get("max_delay"):
                notes.append(f"delay up to {int(s['max_delay'])} frames (compensated)")
            if row.get("errors"):
                notes.append(f"{len(row['errors'])} clips failed")
            note = "; ".join(n for n in notes if n)
            lines.append(
                f"| {row['system']} | {row['setting']} | " + " | ".join(cells) + f" | {note} |"
            )
        lines += ["", target_line(task, best)]
    return "\n".join(lines) + "\n"


def target_line(task: Task, best: list[tuple[dict[str, Any], dict[str, float]]]) -> str:
    """The project's target for our stages on this task, and whether it is met.

    Restoration tasks: median SI-SDRi at least 2 dB above the best peer's ("do nothing"
    included). Metrics with no SI-SDR meaning (cents, LSD): below the best peer. Clean in: each
    stage changes the spectrum by less than 0.5 dB (log-spectral distance to the input).
    """
    ours = [(r, s) for r, s in best if r["system"].startswith("ours") and s]
    peers = [s for r, s in best if not r["system"].startswith("ours") and s]
    if task.name == "clean":
        if not ours:
            return "Target for our stages: LSD to the input < 0.5 dB. (no stage registered yet)"
        verdicts = [
            f"{r['system'][5:]} {s['lsd']:.2f} dB {'met' if s['lsd'] < 0.5 else 'NOT met'}"
            for r, s in ours
        ]
        return "Target for our stages: LSD to the input < 0.5 dB: " + "; ".join(verdicts) + "."
    key, higher = task.primary
    values = [s[key] for s in peers if key in s]
    if not values:
        return ""
    name = COLUMNS[key][0]
    if higher:
        goal = max(values) + 2.0
        text = f"Target for ours: {name} >= {goal:+.2f} (best peer + 2 dB)"
    else:
        goal = min(values)
        text = f"Target for ours: {name} < {goal:.2f} (below the best peer)"
    if not ours or key not in ours[0][1]:
        return text + ": pending (stage not registered)."
    mine = ours[0][1][key]
    met = mine >= goal if higher else mine < goal
    return text + f": {'met' if met else 'NOT met'} ({COLUMNS[key][1].format(mine)})."


def write_table(path: Path, text: str) -> None:
    block = f"{START}\n{text}{END}"
    if path.exists():
        doc = path.read_text(encoding="utf-8")
        if START in doc and END in doc:
            head, rest = doc.split(START, 1)
            doc = head + block + rest.split(END, 1)[1]
        else:
            doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    else:
        doc = (
            "# Benchmarks\n\nHow Audio Restorer's stages compare with peer tools on simulated "
            "degradations of a clean set (see docs/bench/measure.md for the method).\n\n"
            "## Quality\n\n" + block + "\n"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few short clips, fewer settings")
    parser.add_argument("--tasks", nargs="*", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--clean", type=Path, default=ROOT / "bench-data" / "clean")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    t0 = time.time()
    results = run(args)
    results["wall_s"] = time.time() - t0
    (_bench_dir() / ("results-quick.json" if args.quick else "results.json")).write_text(
        json.dumps(results, indent=1, default=float) + "\n"
    )
    text = table(results)
    print(text)
    if not args.no_write:
        write_table(args.doc, text)
        print(f"wrote {args.doc} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
