#!/usr/bin/env python3
"""Train the ``enhance`` mask network (residual surface-noise removal), reproducibly.

Data, all built offline and held out by *source* (never by clip):

* clean material: the benchmark clips of ``bench-data/clean`` whose source is not in
  :data:`HOLDOUT_SOURCES`, plus extra clips rendered here from sources the benchmark does not
  use (other Bach chorales and Monteverdi madrigals through fluidsynth, drum grooves with other
  seeds, espeak-ng speech in other voices and texts), cached in ``bench-data/enhance-train``;
* degradation by the project's simulator (:mod:`audio_restorer.evaluation.simulate`):
  shellac78, cylinder and vinyl recipes with a 0.5 s noise-only lead-in (as in the benchmark);
  each degraded copy is used twice, raw and after the DSP repair chain (dehum, declick,
  decrackle, denoise: what ``enhance`` sees inside a preset), plus clean copies (the network
  must leave clean input alone);
* target: the clean signal aligned to the degraded one (for wow and flutter: the warped
  reference, since speed is not this stage's job).

Loss: negative SI-SDR plus a multi-resolution log-magnitude L1 (FFT 512/1024/2048).

Usage::

    nice python scripts/train_enhance.py --out resources/models/enhance/enhance-v1.pt \\
        --minutes 17 --seed 0
    python scripts/train_enhance.py --tiny --out /tmp/x.pt     # one step, for CI
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

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

from audio_restorer.evaluation import simulate as S  # noqa: E402, N812
from audio_restorer.ml.enhance_net import (  # noqa: E402
    HOP,
    N_FFT,
    EnhanceConfig,
    build_model,
    count_parameters,
    save_weights,
)

RATE = 44100
LEAD_S = 0.5
#: benchmark sources held out from training (every clip of these sources is held out)
HOLDOUT_SOURCES = (
    "music21:chopin/mazurka06-2",
    "music21:haydn/opus74no1/movement1",
    "music21:bach/bwv277",
    "music21:schumann_robert/dichterliebe_no2",
    "music21:joplin/maple_leaf_rag",
    "espeak-ng en-us",
    "espeak-ng fr+f2",
    "generated Latin percussion",
)
DSP_CHAIN = ("dehum", "declick", "decrackle", "denoise")
#: (carrier, number of seeds) per clean clip
RECIPES = (("shellac78", 3), ("cylinder", 1), ("vinyl", 1))


def source_key(source: str) -> str:
    """The source a clip comes from ("music21:joplin/maple_leaf_rag + drums" -> the rag)."""
    return source.split(" + ")[0].strip()


def is_held_out(source: str) -> bool:
    return source_key(source) in HOLDOUT_SOURCES


def bench_clips(clean_dir: Path, held_out: bool) -> list[tuple[str, np.ndarray]]:
    """``(id, audio)`` of the benchmark clips on one side of the source split."""
    import soundfile as sf

    manifest = json.loads((clean_dir / "manifest.json").read_text())
    out = []
    for e in manifest["clips"]:
        if is_held_out(e["source"]) == held_out:
            audio, rate = sf.read(clean_dir / e["file"], dtype="float32", always_2d=True)
            assert rate == RATE, (e["id"], rate)
            out.append((e["id"], audio.T.copy()))
    return out


# -- extra training material (sources the benchmark does not use) -----------------------------

EXTRA_SPEECH = (
    (
        "en-us+m3",
        150,
        40,
        "The old gramophone stood in the corner of the parlour, and every "
        "evening the family gathered to hear the latest record from the city.",
    ),
    (
        "en-gb+f4",
        160,
        60,
        "Please keep the discs in their sleeves, store them upright, and "
        "never leave them in the sun near a window or a radiator.",
    ),
    (
        "es",
        150,
        50,
        "La grabación fue hecha en un estudio pequeño, con un solo micrófono "
        "y una orquesta de diez músicos.",
    ),
    (
        "it",
        145,
        55,
        "Questa registrazione è stata conservata per molti anni in una biblioteca "
        "di provincia, lontano dalla luce.",
    ),
    (
        "nl",
        150,
        45,
        "De opname is oud en het geluid is zwak, maar de melodie is nog steeds goed te herkennen.",
    ),
)


def extra_clips(cache: Path) -> list[tuple[str, np.ndarray]]:
    """Render (once) and load the extra training clips."""
    import soundfile as sf

    import make_clean_set as M  # noqa: N812

    satb = M._satb
    chorales = [
        ("bach/bwv1.6", satb([M.PIANO] * 4, (-0.3, -0.1, 0.1, 0.3)), 72),
        ("bach/bwv10.7", satb([M.VIOLIN, M.VIOLIN, M.VIOLA, M.CELLO]), 76),
        ("bach/bwv101.7", satb([M.TRUMPET, M.TRUMPET, M.TROMBONE, M.TUBA]), 70),
        ("bach/bwv102.7", satb([M.OBOE, M.CLARINET, M.HORN, M.BASSOON]), 72),
        ("bach/bwv103.6", satb([M.CHOIR] * 4), 66),
        ("bach/bwv104.6", satb([M.NYLON, M.NYLON, M.NYLON, M.CONTRABASS]), 90),
        ("bach/bwv108.6", satb([M.STRINGS] * 4), 70),
        ("bach/bwv11.6", satb([M.EPIANO, M.EPIANO, M.EPIANO, M.EBASS]), 84),
        ("bach/bwv110.7", satb([M.FLUTE, M.VOICE, M.VIOLA, M.ORGAN]), 70),
        ("monteverdi/madrigal.3.1", satb([M.VOICE] * 4), 90),
        ("monteverdi/madrigal.3.2", satb([M.VIOLIN, M.FLUTE, M.CELLO, M.BASSOON]), 90),
    ]
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jobs: list[tuple[str, object]] = [(w, (lay, bpm)) for w, lay, bpm in chorales]
        jobs += [(f"drums{s}", s) for s in (11, 12)]
        jobs += [(f"speech-{v}", (v, sp, p, t)) for v, sp, p, t in EXTRA_SPEECH]
        for name, spec in jobs:
            path = cache / (name.replace("/", "_") + ".flac")
            if not path.exists():
                seconds = 12.0
                if name.startswith("speech-"):
                    voice, speed, pitch, text = spec  # type: ignore[misc]
                    mix = M.render_speech(text, voice, speed, pitch, tmp / "s.wav")
                    mix = np.concatenate([np.zeros((1, int(0.3 * RATE))), mix], axis=1)
                    seconds = min(12.0, mix.shape[1] / RATE)
                else:
                    if name.startswith("drums"):
                        parts = [M.drum_groove(seconds, 90 + 7 * int(spec), seed=int(spec))]
                    else:
                        layout, bpm = spec  # type: ignore[misc]
                        parts = M.score_parts(name, layout, bpm=bpm, seconds=seconds)
                    M.write_midi(tmp / "mix.mid", parts)
                    mix = M.render_midi(tmp / "mix.mid", tmp / "mix.wav")
                mix = M._fade(mix, seconds)
                mix *= M.PEAK / max(float(np.abs(mix).max()), 1e-9)
                sf.write(path, mix.T, RATE, subtype="PCM_24")
            audio, _ = sf.read(path, dtype="float32", always_2d=True)
            out.append((name, audio.T.copy()))
    return out


# -- degraded pairs ----------------------------------------------------------------------------


def dsp_chain(audio: np.ndarray, rate: int) -> np.ndarray:
    from audio_restorer.stages.registry import create_stage

    out = audio
    for name in DSP_CHAIN:
        out = create_stage(name, {})(out, rate)
    return out


def with_lead(audio: np.ndarray) -> np.ndarray:
    lead = np.zeros((audio.shape[0], int(LEAD_S * RATE)), dtype=np.float32)
    return np.concatenate([lead, audio], axis=1)


def make_pairs(
    clips: list[tuple[str, np.ndarray]], recipes=RECIPES, *, seed: int, log=print
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mono ``(input, target)`` pairs: every channel of raw, DSP-repaired and clean copies."""
    pairs = []
    t0 = time.time()
    for cid, clean in clips:
        clean = with_lead(clean)
        for carrier, count in recipes:
            for k in range(count):
                s = zlib.crc32(f"train/{seed}/{cid}/{carrier}/{k}".encode())
                d = S.simulate(clean, RATE, carrier=carrier, seed=s)
                target = d.warped_reference if d.warped_reference is not None else d.reference
                repaired = dsp_chain(d.audio, RATE)
                for ch in range(clean.shape[0]):
                    pairs.append((d.audio[ch], target[ch]))
                    pairs.append((repaired[ch], target[ch]))
        pairs.append((clean[0], clean[0]))
        log(f"  {cid}: {len(pairs)} pairs, {time.time() - t0:.0f} s")
    return pairs


# -- training ----------------------------------------------------------------------------------


def si_sdr_loss(ref, est, eps: float = 1e-8):
    import torch

    ref = ref - ref.mean(dim=-1, keepdim=True)
    est = est - est.mean(dim=-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    noise = est - target
    ratio = (target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps)
    return -10.0 * torch.log10(ratio).mean()


def mr_stft_loss(ref, est):
    import torch

    loss = 0.0
    for n in (512, 1024, 2048):
        w = torch.hann_window(n, device=ref.device)
        a = torch.stft(ref, n, n // 4, window=w, return_complex=True).abs()
        b = torch.stft(est, n, n // 4, window=w, return_complex=True).abs()
        loss = loss + (torch.log(a + 1e-5) - torch.log(b + 1e-5)).abs().mean()
    return loss / 3.0


def enhance_torch(model, x):
    """Apply the network to waveforms ``x`` (batch, samples) with torch's STFT."""
    import torch

    w = torch.hann_window(N_FFT, periodic=True).sqrt()
    spec = torch.stft(x, N_FFT, HOP, window=w, return_complex=True)
    gain = model(spec.abs())
    return torch.istft(spec * gain, N_FFT, HOP, window=w, length=x.shape[-1])


def batches(pairs, rng: np.random.Generator, batch: int, seg: int):
    """Random crops with random level (-24..0 dB, the same for input and target)."""
    while True:
        xs, ys = [], []
        for i in rng.integers(0, len(pairs), size=batch):
            x, y = pairs[i]
            if x.shape[0] <= seg:
                x = np.pad(x, (0, seg - x.shape[0] + 1))
                y = np.pad(y, (0, seg - y.shape[0] + 1))
            s = int(rng.integers(0, x.shape[0] - seg))
            g = np.float32(10.0 ** (rng.uniform(-24.0, 0.0) / 20.0))
            xs.append(x[s : s + seg] * g)
            ys.append(y[s : s + seg] * g)
        yield np.stack(xs), np.stack(ys)


def train(args: argparse.Namespace) -> dict:
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    t_start = time.time()
    if args.tiny:
        t = np.arange(int(1.5 * RATE)) / RATE
        clean = (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(
            np.float32
        )
        clips = [("tiny-sine", clean[None, :])]
        pairs = make_pairs(clips, (("shellac78", 1),), seed=args.seed, log=lambda *_: None)
        config = EnhanceConfig(channels=16, dilations=(1, 2))
    else:
        clips = bench_clips(args.clean, held_out=False) + extra_clips(args.cache)
        print(f"{len(clips)} training clips: {', '.join(c for c, _ in clips)}", flush=True)
        cached = args.cache / f"pairs-seed{args.seed}.npz"
        if cached.exists():
            z = np.load(cached)
            pairs = [(z[f"x{i}"], z[f"y{i}"]) for i in range(len(z.files) // 2)]
        else:
            pairs = make_pairs(clips, seed=args.seed)
            flat = {f"{k}{i}": a for i, p in enumerate(pairs) for k, a in zip("xy", p, strict=True)}
            np.savez(cached, **flat)
        config = EnhanceConfig()
    t_data = time.time() - t_start
    print(f"{len(pairs)} pairs built in {t_data:.0f} s", flush=True)
    if args.init:
        from audio_restorer.ml.enhance_net import model_from_checkpoint

        model = model_from_checkpoint(torch.load(args.init, map_location="cpu", weights_only=True))
        model.train()
        print(f"continuing from {args.init}", flush=True)
    else:
        model = build_model(config)
    print(f"parameters: {count_parameters(model)}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    seg = int(args.segment_s * RATE)
    gen = batches(pairs, rng, args.batch, seg)
    budget = args.minutes * 60.0
    t_train = time.time()
    step, history = 0, []
    while True:
        elapsed = time.time() - t_train
        if (args.steps and step >= args.steps) or (not args.steps and elapsed >= budget):
            break
        frac = min(1.0, elapsed / budget) if not args.steps else step / args.steps
        for group in opt.param_groups:  # cosine decay to 5 % of the start rate
            group["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac)))
        x, y = next(gen)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        est = enhance_torch(model, x)
        loss = si_sdr_loss(y, est) * args.sisdr_weight + mr_stft_loss(y, est)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.append(float(loss.detach()))
        step += 1
        if step % 50 == 0:
            print(f"step {step} loss {np.mean(history[-50:]):.4f} "
                  f"{time.time() - t_train:.0f} s", flush=True)  # fmt: skip
    meta = {
        "seed": args.seed,
        "steps": step,
        "train_seconds": round(time.time() - t_train),
        "data_seconds": round(t_data),
        "clips": [c for c, _ in clips],
        "holdout_sources": list(HOLDOUT_SOURCES),
        "final_loss": float(np.mean(history[-50:])) if history else None,
        "torch": str(torch.__version__),
        "init": str(args.init.name) if args.init else None,
        "sisdr_weight": args.sisdr_weight,
        "lr": args.lr,
    }
    model.eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, args.out, meta)
    print(json.dumps(meta), flush=True)
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="weights file to write (.pt)")
    parser.add_argument("--clean", type=Path, default=ROOT / "bench-data" / "clean")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench-data" / "enhance-train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=17.0, help="training wall-time budget")
    parser.add_argument("--steps", type=int, default=0, help="stop after this many steps")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--segment-s", type=float, default=1.5)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--sisdr-weight", type=float, default=0.05, help="weight of the SI-SDR term (per dB)"
    )
    parser.add_argument("--init", type=Path, help="continue training from these weights")
    parser.add_argument("--tiny", action="store_true", help="one step on a tiny model (CI)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps = args.steps or 1
        args.batch, args.segment_s = 2, 0.5
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
