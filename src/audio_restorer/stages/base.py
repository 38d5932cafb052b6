"""The stage interface every processing step implements.

A stage is a small object you call, ``stage(audio, rate)``, built from a frozen parameter
dataclass. For long files the runner does not call it on the whole signal; it opens a *stream*
and pushes blocks through it, so memory stays bounded. A stage says what it needs for that:

* a **local** stage implements :meth:`Stage.process` on an array and declares, through
  :meth:`Stage.context_frames`, how many frames of context each side of a block it needs (and,
  through :meth:`Stage.alignment_frames`, a grid that block starts must fall on, e.g. an STFT
  hop). :class:`ContextStream` then feeds it overlapping windows and keeps only the centre, so
  the block-wise result equals the whole-file result.
* a **streaming** stage (a recursive filter, a look-ahead limiter) overrides :meth:`Stage.open`
  and carries its state from block to block, which is exact by construction.
* a stage that must see the whole file first (a noise profile, a loudness measurement) returns
  an :class:`Analyzer` from :meth:`Stage.analyzer`; the runner feeds it the stage's whole input
  before processing starts and hands its result to ``process``/``open``.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import numpy as np

from audio_restorer.audio.contract import check_audio, check_rate
from audio_restorer.errors import ParameterError
from audio_restorer.stages.params import StageParams


class Analyzer(Protocol):
    """Whole-file analysis pass: blocks in order, then one result."""

    def update(self, block: np.ndarray) -> None: ...

    def result(self) -> Any: ...


class Stream(Protocol):
    """A stage opened on a stream: push blocks in, get processed frames out, in order.

    ``push`` may return fewer frames than it was given (the stream is waiting for context) and
    ``finish`` returns the rest; over the whole stream the output has
    ``stage.output_frames(total_input_frames)`` frames.
    """

    def push(self, block: np.ndarray) -> np.ndarray: ...

    def finish(self) -> np.ndarray: ...


def empty(channels: int) -> np.ndarray:
    return np.zeros((channels, 0), dtype=np.float32)


class Stage(ABC):
    """Base class of every stage. Subclasses set the class attributes and override either
    :meth:`process` (local stages) or :meth:`open` (streaming stages)."""

    #: stable public name used by the CLI, presets and the GUI
    name: ClassVar[str]
    #: short human title
    title: ClassVar[str]
    #: one line saying what the stage does
    summary: ClassVar[str]
    Params: ClassVar[type[StageParams]]
    #: the output length differs from the input length (speed correction, resampling)
    changes_length: ClassVar[bool] = False
    #: the difference input − output is meaningful to listen to ("clicks only", "noise only")
    offers_removed: ClassVar[bool] = False
    #: the stage needs PyTorch (it must still import without it, and fail clearly when run)
    uses_torch: ClassVar[bool] = False
    #: the stage takes per-stem sub-chains (``stems=`` in its chain entry): separation
    takes_stem_chains: ClassVar[bool] = False

    def __init__(
        self,
        params: StageParams | None = None,
        *,
        device: str = "cpu",
        stems: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        if params is None:
            params = self.Params.from_dict(overrides)
        elif overrides:
            params = params.replace(**overrides)
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.name} expects {self.Params.__name__}, got {type(params)}")
        self.params = params
        self.device = device
        if stems and not self.takes_stem_chains:
            raise ParameterError(f"stage '{self.name}' does not take per-stem chains")
        self.stems: dict[str, Any] = dict(stems or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params = cls.__dict__.get("Params")
        if params is not None and params.stage_name == "stage":
            params.stage_name = cls.__dict__.get("name", cls.__name__)

    # -- what the stage needs from the runner ------------------------------------------------

    def context_frames(self, rate: int) -> int:
        """Frames of input context needed on each side of a block (local stages)."""
        return 0

    def alignment_frames(self, rate: int) -> int:
        """Block starts handed to :meth:`process` are multiples of this (e.g. an STFT hop)."""
        return 1

    def preferred_block_frames(self, rate: int) -> int:
        """Frames of output computed per :meth:`process` call when streaming."""
        return max(65536, 4 * self.context_frames(rate))

    def analyzer(self, rate: int, channels: int) -> Analyzer | None:
        """An analysis pass over the stage's whole input, or None if none is needed."""
        return None

    def output_frames(self, frames: int, rate: int) -> int:
        """Number of output frames for ``frames`` input frames (see ``changes_length``)."""
        return frames

    def output_channels(self, channels: int) -> int:
        """Number of output channels for ``channels`` input channels (e.g. stereo to mono)."""
        return channels

    # -- processing --------------------------------------------------------------------------

    def process(
        self, audio: np.ndarray, rate: int, *, analysis: Any = None, offset: int = 0
    ) -> np.ndarray:
        """Process an array (a whole file, or a window of one starting at frame ``offset``).

        Streaming stages need not override this: the default runs the stream over ``audio``.
        """
        if type(self).open is Stage.open:
            raise NotImplementedError(f"stage {self.name} must override process() or open()")
        stream = self.open(rate, audio.shape[0], analysis)
        out_channels = self.output_channels(audio.shape[0])
        return concat([stream.push(audio), stream.finish()], out_channels)

    def open(self, rate: int, channels: int, analysis: Any = None) -> Stream:
        """Open a stream. Local stages get a :class:`ContextStream` over :meth:`process`."""
        if type(self).process is Stage.process:
            raise NotImplementedError(f"stage {self.name} must override process() or open()")
        return ContextStream(self, rate, channels, analysis)

    def analyze(self, audio: np.ndarray, rate: int) -> Any:
        """Run the analysis pass over an in-memory array (None if the stage has none).

        Local stages call this when ``process`` is given no analysis (a direct call on an
        array); the runner instead feeds the analyzer the whole file block by block.
        """
        analyzer = self.analyzer(rate, audio.shape[0])
        if analyzer is None:
            return None
        in_pieces(analyzer.update, audio)
        return analyzer.result()

    def findings(self, analysis: Any) -> dict[str, Any]:
        """What the analysis pass decided, in plain JSON values, for the provenance report and
        the log; ``"summary"`` (one line for people) when there is something to say."""
        return {}

    def __call__(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """Process a whole in-memory signal (analysis pass included)."""
        check_audio(audio, check_rate(rate))
        return self.process(audio, rate, analysis=self.analyze(audio, rate))

    # -- description -------------------------------------------------------------------------

    def model_info(self) -> list[dict[str, Any]]:
        """Models (name, file, sha256) this stage uses, for the provenance report."""
        return []

    def describe(self) -> str:
        """``name(param=value, ...)``: used in logs and the BWF coding history."""
        values = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.to_dict().items())
        return f"{self.name}({values})"

    def __repr__(self) -> str:
        return f"<Stage {self.describe()}>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


#: most frames handed to a stream or an analyzer at once. A stage with a long context (dehum)
#: releases minutes of audio at a time, and an in-memory signal may be hours long; a stream or
#: an analysis working on all of it in one piece would need gigabytes (an STFT analysis of 87 s
#: of 96 kHz stereo: ~2 GB). Streams and analyzers give the same result for any split of their
#: input, so this only bounds memory.
HANDOFF_FRAMES = 1 << 16


def in_pieces(fn: Any, block: np.ndarray) -> Any:
    """``fn(block)``, called on pieces of at most ``HANDOFF_FRAMES`` frames; the outputs joined
    (arrays), or None for functions that return nothing (an analyzer's ``update``)."""
    size = HANDOFF_FRAMES
    if block.shape[1] <= size:
        return fn(block)
    parts = [fn(block[:, i : i + size]) for i in range(0, block.shape[1], size)]
    if parts[0] is None:
        return None
    return concat(parts, parts[0].shape[0])


def concat(parts: list[np.ndarray], channels: int) -> np.ndarray:
    """Concatenate blocks along time (an empty list gives zero frames)."""
    parts = [p for p in parts if p.shape[1]]
    if not parts:
        return empty(channels)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts, axis=1)


class _Fifo:
    """A growable (channels, frames) buffer that tracks the absolute index of its first frame."""

    def __init__(self, channels: int) -> None:
        self.data = np.zeros((channels, 0), dtype=np.float32)
        self.start = 0  # absolute index of data[:, 0]

    @property
    def end(self) -> int:
        return self.start + self.data.shape[1]

    def append(self, block: np.ndarray) -> None:
        if block.shape[1]:
            self.data = np.concatenate([self.data, block], axis=1)

    def view(self, start: int, stop: int) -> np.ndarray:
        return self.data[:, start - self.start : stop - self.start]

    def drop_before(self, index: int) -> None:
        if index > self.start:
            self.data = self.data[:, index - self.start :].copy()
            self.start = index


class ContextStream:
    """Run a local stage block by block with ``context`` frames each side of every block.

    Each output block ``[s, s+L)`` is computed from the input window
    ``[s-ctx, s+L+ctx)`` (clipped to the file) and only its centre is kept. Window starts fall
    on the stage's alignment grid, so frame-based methods (STFT) see the same frames as in a
    whole-file run.
    """

    def __init__(self, stage: Stage, rate: int, channels: int, analysis: Any) -> None:
        align = max(1, int(stage.alignment_frames(rate)))
        ctx = int(stage.context_frames(rate))
        self.ctx = -(-ctx // align) * align
        block = max(int(stage.preferred_block_frames(rate)), align)
        self.block = -(-block // align) * align
        self.stage = stage
        self.rate = rate
        self.channels = channels
        self.out_channels = stage.output_channels(channels)
        self.analysis = analysis
        self.buf = _Fifo(channels)
        self.pos = 0  # next output frame (absolute)

    def _run(self, stop: int) -> np.ndarray:
        win_start = max(0, self.pos - self.ctx)
        win_stop = min(self.buf.end, stop + self.ctx)
        window = self.buf.view(win_start, win_stop)
        out = self.stage.process(window, self.rate, analysis=self.analysis, offset=win_start)
        if out.shape != (self.out_channels, window.shape[1]):
            raise RuntimeError(
                f"stage {self.stage.name} returned shape {out.shape} for input {window.shape}"
            )
        result = out[:, self.pos - win_start : stop - win_start]
        self.pos = stop
        self.buf.drop_before(max(0, self.pos - self.ctx))
        return np.ascontiguousarray(result, dtype=np.float32)

    def push(self, block: np.ndarray) -> np.ndarray:
        self.buf.append(block)
        parts = []
        while self.buf.end >= self.pos + self.block + self.ctx:
            parts.append(self._run(self.pos + self.block))
        return concat(parts, self.out_channels)

    def finish(self) -> np.ndarray:
        if self.buf.end > self.pos:
            return self._run(self.buf.end)
        return empty(self.out_channels)


class FunctionStream:
    """A stream for pointwise or stateful stages: ``fn(block) -> block`` of the same length."""

    def __init__(self, fn: Any, channels: int) -> None:
        self.fn = fn
        self.channels = channels

    def push(self, block: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(block), dtype=np.float32) if block.shape[1] else block

    def finish(self) -> np.ndarray:
        return empty(self.channels)


def process_in_blocks(
    stage: Stage, audio: np.ndarray, rate: int, block_frames: int, analysis: Any = None
) -> np.ndarray:
    """Push ``audio`` through ``stage.open`` in blocks of ``block_frames`` (the runner's path).

    Used to check that a stage's block-wise output equals its whole-file output.
    """
    stream = stage.open(rate, audio.shape[0], analysis)
    parts = [
        stream.push(audio[:, i : i + block_frames]) for i in range(0, audio.shape[1], block_frames)
    ]
    parts.append(stream.finish())
    return concat(parts, audio.shape[0])
