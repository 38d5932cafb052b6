"""Learned residual-noise removal: a small mask network run after the DSP repair stages.

The classic chain (declick, decrackle, denoise) removes what it can model: isolated clicks,
crackle impulses above a detection threshold, stationary noise below a profile. What is left is
surface noise that changes with the groove, small crackle and the spectral-subtraction
residue. A compact network (:mod:`audio_restorer.ml.enhance_net`, ~0.4 M parameters, trained on
the project's simulator, see ``resources/models/enhance/MODEL_CARD.md``) predicts a gain
between -30 dB and 0 dB for every STFT bin; the gain multiplies the complex STFT (phase kept)
and ``strength`` mixes it with the dry signal (a gain of ``1 - strength * (1 - g)``).

It is a local stage: the network's receptive field is finite (about 0.36 s each side at
44.1 kHz), the STFT frames sit on a grid anchored at the file start
(:mod:`audio_restorer.stages._stft`), so block-wise output equals whole-file output within
float rounding. Other sample rates use an FFT of about the same duration (23 ms) and the
magnitudes are interpolated onto the network's 43 Hz bin grid (and the gains back).

torch is imported only when the stage runs; the module imports without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio_restorer.errors import ModelLoadingError
from audio_restorer.stages._stft import fft_size, istft, stft
from audio_restorer.stages.base import Stage
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

DEFAULT_WEIGHTS = "enhance-v1.pt"
#: the folder inside each model folder that holds the enhance weights
SUBDIR = "enhance"
#: FFT duration the network was trained with (1024 samples at 44.1 kHz)
WINDOW_MS = 1000.0 * 1024 / 44100

_CACHE: dict[tuple[str, str, str], Any] = {}


@dataclass(frozen=True)
class EnhanceParams(StageParams):
    strength: float = param(
        1.0,
        min=0.0,
        max=1.0,
        step=0.05,
        help="Dry/wet: 0 passes the input through, 1 applies the network's full gain.",
    )
    model: str = param(
        DEFAULT_WEIGHTS,
        help="Weights file (in the models folders, under enhance/ or at the top level).",
    )


def find_weights(name: str) -> Path:
    """Path of the weights file ``name`` in the model folders (bundled first)."""
    from audio_restorer.models import store

    if Path(name).name != name:
        raise ModelLoadingError(f"enhance: model must be a file name, got {name!r}")
    found = store.find_model_file([f"{SUBDIR}/{name}", name])
    if found is None:
        folders = ", ".join(str(f) for _, f in store.model_dirs())
        raise ModelLoadingError(f"enhance: weights {name!r} not found in {folders}")
    return found.path


def load_network(path: Path, device: str = "cpu") -> tuple[Any, str]:
    """The network stored at ``path`` (checksum verified, ``weights_only`` load) and its sha256.

    Cached per file, content and device.
    """
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ModelLoadingError("the enhance stage needs PyTorch, which is not installed") from exc
    from audio_restorer.ml.enhance_net import model_from_checkpoint
    from audio_restorer.models import store

    digest = store.check_before_load(path)
    key = (str(path.resolve()), digest, device)
    if key not in _CACHE:
        data = store.safe_torch_load(path)
        _CACHE[key] = model_from_checkpoint(data).to(device)
    return _CACHE[key], digest


def bin_map(rate: int, n_fft: int, net_bins: int, net_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear-interpolation matrices between the stage's bins and the network's bins.

    Returns ``to_net`` [shape=(net_bins, bins)] and ``from_net`` [shape=(bins, net_bins)];
    both are identities when the grids agree. Network bins above the input's Nyquist get
    zero magnitude; stage bins above the network's top bin take its gain.
    """
    bins = n_fft // 2 + 1
    f_in = np.arange(bins) * rate / n_fft
    f_net = np.arange(net_bins) * (net_rate / 2) / (net_bins - 1)

    def interp_matrix(f_src: np.ndarray, f_dst: np.ndarray, zero_above: bool) -> np.ndarray:
        m = np.zeros((f_dst.size, f_src.size), dtype=np.float32)
        pos = np.interp(f_dst, f_src, np.arange(f_src.size))
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, f_src.size - 1)
        w = (pos - lo).astype(np.float32)
        rows = np.arange(f_dst.size)
        m[rows, lo] += 1.0 - w
        m[rows, hi] += w
        if zero_above:
            m[f_dst > f_src[-1] + 1e-6] = 0.0
        return m

    if bins == net_bins and rate == net_rate:
        eye = np.eye(bins, dtype=np.float32)
        return eye, eye
    return interp_matrix(f_in, f_net, True), interp_matrix(f_net, f_in, False)


@register
class Enhance(Stage):
    name = "enhance"
    title = "Enhance (learned)"
    summary = "Small neural mask that removes residual surface noise left by the DSP stages."
    Params = EnhanceParams
    offers_removed = True
    uses_torch = True

    def _fft(self, rate: int) -> tuple[int, int]:
        n_fft = fft_size(rate, WINDOW_MS)
        return n_fft, n_fft // 4

    def _receptive(self) -> int:
        from audio_restorer.ml.enhance_net import EnhanceConfig

        cfg = EnhanceConfig()
        return sum(d * (cfg.kernel - 1) // 2 for d in cfg.dilations)

    def context_frames(self, rate: int) -> int:
        n_fft, hop = self._fft(rate)
        # every frame touching the block, plus the network's receptive field, plus a margin
        return (self._receptive() + 2) * hop + n_fft

    def alignment_frames(self, rate: int) -> int:
        return self._fft(rate)[1]

    def _network(self) -> tuple[Any, Path, str]:
        p = self.params
        assert isinstance(p, EnhanceParams)
        path = find_weights(p.model)
        model, digest = load_network(path, self._torch_device())
        if model.receptive_frames() > self._receptive():
            raise ModelLoadingError(
                f"enhance: {path.name} has a receptive field of {model.receptive_frames()} "
                f"frames, more than the stage's context allows ({self._receptive()})"
            )
        return model, path, digest

    def _torch_device(self) -> str:
        if self.device.startswith("cuda"):
            import torch

            if torch.cuda.is_available():
                return self.device
        return "cpu"

    def process(
        self, audio: np.ndarray, rate: int, *, analysis: Any = None, offset: int = 0
    ) -> np.ndarray:
        import torch

        from audio_restorer.ml.enhance_net import TRAIN_RATE

        p = self.params
        assert isinstance(p, EnhanceParams)
        if p.strength == 0.0 or audio.shape[1] == 0:
            return audio.copy()
        model, _, _ = self._network()
        n_fft, hop = self._fft(rate)
        spec = stft(audio, n_fft, hop)  # (channels, frames, bins)
        mag = np.abs(spec).transpose(0, 2, 1)  # (channels, bins, frames)
        to_net, from_net = bin_map(rate, n_fft, model.cfg.bins, TRAIN_RATE)
        identity = to_net.shape[0] == to_net.shape[1] and rate == TRAIN_RATE
        net_mag = mag if identity else np.einsum("nb,cbt->cnt", to_net, mag)
        device = self._torch_device()
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(net_mag, dtype=np.float32)).to(device)
            gain = model(x).float().cpu().numpy()
        if not identity:
            gain = np.einsum("bn,cnt->cbt", from_net, gain)
        gain = 1.0 - np.float32(p.strength) * (1.0 - gain)
        out = istft(spec * gain.transpose(0, 2, 1), n_fft, hop, audio.shape[1])
        return np.ascontiguousarray(out, dtype=np.float32)

    def model_info(self) -> list[dict[str, Any]]:
        _, path, digest = self._network()
        return [{"name": f"enhance:{path.stem}", "path": str(path), "sha256": digest}]
