"""The ``enhance`` network: a compact time-frequency mask that removes residual surface noise.

The DSP chain (declick, decrackle, denoise) leaves a residue: noise between and under the
notes that a stationary noise profile cannot follow, crackle too small for the detector, and
the "musical noise" of spectral subtraction. This network predicts a bounded gain per STFT bin
from the log-magnitude spectrogram; the gain multiplies the complex STFT, so the phase is kept
and an all-ones gain gives the input back exactly.

Architecture (about 0.4 M parameters, 1.6 MB of float32 weights):

* input: ``log(|X|^2 + 1e-8)`` of a 1024-point STFT (513 bins, hop 256 at 44.1 kHz), scaled;
* a 1x1 convolution projects the 513 bins of each frame to ``channels`` features;
* ``len(dilations)`` residual blocks of a dilated 1-D convolution over time (kernel 3), a
  per-frame layer norm over the features and a GELU; the receptive field is finite
  (:meth:`EnhanceNet.receptive_frames`), so chunked processing with that much context equals
  whole-file processing;
* output: per-bin logits = a 1x1 convolution of the features plus a learned per-bin weight
  times the bin's local spectral contrast (its log power minus the mean over +-4 neighbouring
  bins), so harmonic peaks can pass while the valleys between them are cut;
* gain = ``floor + (1 - floor) * sigmoid(logits)``: never below ``floor`` (-30 dB), never
  above 1.

torch is imported inside the functions only (the stage module must import without it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

N_FFT = 1024
HOP = 256
BINS = N_FFT // 2 + 1
TRAIN_RATE = 44100


@dataclass(frozen=True)
class EnhanceConfig:
    """Hyper-parameters of :class:`EnhanceNet` (stored with the weights)."""

    bins: int = BINS
    channels: int = 96
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4, 8, 16)
    kernel: int = 3
    contrast_bins: int = 9
    floor_db: float = -30.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnhanceConfig:
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        if "dilations" in kw:
            kw["dilations"] = tuple(int(v) for v in kw["dilations"])
        return cls(**kw)


def build_model(config: EnhanceConfig | None = None) -> Any:
    """A freshly initialised :class:`EnhanceNet` (a ``torch.nn.Module``)."""
    import torch
    from torch import nn

    cfg = config or EnhanceConfig()

    class FrameNorm(nn.Module):
        """Layer norm over the feature axis of every frame (no statistics across time)."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(channels)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(x.transpose(1, 2)).transpose(1, 2)

    class Block(nn.Module):
        def __init__(self, channels: int, kernel: int, dilation: int) -> None:
            super().__init__()
            pad = dilation * (kernel - 1) // 2
            self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=pad)
            self.norm = FrameNorm(channels)
            self.act = nn.GELU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.act(self.norm(self.conv(x)))

    class EnhanceNet(nn.Module):
        """Log-magnitude spectrogram (batch, bins, frames) -> gain (batch, bins, frames)."""

        def __init__(self, cfg: EnhanceConfig) -> None:
            super().__init__()
            self.cfg = cfg
            self.inp = nn.Conv1d(cfg.bins, cfg.channels, 1)
            self.inp_norm = FrameNorm(cfg.channels)
            self.blocks = nn.ModuleList(Block(cfg.channels, cfg.kernel, d) for d in cfg.dilations)
            self.out = nn.Conv1d(cfg.channels, cfg.bins, 1)
            self.contrast_w = nn.Parameter(torch.zeros(cfg.bins, 1))
            nn.init.zeros_(self.out.weight)
            nn.init.constant_(self.out.bias, 3.0)  # start close to "pass everything"
            self.floor = float(10.0 ** (cfg.floor_db / 20.0))

        def receptive_frames(self) -> int:
            """Frames each side of a frame that influence its gain."""
            return sum(d * (self.cfg.kernel - 1) // 2 for d in self.cfg.dilations)

        def features(self, power: torch.Tensor) -> torch.Tensor:
            return (torch.log(power + 1e-8) + 6.0) / 4.0

        def forward(self, mag: torch.Tensor) -> torch.Tensor:
            feat = self.features(mag * mag)
            k = self.cfg.contrast_bins
            local = nn.functional.avg_pool1d(
                feat.transpose(1, 2), k, stride=1, padding=k // 2, count_include_pad=False
            ).transpose(1, 2)
            h = self.inp_norm(self.inp(feat))
            for block in self.blocks:
                h = block(h)
            logits = self.out(h) + self.contrast_w * (feat - local)
            return self.floor + (1.0 - self.floor) * torch.sigmoid(logits)

    return EnhanceNet(cfg)


def count_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def save_weights(model: Any, path: Any, meta: dict[str, Any] | None = None) -> None:
    """Write ``{"config": ..., "state": ..., "meta": ...}`` with plain types only, so the file
    loads with ``torch.load(weights_only=True)`` and no allow-list."""
    import torch

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    plain = json.loads(json.dumps(meta or {}, default=str))
    torch.save({"config": model.cfg.to_dict(), "state": state, "meta": plain}, path)


def model_from_checkpoint(data: Any) -> Any:
    """Rebuild the network from a loaded checkpoint dict (see :func:`save_weights`)."""
    from audio_restorer.errors import ModelLoadingError

    if not isinstance(data, dict) or "config" not in data or "state" not in data:
        raise ModelLoadingError("not an enhance checkpoint (expected config and state)")
    model = build_model(EnhanceConfig.from_dict(data["config"]))
    try:
        model.load_state_dict(data["state"])
    except RuntimeError as exc:
        raise ModelLoadingError(f"enhance weights do not fit the network: {exc}") from exc
    return model.eval()
