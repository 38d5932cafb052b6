"""Demucs (v4) as a separation backend, streamed so hour-long tapes fit in memory.

The model is Demucs's own: weights are loaded into Demucs's classes and every segment goes
through :func:`demucs.apply.apply_model`. What this module adds is what a long archival
transfer needs and ``apply_model`` does not give:

* **bounded memory** -- ``apply_model(split=True)`` allocates the output of the *whole* file
  (sources x channels x frames, 5 GB for an hour of stereo with 4 sources) on the host. Here
  the same segment grid (length ``segment``, stride ``(1 - overlap) * segment``, the same
  triangular cross-fade weights) is run as a stream: a segment is separated as soon as its
  input is buffered and the frames no later segment touches are released. Only about one
  segment of input and output is held, and the device only ever sees one segment, so neither
  GPU memory nor host memory grows with the file. The result equals ``apply_model`` on the
  whole file (``shifts=0``) to float rounding (tested).
* **determinism** -- ``shifts=0``: no random time shifts, so the same input gives the same
  stems.
* **offline weights** through :mod:`audio_restorer.models.store`, loaded with
  ``weights_only=True`` and an allow-list of Demucs's model classes.
* optional **level normalisation** as Demucs's command line does it: the mix is divided by the
  standard deviation of its mono sum (from an analysis pass) and the stems multiplied back.
* any sample rate (soxr to and from the model's rate) and mono input (duplicated to stereo,
  stems averaged back).

torch and demucs are imported inside functions only; ``demucs.api``/``demucs.separate`` are
never imported (they pull in torchaudio, which cannot load on CPU-only machines here).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from audio_restorer.errors import ModelLoadingError, ParameterError
from audio_restorer.models import store
from audio_restorer.separation.streaming import Fifo, empty

#: models Demucs publishes (each a bag description in Demucs's ``remote`` folder)
KNOWN_MODELS = (
    "htdemucs",
    "htdemucs_ft",
    "htdemucs_6s",
    "hdemucs_mmi",
    "mdx",
    "mdx_extra",
    "mdx_q",
    "mdx_extra_q",
)


def _demucs_remote_dir() -> Path | None:
    """Demucs's packaged ``remote`` folder (bag descriptions, file list), found without
    importing demucs (importing it imports torch)."""
    spec = importlib.util.find_spec("demucs")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "remote"
    return folder if folder.is_dir() else None


def _remote_file_names() -> dict[str, str]:
    """signature -> published weights file name (``955717e8-8726e21a.th``)."""
    remote = _demucs_remote_dir()
    names: dict[str, str] = {}
    if remote is None or not (remote / "files.txt").is_file():
        return names
    for line in (remote / "files.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and not line.startswith("root:"):
            names[line.split("-", 1)[0]] = line
    return names


class DemucsSpec:
    """A resolved Demucs model: its bag description and the weights file of each member."""

    def __init__(self, name: str, bag: dict[str, Any], bag_path: Path | None, files: list[Path]):
        self.name = name
        self.bag = bag
        self.bag_path = bag_path
        self.files = files


def _missing(name: str, what: str) -> ModelLoadingError:
    folders = "\n".join(f"  {kind}: {folder}" for kind, folder in store.model_dirs())
    return ModelLoadingError(
        f"Demucs model '{name}' needs {what}, which is not installed. Nothing is downloaded "
        f"at run time: copy the file into your models folder ({store.user_models_dir()}) or "
        f"run `audio-restorer models import PATH`. Folders searched, in order:\n{folders}"
    )


def resolve(name: str) -> DemucsSpec:
    """Find the bag description and weights of Demucs model ``name`` in the model folders.

    ``name`` is a bag name (``htdemucs``; described by ``<name>.yaml`` in a model folder or in
    Demucs's package) or a single model signature (``<sig>.th`` / ``<sig>-<sha8>.th``).
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ParameterError(f"demucs model must be a model name, got {name!r}")
    single = store.find_model_file([f"{name}.th", f"{name}-????????.th"])
    found = store.find_model_file(f"{name}.yaml")
    bag_path: Path | None = found.path if found else None
    if bag_path is None and single is None:
        remote = _demucs_remote_dir()
        if remote is not None and (remote / f"{name}.yaml").is_file():
            bag_path = remote / f"{name}.yaml"
    if bag_path is None:
        if single is None:
            raise _missing(name, f"'{name}.yaml' (a bag description) or '{name}.th'")
        return DemucsSpec(name, {"models": [name]}, None, [single.path])
    try:
        bag = yaml.safe_load(bag_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadingError(f"{bag_path}: unreadable bag description ({exc})") from None
    if not isinstance(bag, dict) or not isinstance(bag.get("models"), list) or not bag["models"]:
        raise ModelLoadingError(f"{bag_path}: a bag description needs a 'models' list")
    published = _remote_file_names()
    files = []
    for sig in bag["models"]:
        sig = str(sig)
        hit = store.find_model_file([f"{sig}.th", f"{sig}-????????.th"])
        if hit is None:
            raise _missing(name, f"the weights file '{published.get(sig, sig + '.th')}'")
        files.append(hit.path)
    return DemucsSpec(name, bag, bag_path, files)


def _allowed_globals() -> list[Any]:
    from fractions import Fraction

    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    return [Demucs, HDemucs, HTDemucs, Fraction]


_CACHE: dict[tuple[str, tuple[str, ...]], tuple[Any, list[dict[str, Any]]]] = {}


def load(name: str) -> tuple[Any, list[dict[str, Any]]]:
    """Demucs model ``name`` (a model or a ``BagOfModels``, in eval mode, on the CPU) and
    its provenance entries ``[{"name", "path", "sha256"}]``. Cached per file set."""
    # the libraries first: a build without PyTorch should say so, not ask for weights
    try:
        from demucs.apply import BagOfModels
        from demucs.states import load_model
    except ImportError as exc:
        raise ModelLoadingError(
            f"the demucs backend needs Demucs and PyTorch, which this installation lacks "
            f"({exc}); use the built-in 'hpss' backend or the full build"
        ) from exc
    spec = resolve(name)
    key = (name, tuple(str(p) for p in spec.files))
    if key in _CACHE:
        return _CACHE[key]
    info = []
    models = []
    allowed = _allowed_globals()
    for path in spec.files:
        digest = store.check_before_load(path)
        package = store.safe_torch_load(path, allowed)
        if not isinstance(package, dict) or not {"klass", "args", "kwargs", "state"} <= set(
            package
        ):
            raise ModelLoadingError(f"{path}: not a Demucs model package")
        if isinstance(package["state"], dict) and package["state"].get("__quantized"):
            raise ModelLoadingError(
                f"{path}: quantised Demucs models (mdx_q, mdx_extra_q) need diffq, which is "
                "not supported; use the unquantised model (mdx, mdx_extra)"
            )
        models.append(load_model(package))
        info.append({"name": f"demucs:{name}:{path.stem}", "path": str(path), "sha256": digest})
    if spec.bag_path is not None:
        info.append(
            {
                "name": f"demucs:{name}:bag",
                "path": str(spec.bag_path),
                "sha256": store.sha256_file(spec.bag_path),
            }
        )
    if spec.bag_path is None and len(models) == 1:
        model = models[0]
    else:
        model = BagOfModels(models, spec.bag.get("weights"), spec.bag.get("segment"))
    model.eval()
    _CACHE[key] = (model, info)
    return model, info


def model_segment(model: Any) -> float:
    """The segment length (s) Demucs itself uses for ``model`` when splitting."""
    if hasattr(model, "models"):
        return float(model.models[0].segment)
    return float(model.segment)


class LevelAnalyzer:
    """Standard deviation of the mono sum over the whole file (Demucs's normalisation)."""

    def __init__(self) -> None:
        self.n = 0
        self.s1 = 0.0
        self.s2 = 0.0

    def update(self, block: np.ndarray) -> None:
        mono = np.asarray(block, dtype=np.float64).mean(axis=0)
        self.n += mono.size
        self.s1 += float(mono.sum())
        self.s2 += float(np.dot(mono, mono))

    def result(self) -> dict[str, float]:
        if self.n == 0:
            return {"std": 1.0}
        mean = self.s1 / self.n
        var = max(self.s2 / self.n - mean * mean, 0.0)
        return {"std": float(np.sqrt(var))}


class SegmentStream:
    """Demucs's overlap-add segment grid as a stream, at the model's rate and channels.

    Parameters
    ----------
    model : demucs model or BagOfModels
    sources : int
        Number of sources the model yields.
    channels : int
        ``model.audio_channels``.
    segment : float or None
        Segment length in seconds (None: the model's own).
    overlap : float
        Fraction of a segment shared by consecutive segments (Demucs's ``overlap``).
    device : str
        Where the model runs; audio stays on the CPU.
    """

    def __init__(
        self,
        model: Any,
        sources: int,
        channels: int,
        segment: float | None,
        overlap: float,
        device: str,
    ) -> None:
        import torch

        self.model = model
        self.segment_arg = segment
        seg = segment if segment is not None else model_segment(model)
        self.seg_len = int(model.samplerate * seg)
        self.stride = int((1 - overlap) * self.seg_len)
        if self.stride < 1:
            raise ParameterError(f"demucs overlap leaves no stride: {overlap}")
        half = self.seg_len // 2
        weight = torch.cat(
            [torch.arange(1, half + 1), torch.arange(self.seg_len - half, 0, -1)]
        ).float()
        self.weight = (weight / weight.max()).numpy()
        self.sources = sources
        self.channels = channels
        self.device = device
        self.buf = Fifo(channels)
        self.next_offset = 0
        self.acc = np.zeros((sources, channels, 0), dtype=np.float32)
        self.wsum = np.zeros(0, dtype=np.float32)
        self.acc_start = 0  # absolute frame of acc[..., 0]: first frame not yet released

    def _separate(self, offset: int) -> None:
        import torch
        from demucs.apply import TensorChunk, apply_model

        window = self.buf.view(self.buf.start, self.buf.end)
        tensor = torch.from_numpy(np.ascontiguousarray(window))[None]
        chunk = TensorChunk(tensor, offset - self.buf.start, self.seg_len)
        with torch.inference_mode():
            out = apply_model(
                self.model,
                chunk,
                shifts=0,
                split=False,
                segment=self.segment_arg,
                device=self.device,
            )
        result = out[0].to("cpu", torch.float32).numpy()  # (sources, channels, length)
        length = result.shape[-1]
        stop = offset + length
        grow = stop - (self.acc_start + self.acc.shape[-1])
        if grow > 0:
            self.acc = np.concatenate(
                [self.acc, np.zeros((self.sources, self.channels, grow), np.float32)], axis=-1
            )
            self.wsum = np.concatenate([self.wsum, np.zeros(grow, np.float32)])
        a, b = offset - self.acc_start, stop - self.acc_start
        w = self.weight[:length]
        self.acc[..., a:b] += w * result
        self.wsum[a:b] += w

    def _release(self, stop: int) -> np.ndarray:
        n = stop - self.acc_start
        if n <= 0:
            return np.zeros((self.sources, self.channels, 0), np.float32)
        out = self.acc[..., :n] / self.wsum[:n]
        self.acc = self.acc[..., n:].copy()
        self.wsum = self.wsum[n:].copy()
        self.acc_start = stop
        return out.astype(np.float32)

    def _keep_from(self) -> None:
        # a truncated last segment is padded with up to half a segment of earlier input
        self.buf.drop_before(max(0, self.next_offset - self.seg_len))

    def push(self, block: np.ndarray) -> np.ndarray:
        """Separated frames ``(sources, channels, n)`` that no later segment will change."""
        self.buf.append(block)
        released = []
        while self.buf.end >= self.next_offset + self.seg_len:
            self._separate(self.next_offset)
            self.next_offset += self.stride
            released.append(self._release(self.next_offset))
            self._keep_from()
        if not released:
            return np.zeros((self.sources, self.channels, 0), np.float32)
        return np.concatenate(released, axis=-1)

    def finish(self) -> np.ndarray:
        total = self.buf.end
        while self.next_offset < total:
            self._separate(self.next_offset)
            self.next_offset += self.stride
        return self._release(total)


class DemucsStream:
    """Mix blocks at any rate and channel count (1 or 2) in, Demucs sources out."""

    def __init__(
        self,
        model: Any,
        rate: int,
        channels: int,
        device: str,
        *,
        segment: float | None,
        overlap: float,
        scale: float,
    ) -> None:
        from audio_restorer.audio.resample import Resampler

        if channels not in (1, 2):
            raise ParameterError(
                f"demucs separates mono or stereo recordings, got {channels} channels"
            )
        self.names = list(model.sources)
        self.channels = channels
        self.model_channels = int(model.audio_channels)
        self.model_rate = int(model.samplerate)
        self.rate = rate
        self.scale = scale
        self.core = SegmentStream(
            model, len(self.names), self.model_channels, segment, overlap, device
        )
        self.resample = rate != self.model_rate
        if self.resample:
            self.down = Resampler(rate, self.model_rate, self.model_channels)
            self.up = [Resampler(self.model_rate, rate, self.model_channels) for _ in self.names]
        self.pushed = 0
        self.emitted = 0

    def _to_model(self, block: np.ndarray) -> np.ndarray:
        x = np.asarray(block, dtype=np.float32)
        if self.channels != self.model_channels:
            x = np.repeat(x.mean(axis=0, keepdims=True), self.model_channels, axis=0)
        return x / self.scale

    def _from_model(self, stems: np.ndarray, last: bool) -> dict[str, np.ndarray]:
        per = []
        for k in range(len(self.names)):
            y = stems[k]
            if self.resample:
                parts = [self.up[k].push(y)] if y.shape[1] else []
                if last:
                    parts.append(self.up[k].finish())
                y = np.concatenate(parts, axis=1) if parts else empty(self.model_channels)
            per.append(y)
        n = per[0].shape[1] if per else 0
        limit = self.pushed - self.emitted
        if last:
            pad = max(0, limit - n)
            n = limit
        else:
            pad = 0
            n = min(n, limit)
        out = {}
        for name, y in zip(self.names, per, strict=True):
            y = y[:, :n]
            if pad:
                y = np.concatenate([y, np.zeros((y.shape[0], pad), np.float32)], axis=1)
            if self.channels != self.model_channels:
                y = y.mean(axis=0, keepdims=True)
            out[name] = np.ascontiguousarray(y * self.scale, dtype=np.float32)
        self.emitted += n
        return out

    def push(self, block: np.ndarray) -> dict[str, np.ndarray]:
        self.pushed += block.shape[1]
        x = self._to_model(block)
        if self.resample:
            x = self.down.push(x)
        return self._from_model(self.core.push(x), last=False)

    def finish(self) -> dict[str, np.ndarray]:
        stems = []
        if self.resample:
            tail = self.down.finish()
            if tail.shape[1]:
                stems.append(self.core.push(tail))
        stems.append(self.core.finish())
        return self._from_model(np.concatenate(stems, axis=-1), last=True)


class DemucsBackend:
    """The Demucs backend: vocals / drums / bass / other (/ guitar / piano)."""

    name = "demucs"
    uses_torch = True
    residual_name = "accompaniment"

    def __init__(
        self,
        *,
        model: str = "htdemucs",
        segment_s: float | None = None,
        overlap: float = 0.25,
        normalize: bool = True,
        **_ignored: Any,
    ) -> None:
        if not 0.0 <= overlap < 1.0:
            raise ParameterError(f"demucs overlap must be in 0..1, got {overlap}")
        self.model_name = model
        self.segment_s = segment_s
        self.overlap = overlap
        self.normalize = normalize

    def _model(self) -> tuple[Any, list[dict[str, Any]]]:
        model, info = load(self.model_name)
        if self.segment_s is not None:
            limit = model_segment(model)
            if self.segment_s > limit + 1e-9:
                raise ParameterError(
                    f"demucs segment_s must be at most {limit:g} s for model "
                    f"'{self.model_name}', got {self.segment_s:g}"
                )
        return model, info

    def sources(self) -> list[str]:
        return list(self._model()[0].sources)

    def analyzer(self, rate: int, channels: int) -> LevelAnalyzer | None:
        return LevelAnalyzer() if self.normalize else None

    def open(
        self, rate: int, channels: int, device: str = "cpu", analysis: Any = None
    ) -> DemucsStream:
        model, _ = self._model()
        scale = 1.0
        if self.normalize and analysis is not None:
            scale = max(float(analysis.get("std", 1.0)), 1e-4)
        return DemucsStream(
            model,
            rate,
            channels,
            device,
            segment=self.segment_s,
            overlap=self.overlap,
            scale=scale,
        )

    def model_info(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self._model()[1]]
