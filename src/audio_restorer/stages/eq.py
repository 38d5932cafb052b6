"""Playback equalisation of discs (and tapes) transferred flat.

A disc was cut with a recording characteristic: bass below a *turnover* cut (constant
amplitude), treble above a *rolloff* time constant boosted, and on LP-era curves a bass shelf
below ~50 Hz. Playing it back needs the inverse, defined by the same time constants. Historical
curves are therefore stored here as data (time constants in µs plus era and labels), and the
analog playback response

    H(s) = [s·τc / (1 + s·τc)] · (1 + s·τt) / ((1 + s·τl)(1 + s·τr)),   normalised to 0 dB at 1 kHz

(τc a bass cut, τt the turnover, τl the bass shelf, τr the rolloff; a missing factor is 1, and a
curve with a turnover but no shelf has τl = ∞, i.e. the bass boost keeps rising) is realised
digitally.

Why not the bilinear transform: it maps the analog frequency axis onto the digital one with
``tan``, so a 50–100 µs rolloff lands several dB too low in the top octave at 44.1 kHz. Here
each analog first-order factor becomes a digital first-order section, starting from the matched-z
positions, and two extra free first-order sections are added; all poles, zeros and the gain are
then fitted by least squares to the analog log-magnitude on a log-frequency grid up to 20.5 kHz
(or 0.95 × Nyquist). That keeps every curve within a few hundredths of a dB of its analog
definition from 20 Hz to 20 kHz, stays minimum phase (poles and zeros inside the unit circle),
and runs as a recursive filter with carried state, so block-wise output equals whole-file
output exactly. The infinite bass boost of shelf-less curves is stabilised by a pole at 2 Hz
(0.04 dB off the analog curve at 20 Hz); the rumble high-pass then removes what is below.

The curve only applies when the transfer was made *flat* (no RIAA preamp in the chain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, signal

from audio_restorer.errors import ParameterError
from audio_restorer.stages.base import FunctionStream, Stage, Stream
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register
from audio_restorer.stages.rumble import SosStream

#: a shelf-less turnover's bass boost is stopped by a pole at this frequency (Hz)
INTEGRATOR_POLE_HZ = 2.0
#: frequency (Hz) at which every curve is normalised to 0 dB
REFERENCE_HZ = 1000.0
_EXTRA_SECTIONS = 2


@dataclass(frozen=True)
class Curve:
    """A playback curve defined by its time constants (µs); None means the factor is absent.

    ``low_us = math.inf`` means "no bass shelf": the playback bass boost below the turnover keeps
    rising (constant-amplitude recording).
    """

    key: str
    label: str
    era: str
    low_us: float | None = None
    turnover_us: float | None = None
    rolloff_us: float | None = None
    bass_cut_us: float | None = None
    note: str = ""

    def describe(self) -> str:
        parts = [
            f"{v:g}" for v in (self.low_us, self.turnover_us, self.rolloff_us) if v and v < math.inf
        ]
        tcs = "/".join(parts) + " µs" if parts else "no EQ"
        return (
            f"{self.key}: {self.label} ({self.era}; {tcs}{'; ' + self.note if self.note else ''})"
        )


def _rolloff_for_db_at_10k(db: float) -> float:
    """Rolloff time constant (µs) whose first-order cut alone is ``db`` at 10 kHz."""
    return math.sqrt(10.0 ** (db / 10.0) - 1.0) / (2.0 * math.pi * 1e4) * 1e6


INF = math.inf
CURVES: dict[str, Curve] = {
    c.key: c
    for c in (
        Curve("flat", "flat, no playback EQ", "any"),
        Curve("emi250", "European 78 / EMI 250 Hz", "1925-1955 78s", INF, 636.0, None),
        Curve("blumlein300", "Blumlein 300 Hz", "1930s-50s HMV/Columbia UK 78s", INF, 531.0),
        Curve("blumlein500", "Blumlein 500 Hz", "1930s-50s 78s", INF, 318.0),
        Curve(
            "american78",
            "American 78 (250 Hz, -6 dB at 10 kHz)",
            "1925-1940s US 78s",
            INF,
            636.0,
            round(_rolloff_for_db_at_10k(6.0), 2),
        ),
        Curve(
            "columbia78", "Columbia 78 (300 Hz, -16 dB at 10 kHz)", "1938-1949", INF, 530.0, 100.0
        ),
        Curve("oldrca", "Old RCA Victor (800 Hz)", "1938-1947 RCA 78s", INF, 199.0, 36.7),
        Curve("decca_ffrr78", "Decca ffrr 78", "1944-1955 Decca 78s", INF, 531.0, 25.0),
        Curve("ccir78", "CCIR 78", "1950s European 78s", INF, 450.0, 50.0),
        Curve("iec_n78", "IEC N78 / DIN 78", "1950s-60s late 78s", 3180.0, 450.0, 50.0),
        Curve("nab1942", "NAB 1942 (lateral transcriptions)", "1942-1949", INF, 318.0, 100.0),
        Curve("columbia_lp", "Columbia LP", "1948-1955 Columbia LPs", 1590.0, 318.0, 100.0),
        Curve("nab1949", "NAB 1949", "1949-1955 transcriptions", 3180.0, 318.0, 100.0),
        Curve("aes1951", "AES 1951", "1951-1955 LPs", INF, 398.0, 63.7),
        Curve("rca_orthophonic", "RCA Old Orthophonic", "1952-1955 RCA LPs", INF, 318.0, 75.0),
        Curve("riaa", "RIAA / IEC", "LPs and 45s after 1955", 3180.0, 318.0, 75.0),
        Curve("london_lp", "London/Decca ffrr LP", "1949-1955 Decca LPs", 1590.0, 318.0, 50.0),
        Curve("teldec", "TELDEC / DIN", "1950s Telefunken/Decca LPs", 3180.0, 318.0, 50.0),
        Curve(
            "shellac",
            "generic 78",
            "unknown 78s",
            3180.0,
            398.0,
            50.0,
            note="400 Hz turnover, -10 dB at 10 kHz, bass shelf at 50 Hz",
        ),
        Curve(
            "tape",
            "NAB tape replayed on an IEC/CCIR machine (7.5 ips)",
            "1950s-70s tape",
            None,
            50.0,
            70.0,
            bass_cut_us=3180.0,
            note="undoes the IEC 70 µs replay and adds NAB's 50/3180 µs",
        ),
        Curve("custom", "custom time constants", "any", None),
    )
}


def curve_factors(curve: Curve, *, stable: bool = False) -> list[tuple[float, float, float, float]]:
    """Analog first-order factors ``(a, b, c, d)`` meaning ``(a·s + b) / (c·s + d)`` (s in rad/s).

    With ``stable`` the infinite shelf of a shelf-less turnover becomes a pole at
    :data:`INTEGRATOR_POLE_HZ` (what the digital filter realises).
    """
    us = 1e-6
    factors = []
    if curve.bass_cut_us:
        t = curve.bass_cut_us * us
        factors.append((t, 0.0, t, 1.0))
    if curve.turnover_us:
        t = curve.turnover_us * us
        low = curve.low_us
        if low is None:
            factors.append((t, 1.0, 0.0, 1.0))
        elif math.isinf(low):
            if stable:
                factors.append((t, 1.0, 1.0 / (2 * math.pi * INTEGRATOR_POLE_HZ), 1.0))
            else:
                factors.append((t, 1.0, t, 0.0))
        else:
            factors.append((t, 1.0, low * us, 1.0))
    elif curve.low_us and not math.isinf(curve.low_us):
        factors.append((0.0, 1.0, curve.low_us * us, 1.0))
    if curve.rolloff_us:
        factors.append((0.0, 1.0, curve.rolloff_us * us, 1.0))
    return factors


def analog_response_db(curve: Curve, freqs_hz: np.ndarray, *, stable: bool = False) -> np.ndarray:
    """The curve's analog playback response (dB, 0 dB at 1 kHz) at ``freqs_hz``."""
    freqs = np.asarray(freqs_hz, dtype=float)
    factors = curve_factors(curve, stable=stable)

    def mag(f: np.ndarray) -> np.ndarray:
        s = 2j * np.pi * f
        h = np.ones_like(s)
        for a, b, c, d in factors:
            h = h * (a * s + b) / (c * s + d)
        return np.abs(h)

    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(mag(freqs)) - 20.0 * np.log10(mag(np.array([REFERENCE_HZ]))[0])


def _curve_key(curve: Curve) -> tuple:
    return (curve.low_us, curve.turnover_us, curve.rolloff_us, curve.bass_cut_us)


@lru_cache(maxsize=64)
def _design(key: tuple, rate: int) -> tuple[np.ndarray, float]:
    curve = Curve("_", "", "", *key)
    factors = curve_factors(curve, stable=True)
    if not factors:
        return np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]]), 0.0
    f_hi = min(20500.0, 0.95 * rate / 2)
    freqs = np.geomspace(1.0, f_hi, 700)
    target = analog_response_db(curve, freqs, stable=True)
    zinv = np.exp(-2j * np.pi * freqs / rate)

    fixed_zero = []  # zeros exactly at DC (bass cut), not fitted
    free_init = []  # (pole, zero) starting points: matched z
    for a, b, c, d in factors:
        pole = math.exp(-d / (c * rate)) if c else 0.0
        if a and not b:
            fixed_zero.append(1.0)
            free_init.append((pole, None))
        else:
            free_init.append((pole, math.exp(-b / (a * rate)) if a else 0.0))
    free_init += [(0.0, 0.0)] * _EXTRA_SECTIONS

    # p = 1 - exp(u): u → -inf approaches the unit circle from inside, u ≤ log(1.95) keeps p > -0.95
    def unpack(x: np.ndarray) -> tuple[list[float], list[float]]:
        poles, zeros, i = [], [], 1
        for _, z in free_init:
            poles.append(1.0 - math.exp(x[i]))
            i += 1
            if z is not None:
                zeros.append(1.0 - math.exp(x[i]))
                i += 1
        return poles, zeros + fixed_zero

    def response_db(x: np.ndarray) -> np.ndarray:
        poles, zeros = unpack(x)
        h = np.ones_like(zinv)
        for p in poles:
            h = h / (1.0 - p * zinv)
        for q in zeros:
            h = h * (1.0 - q * zinv)
        return 20.0 * np.log10(np.abs(h)) + x[0]

    x0 = [0.0]
    for p, z in free_init:
        x0.append(math.log(max(1.0 - p, 1e-12)))
        if z is not None:
            x0.append(math.log(max(1.0 - z, 1e-12)))
    x0 = np.array(x0)
    x0[0] = -np.mean(response_db(x0) - target)
    upper = np.full(x0.size, math.log(1.95))
    upper[0] = np.inf
    x0 = np.minimum(x0, upper - 1e-9)
    sol = optimize.least_squares(lambda x: response_db(x) - target, x0, bounds=(-np.inf, upper))
    poles, zeros = unpack(sol.x)
    zeros = zeros + [0.0] * (len(poles) - len(zeros))
    ba = []
    for p, q in zip(poles, zeros, strict=True):
        ba.append((np.array([1.0, -q]), np.array([1.0, -p])))
    # pair the first-order sections into biquads
    sos = []
    for i in range(0, len(ba), 2):
        b, a = ba[i]
        if i + 1 < len(ba):
            b = np.convolve(b, ba[i + 1][0])
            a = np.convolve(a, ba[i + 1][1])
        else:
            b, a = np.append(b, 0.0), np.append(a, 0.0)
        sos.append(np.concatenate([b, a]))
    sos = np.array(sos)
    sos[0, :3] *= 10.0 ** (sol.x[0] / 20.0)
    err = float(np.max(np.abs(response_db(sol.x) - target)))
    return sos, err


def curve_sos(curve: Curve, rate: int) -> np.ndarray:
    """Second-order sections realising ``curve`` at ``rate`` (magnitude fitted to the analog)."""
    return _design(_curve_key(curve), int(rate))[0].copy()


@dataclass(frozen=True)
class EqParams(StageParams):
    curve: str = param(
        "flat",
        choices=tuple(CURVES),
        help=(
            "Playback curve; applies only when the transfer was made flat (no preamp EQ). "
            + "; ".join(c.describe() for c in CURVES.values() if c.key != "custom")
            + "; custom: low_us/turnover_us/rolloff_us below."
        ),
    )
    turnover_us: float = param(
        0.0,
        min=0.0,
        max=5000.0,
        step=1.0,
        unit="µs",
        help="custom curve: bass turnover time constant (f = 1/(2πτ)); 0 = none.",
    )
    rolloff_us: float = param(
        0.0,
        min=0.0,
        max=500.0,
        step=0.1,
        unit="µs",
        help="custom curve: treble rolloff time constant; 0 = none.",
    )
    low_us: float = param(
        0.0,
        min=0.0,
        max=20000.0,
        step=1.0,
        unit="µs",
        help="custom curve: bass shelf time constant; 0 = none (bass boost keeps rising).",
    )
    rumble_hz: float = param(
        15.0,
        min=0.0,
        max=150.0,
        step=1.0,
        unit="Hz",
        help="Rumble high-pass corner (4th-order Butterworth, -3 dB); 0 = off.",
    )
    lowpass_hz: float | None = param(
        None,
        min=1000.0,
        max=22000.0,
        step=50.0,
        unit="Hz",
        help="Surface-noise low-pass (4th order), 5000-6000 for early acoustic discs; unset = off.",
    )


def custom_curve(p: EqParams) -> Curve:
    turnover = p.turnover_us or None
    low = p.low_us or (INF if turnover else None)
    if turnover and low is not None and low <= turnover:
        raise ParameterError(
            f"eq.low_us must exceed eq.turnover_us (shelf below the turnover), got {p.low_us!r}"
        )
    return Curve("custom", "custom", "any", low, turnover, p.rolloff_us or None)


@register
class Eq(Stage):
    name = "eq"
    title = "Playback EQ"
    summary = "Playback equalisation curves for flat disc transfers, rumble high-pass, low-pass."
    Params = EqParams

    def curve(self) -> Curve:
        p = self.params
        return custom_curve(p) if p.curve == "custom" else CURVES[p.curve]

    def sos(self, rate: int) -> np.ndarray:
        """The whole filter (curve, rumble, low-pass) as second-order sections."""
        p = self.params
        parts = [curve_sos(self.curve(), rate)]
        if p.rumble_hz > 0:
            parts.append(
                signal.butter(4, min(p.rumble_hz, 0.45 * rate), "highpass", fs=rate, output="sos")
            )
        if p.lowpass_hz is not None and p.lowpass_hz < 0.49 * rate:
            parts.append(signal.butter(4, p.lowpass_hz, "lowpass", fs=rate, output="sos"))
        return np.vstack(parts)

    def open(self, rate: int, channels: int, analysis: object = None) -> Stream:
        return FunctionStream(SosStream(self.sos(rate), channels), channels)
