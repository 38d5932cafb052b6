"""Peer systems for the benchmark: what an archivist could use instead of Audio Restorer.

Each peer is a named family of *settings*; each setting is a command template run on a WAV
file (ffmpeg, SoX) or a Python function on an array (noisereduce, identity). The benchmark tries
every setting of a peer on a task and reports the peer at its best setting, saying which.

Templates use ``{inp}`` and ``{out}`` (32-bit float WAV paths), ``{lead}`` (seconds of
noise-only lead-in at the start of the file, for noise profiles), ``{prof}`` (a scratch
file) and ``{hum}`` (the mains frequency; the notch peer is told the true one, which flatters
it: a user would have to pick 50 or 60 Hz, which is easy).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

FFMPEG = (
    "ffmpeg -nostdin -hide_banner -loglevel error -y -threads 1 "
    "-i {inp} -af {af} -c:a pcm_f32le {out}"
)


@dataclass
class Peer:
    """A peer system: a name, what it is for, and its settings (label -> how to run it)."""

    name: str
    summary: str
    settings: dict[str, str | Callable[..., np.ndarray]]
    #: settings used in --quick mode (a subset of ``settings``)
    quick: list[str] = field(default_factory=list)
    #: the setting used on tasks it was not designed for (e.g. "clean in")
    default: str = ""


def ffmpeg(af: str) -> str:
    return FFMPEG.replace("{af}", shlex.quote(af))


def _notch_chain(harmonics: int, q: float) -> str:
    parts = [f"bandreject=f={{hum_{k}}}:width_type=q:w={q}" for k in range(1, harmonics + 1)]
    return ffmpeg(",".join(parts))


SOX_NOISERED = (
    "sox -V1 {inp} -n trim 0 {lead} noiseprof {prof} && "
    "sox -V1 {inp} -e floating-point -b 32 {out} noisered {prof} {amount}"
)


def _noisereduce(stationary: bool, prop: float, use_lead: bool) -> Callable[..., np.ndarray]:
    def run(audio: np.ndarray, rate: int, lead: float, **_: object) -> np.ndarray:
        import noisereduce as nr

        kw: dict[str, object] = {"stationary": stationary, "prop_decrease": prop, "n_jobs": 1}
        if use_lead:
            kw["y_noise"] = audio[:, : int(lead * rate)]
        out = nr.reduce_noise(y=audio, sr=rate, **kw)
        return np.asarray(out, dtype=np.float32).reshape(audio.shape)

    return run


def _identity(audio: np.ndarray, rate: int, **_: object) -> np.ndarray:
    return audio.copy()


PEERS: dict[str, Peer] = {
    p.name: p
    for p in [
        Peer("none", "do nothing (the input itself)", {"-": _identity}, ["-"], "-"),
        Peer(
            "adeclick",
            "ffmpeg adeclick (autoregressive click detection and interpolation)",
            {
                "default": ffmpeg("adeclick"),
                "t=1.5": ffmpeg("adeclick=t=1.5"),
                "t=4": ffmpeg("adeclick=t=4"),
                "w=20:t=2": ffmpeg("adeclick=w=20:o=75:t=2"),
            },
            ["default", "t=4"],
            "default",
        ),
        Peer(
            "adeclip",
            "ffmpeg adeclip (autoregressive declipping)",
            {
                "default": ffmpeg("adeclip"),
                "t=5": ffmpeg("adeclip=t=5"),
                "a=16": ffmpeg("adeclip=a=16"),
            },
            ["default"],
            "default",
        ),
        Peer(
            "afftdn",
            "ffmpeg afftdn (FFT spectral subtraction), fixed noise floor",
            {
                "nr=12": ffmpeg("afftdn=nr=12"),
                "nr=24:nf=-40": ffmpeg("afftdn=nr=24:nf=-40"),
                "nr=30:nf=-30": ffmpeg("afftdn=nr=30:nf=-30"),
            },
            ["nr=12", "nr=24:nf=-40"],
            "nr=12",
        ),
        Peer(
            "afftdn_tn",
            "ffmpeg afftdn with noise tracking (tn=1)",
            {
                "nr=12:tn=1": ffmpeg("afftdn=nr=12:tn=1"),
                "nr=24:tn=1": ffmpeg("afftdn=nr=24:tn=1"),
            },
            ["nr=24:tn=1"],
            "nr=12:tn=1",
        ),
        Peer(
            "anlmdn",
            "ffmpeg anlmdn (non-local means)",
            {
                "s=1e-4": ffmpeg("anlmdn=s=0.0001"),
                "s=1e-3": ffmpeg("anlmdn=s=0.001"),
            },
            ["s=1e-3"],
            "s=1e-4",
        ),
        Peer(
            "sox_noisered",
            "SoX noiseprof + noisered, profile from the noise-only lead-in",
            {f"amount={a}": SOX_NOISERED.replace("{amount}", str(a)) for a in (0.1, 0.21, 0.3)},
            ["amount=0.21"],
            "amount=0.21",
        ),
        Peer(
            "noisereduce",
            "noisereduce (spectral gating), stationary, noise clip from the lead-in",
            {
                "prop=0.8": _noisereduce(True, 0.8, True),
                "prop=1.0": _noisereduce(True, 1.0, True),
            },
            ["prop=1.0"],
            "prop=1.0",
        ),
        Peer(
            "noisereduce_ns",
            "noisereduce, non-stationary spectral gating",
            {
                "prop=0.8": _noisereduce(False, 0.8, False),
                "prop=1.0": _noisereduce(False, 1.0, False),
            },
            ["prop=1.0"],
            "prop=1.0",
        ),
        Peer(
            "notch",
            "ffmpeg bandreject notches at the hum frequency and its harmonics",
            {
                "1 notch q=30": _notch_chain(1, 30),
                "4 notches q=30": _notch_chain(4, 30),
                "8 notches q=20": _notch_chain(8, 20),
            },
            ["1 notch q=30", "4 notches q=30"],
            "1 notch q=30",
        ),
    ]
}


def run_command(template: str, *, inp: str, out: str, prof: str, lead: float, hum: float) -> None:
    """Fill a command template and run it through the shell (it may chain two commands)."""
    values = {
        "inp": shlex.quote(inp),
        "out": shlex.quote(out),
        "prof": shlex.quote(prof),
        "lead": f"{lead:g}",
    }
    cmd = template
    for k in range(1, 17):
        cmd = cmd.replace(f"{{hum_{k}}}", f"{k * hum:g}")
    for key, value in values.items():
        cmd = cmd.replace("{" + key + "}", value)
    done = subprocess.run(
        cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if done.returncode:
        raise RuntimeError(f"{cmd!r} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
