"""Separation into stems, per-stem restoration and re-mixing, as one streaming stage.

Splitting a recording into stems lets each part be restored with the right tools (denoise the
voice, keep the drums' transients, leave the bass alone), and gives archivists and re-mixers
the stems themselves. The backend (:mod:`audio_restorer.separation`: ``hpss`` built in,
``demucs`` with PyTorch) yields *sources*; the stage keeps the ones named in ``stems`` and adds
a *residual* stem (``residual`` for HPSS, ``accompaniment`` for Demucs) defined as the mix
minus the kept stems, so the stems always add back up to the mix.

In ``per-stem`` mode every stem runs through its own sub-chain (from the chain entry's
``stems`` mapping: ``{"vocals": {"gain_db": 0, "chain": [...]}}``) and the restored stems are
summed; with no sub-chain and no gain the mix passes through untouched. In ``mix`` mode the
mix passes through unchanged and the stems are only produced for export.

The stream calls ``stream.stem_sink(stem, block, restored)`` (when the runner sets it) with
every stem's frames, in order: the raw stems, and in ``per-stem`` mode the restored ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from audio_restorer.errors import ParameterError
from audio_restorer.separation import TORCH_BACKENDS, create_backend
from audio_restorer.separation.streaming import Fifo, empty
from audio_restorer.stages.base import Analyzer, Stage, concat
from audio_restorer.stages.params import StageParams, param
from audio_restorer.stages.registry import register

EXPORT_CHOICES = ("none", "raw", "restored", "both")
DEFAULT_PATTERN = "{name}.{stem}.{ext}"


@dataclass(frozen=True)
class SeparateParams(StageParams):
    backend: str = param(
        "hpss",
        choices=("hpss", "demucs"),
        help="Separation method: hpss (harmonic/percussive, built in) or demucs (needs PyTorch "
        "and Demucs weights).",
    )
    model: str = param("htdemucs", help="Demucs model name (htdemucs, htdemucs_ft, ...).")
    stems: str = param(
        "auto",
        help="Comma list of stems kept separate (auto: all the backend's); the rest of the mix "
        "forms the residual stem.",
    )
    mode: str = param(
        "per-stem",
        choices=("per-stem", "mix"),
        help="per-stem: restore each stem with its chain, then re-mix; mix: pass the mix "
        "through unchanged (stems only for export).",
    )
    margin: float = param(
        1.0,
        min=1.0,
        max=10.0,
        step=0.1,
        help="HPSS margin: above 1, bins not clearly harmonic or percussive go to the residual.",
    )
    harmonic_ms: float = param(
        200.0, min=20.0, max=2000.0, step=10.0, unit="ms", help="HPSS median length along time."
    )
    percussive_hz: float = param(
        500.0,
        min=50.0,
        max=5000.0,
        step=10.0,
        unit="Hz",
        help="HPSS median width along frequency.",
    )
    segment_s: float | None = param(
        None,
        min=1.0,
        max=60.0,
        step=0.1,
        unit="s",
        help="Demucs segment length (auto: the model's own).",
    )
    overlap: float = param(
        0.25, min=0.0, max=0.9, step=0.05, help="Demucs overlap between segments (fraction)."
    )
    normalize: bool = param(
        True, help="Demucs: scale the mix to unit level before separating (as Demucs does)."
    )
    export: str = param(
        "none",
        choices=EXPORT_CHOICES,
        help="Write stems as files: none, raw (as separated), restored, or both.",
    )
    export_stems: str = param("all", help="Comma list of stems to write (all: every stem).")
    export_dir: str = param("", help="Folder for stem files (empty: next to the output).")
    export_pattern: str = param(
        DEFAULT_PATTERN,
        help="Stem file name; {name}: output name without extension, {stem}: stem, "
        "{ext}: output extension.",
    )


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _gain(entry: Mapping[str, Any], stem: str) -> float:
    value = entry.get("gain_db", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"separate: stems.{stem}.gain_db must be a number, got {value!r}")
    if not -60.0 <= float(value) <= 24.0:
        raise ParameterError(f"separate: stems.{stem}.gain_db must be in -60..24 dB, got {value}")
    return float(value)


@register
class Separate(Stage):
    name = "separate"
    title = "Stem separation"
    summary = "Split into stems (HPSS or Demucs), restore each with its own chain, re-mix."
    Params = SeparateParams
    takes_stem_chains = True

    def __init__(self, params: StageParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        assert isinstance(p, SeparateParams)
        if "{stem}" not in p.export_pattern:
            raise ParameterError(
                f"separate.export_pattern must contain {{stem}}, got {p.export_pattern!r}"
            )
        # the class says False (the default backend, hpss, needs no torch); an instance
        # configured for a torch backend says True, which is what the runner looks at
        self.uses_torch = p.backend in TORCH_BACKENDS  # type: ignore[misc]
        self.backend = create_backend(
            p.backend,
            model=p.model,
            margin=p.margin,
            harmonic_ms=p.harmonic_ms,
            percussive_hz=p.percussive_hz,
            segment_s=p.segment_s,
            overlap=p.overlap,
            normalize=p.normalize,
        )
        self._chains: dict[str, list[dict[str, Any]]] = {}
        self._gains: dict[str, float] = {}
        for stem, entry in self.stems.items():
            if not isinstance(entry, Mapping):
                raise ParameterError(f"separate: stems.{stem} must be a mapping, got {entry!r}")
            unknown = set(entry) - {"gain_db", "chain"}
            if unknown:
                raise ParameterError(
                    f"separate: stems.{stem} takes gain_db and chain, got {sorted(unknown)}"
                )
            chain = entry.get("chain", []) or []
            if not isinstance(chain, list):
                raise ParameterError(f"separate: stems.{stem}.chain must be a list")
            self._chains[stem] = chain
            self._gains[stem] = _gain(entry, stem)
            self._build_chain(stem)  # validates stage names and parameters now

    # -- configuration -----------------------------------------------------------------------

    def kept_sources(self) -> list[str]:
        """The backend's sources kept as separate stems (in the backend's order)."""
        available = self.backend.sources()
        requested = _split(self.params.stems)
        if not requested or requested == ["auto"]:
            return available
        unknown = [s for s in requested if s not in available]
        if unknown:
            raise ParameterError(
                f"separate.stems: {', '.join(unknown)} not produced by the "
                f"{self.params.backend} backend (available: {', '.join(available)})"
            )
        return [s for s in available if s in requested]

    def stem_names(self, channels: int = 2) -> list[str]:
        """The stems this configuration yields: the kept sources, then the residual."""
        names = [*self.kept_sources(), self.backend.residual_name]
        for stem in self.stems:
            if stem not in names:
                raise ParameterError(
                    f"separate: a chain is given for stem '{stem}', which this configuration "
                    f"does not produce (stems: {', '.join(names)})"
                )
        return names

    def export_targets(self, channels: int = 2) -> list[tuple[str, bool]]:
        """``(stem, restored)`` pairs the ``export`` parameters ask to write as files."""
        p = self.params
        if p.export == "none":
            return []
        names = self.stem_names(channels)
        wanted = _split(p.export_stems)
        if wanted and wanted != ["all"]:
            unknown = [s for s in wanted if s not in names]
            if unknown:
                raise ParameterError(
                    f"separate.export_stems: {', '.join(unknown)} is not a stem "
                    f"(stems: {', '.join(names)})"
                )
            names = [n for n in names if n in wanted]
        restored_exists = p.mode == "per-stem"
        kinds = {
            "raw": [False],
            "restored": [restored_exists],
            "both": [False, True] if restored_exists else [False],
        }[p.export]
        return [(n, r) for n in names for r in kinds]

    def export_path(self, output: Any, stem: str, restored: bool) -> Any:
        """Where stem ``stem`` of the mix written to ``output`` goes (a ``pathlib.Path``)."""
        from pathlib import Path

        out = Path(output)
        p = self.params
        label = stem if (restored or p.export != "both") else f"{stem}.raw"
        name = p.export_pattern.format(
            name=out.stem, stem=label, ext=out.suffix.lstrip(".") or "wav"
        )
        folder = Path(p.export_dir) if p.export_dir else out.parent
        return folder / name

    def _build_chain(self, stem: str) -> list[Stage]:
        from audio_restorer.pipeline.chain import Chain

        stages = Chain.from_list(self._chains.get(stem, [])).build(self.device)
        for stage in stages:
            if stage.takes_stem_chains:
                raise ParameterError(f"separate: stems.{stem} cannot contain another separation")
            if stage.changes_length:
                raise ParameterError(
                    f"separate: stage '{stage.name}' changes the length and cannot run on a "
                    f"stem (stems.{stem}); put it in the main chain"
                )
        return stages

    def per_stem(self) -> bool:
        """Whether the output is the re-mix of restored stems (else the mix passes through)."""
        if self.params.mode != "per-stem":
            return False
        return any(self._chains.get(s) for s in self._chains) or any(
            g != 0.0 for g in self._gains.values()
        )

    def analyzer(self, rate: int, channels: int) -> Analyzer | None:
        return self.backend.analyzer(rate, channels)

    def model_info(self) -> list[dict[str, Any]]:
        return self.backend.model_info()

    def describe(self) -> str:
        text = super().describe()
        if self.stems:
            parts = []
            for stem in self.stems:
                chain = ", ".join(e.get("stage", "?") for e in self._chains.get(stem, []))
                parts.append(f"{stem}: [{chain}] {self._gains.get(stem, 0.0):+g} dB")
            text += " stems{" + "; ".join(parts) + "}"
        return text

    # -- processing --------------------------------------------------------------------------

    def open(self, rate: int, channels: int, analysis: Any = None) -> SeparateStream:
        return SeparateStream(self, rate, channels, analysis)


class _StemChain:
    """One stem's sub-chain run as a stream, with its gain."""

    def __init__(self, stages: list[Stage], rate: int, channels: int, gain_db: float) -> None:
        self.streams = []
        for stage in stages:
            if stage.analyzer(rate, channels) is not None:
                raise ParameterError(
                    f"separate: stage '{stage.name}' needs a whole-file analysis pass and cannot "
                    "run inside a stem chain; use it in the main chain after separate"
                )
            if stage.output_channels(channels) != channels:
                raise ParameterError(
                    f"separate: stage '{stage.name}' changes the channel count and cannot run "
                    "inside a stem chain"
                )
            self.streams.append(stage.open(rate, channels, None))
        self.gain = np.float32(10.0 ** (gain_db / 20.0))
        self.channels = channels

    def push(self, block: np.ndarray) -> np.ndarray:
        for stream in self.streams:
            block = stream.push(block)
        return block * self.gain if self.gain != 1 else block

    def finish(self) -> np.ndarray:
        block: np.ndarray | None = None
        for stream in self.streams:
            parts = [stream.push(block)] if block is not None and block.shape[1] else []
            parts.append(stream.finish())
            block = concat(parts, self.channels)
        if block is None:
            return empty(self.channels)
        return block * self.gain if self.gain != 1 else block


class SeparateStream:
    """Mix blocks in, mix blocks out (re-mixed or passed through); stems to ``stem_sink``."""

    def __init__(self, stage: Separate, rate: int, channels: int, analysis: Any) -> None:
        self.stage = stage
        self.channels = channels
        self.kept = stage.kept_sources()
        self.names = stage.stem_names(channels)
        self.residual = stage.backend.residual_name
        self.remix = stage.per_stem()
        self.chains = {
            stem: _StemChain(stage._build_chain(stem), rate, channels, stage._gains.get(stem, 0.0))
            for stem in self.names
        }
        self.inner = stage.backend.open(rate, channels, stage.device, analysis)
        self.mix = Fifo(channels)
        self.restored = {stem: Fifo(channels) for stem in self.names}
        #: ``fn(stem, block, restored)`` called with every stem's frames, in order
        self.stem_sink: Callable[[str, np.ndarray, bool], None] | None = None

    def _emit(self, stem: str, block: np.ndarray, restored: bool) -> None:
        if self.stem_sink is not None and block.shape[1]:
            self.stem_sink(stem, block, restored)

    def _handle(self, sources: dict[str, np.ndarray], last: bool) -> np.ndarray:
        n = next(iter(sources.values())).shape[1] if sources else 0
        mix = self.mix.take(n) if n else empty(self.channels)
        stems: dict[str, np.ndarray] = {}
        total = np.zeros_like(mix)
        for name in self.kept:
            stems[name] = sources[name]
            total += sources[name]
        stems[self.residual] = mix - total
        for name in self.names:
            self._emit(name, stems[name], False)
        if not self.remix:
            if self.stage.params.mode == "per-stem":  # nothing to restore: restored == raw
                for name in self.names:
                    self._emit(name, stems[name], True)
            return mix
        for name in self.names:
            chain = self.chains[name]
            parts = [chain.push(stems[name])] if n else []
            if last:
                parts.append(chain.finish())
            out = concat(parts, self.channels)
            self._emit(name, out, True)
            self.restored[name].append(out)
        ready = min(self.restored[name].end - self.restored[name].start for name in self.names)
        if not ready:
            return empty(self.channels)
        result = np.zeros((self.channels, ready), dtype=np.float32)
        for name in self.names:
            result += self.restored[name].take(ready)
        return result

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        self.mix.append(block)
        return self._handle(self.inner.push(block), last=False)

    def finish(self) -> np.ndarray:
        return self._handle(self.inner.finish(), last=True)
