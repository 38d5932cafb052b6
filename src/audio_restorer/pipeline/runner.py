"""The runner: restores one file through a chain, block by block, in bounded memory.

How a run goes:

1. The input is probed and hashed; the output path is checked (never the source, a writable
   folder). Nothing is written next to the target except hidden temporary files.
2. The chain is cut into *segments* at every stage that needs an analysis pass. The first pass
   reads the input (measuring it for the report); a segment that ends at an analysis stage
   writes its output to a hidden float32 spill file while feeding that stage's analyzer, and
   the next segment reads the spill file. A chain without analysis stages streams straight from
   input to output in one pass.
3. Every block goes through each stage's stream (see :mod:`audio_restorer.stages.base`); the
   cancel token is checked and progress reported between blocks.
4. The output is written to a temporary file, hashed, its sidecar report written, and only
   then both are renamed into place. A cancel, an error or a full disk removes the temporaries.

Memory is a few blocks per stage plus each stage's context, independent of the file's length.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audio_restorer import __version__
from audio_restorer.analysis.measure import Measurer
from audio_restorer.audio.ffmpeg import DecodeCache
from audio_restorer.audio.io import (
    AudioReader,
    AudioWriter,
    check_output_path,
    check_writable,
    output_format,
)
from audio_restorer.audio.resample import Resampler
from audio_restorer.errors import AudioRestorerError, OutputError, ParameterError, StageError
from audio_restorer.pipeline import provenance
from audio_restorer.pipeline.cancel import CancelToken
from audio_restorer.pipeline.chain import Chain
from audio_restorer.separation.export import StemFiles
from audio_restorer.stages.base import Stage, Stream, concat, empty, in_pieces
from audio_restorer.util import sha256_file

Progress = Callable[[float, str], None]
DEVICES = ("auto", "cpu", "cuda")
DITHER_SEED = 0x5EED


@dataclass
class RestoreOptions:
    """How to write the result (the chain says what to do to the audio)."""

    fmt: str | None = None  # wav | flac | mp3; None: from the output's extension
    bit_depth: str | None = None  # 16 | 24 | 32f; None: 24-bit PCM
    rate: int | None = None  # output sample rate; None keeps the input's
    device: str = "auto"
    block_frames: int = 1 << 16
    dither: bool = True
    report: bool = True  # write <output>.restoration.json
    report_path: Path | None = None
    removed: str | None = None  # write what this stage removed (its input − output) instead
    preset: str | None = None  # recorded in the report


@dataclass
class RestoreResult:
    input: Path
    output: Path
    report_path: Path | None
    frames_in: int
    frames_out: int
    rate: int
    channels: int
    timings: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: what each analysing stage decided (``{"stage": name, ...}``, see ``Stage.findings``)
    findings: list[dict[str, Any]] = field(default_factory=list)


def _findings(stage: Stage, analysis: Any) -> dict[str, Any]:
    """``Stage.findings`` with the stage's name first (a stage that says nothing: name only)."""
    return {"stage": stage.name, **stage.findings(analysis)}


def resolve_device(device: str, stages: list[Stage]) -> str:
    """``auto`` picks CUDA when a torch stage is in the chain and a GPU is present."""
    if device not in DEVICES:
        raise ParameterError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    needs_torch = any(s.uses_torch for s in stages)
    if device == "cpu" or (device == "auto" and not needs_torch):
        return "cpu"
    try:
        import torch

        available = bool(torch.cuda.is_available())
    except ImportError:
        available = False
    if device == "cuda" and not available:
        raise ParameterError("device 'cuda' was requested but no CUDA GPU is available")
    return "cuda" if available else "cpu"


class _Timer:
    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self.io = 0.0
        self.measure = 0.0

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - start

    @contextlib.contextmanager
    def io_time(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.io += time.perf_counter() - start


class _Meter:
    """Measurements for the report (skipped when no report is written), timed separately."""

    def __init__(self, rate: int, channels: int, enabled: bool, timer: _Timer) -> None:
        self.meter = Measurer(rate, channels) if enabled else None
        self.timer = timer

    def update(self, block: np.ndarray) -> None:
        if self.meter is not None:
            start = time.perf_counter()
            self.meter.update(block)
            self.timer.measure += time.perf_counter() - start

    def result(self) -> dict[str, Any]:
        return self.meter.result().to_dict() if self.meter is not None else {}


class _Difference:
    """Wrap a stage's stream so it yields input − output ("what the stage removed")."""

    def __init__(self, stream: Stream, channels: int) -> None:
        self.stream = stream
        self.pending = empty(channels)

    def push(self, block: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, block], axis=1)
        return self._diff(self.stream.push(block))

    def finish(self) -> np.ndarray:
        return self._diff(self.stream.finish())

    def _diff(self, out: np.ndarray) -> np.ndarray:
        n = out.shape[1]
        removed = self.pending[:, :n] - out
        self.pending = self.pending[:, n:]
        return removed


class _Segment:
    """Consecutive stages run as one stream; ``stages[0]`` may carry an analysis result."""

    def __init__(
        self,
        stages: list[Stage],
        rate: int,
        channels: int,
        analysis: Any,
        timer: _Timer,
        removed: str | None,
        stem_sink: Callable[[Stage, int, int], Any] | None = None,
    ) -> None:
        self.items: list[tuple[str, Any]] = []
        for i, stage in enumerate(stages):
            try:
                stream: Any = stage.open(rate, channels, analysis if i == 0 else None)
            except AudioRestorerError:
                raise
            except Exception as exc:
                raise StageError(f"stage {stage.name} could not start: {exc}") from exc
            if stage.takes_stem_chains and stem_sink is not None:
                sink = stem_sink(stage, rate, channels)
                if sink is not None:
                    stream.stem_sink = sink
            if stage.name == removed:
                stream = _Difference(stream, channels)
            self.items.append((stage.name, stream))
            channels = stage.output_channels(channels)
        self.channels = channels
        self.timer = timer

    def push(self, block: np.ndarray) -> np.ndarray:
        for name, stream in self.items:
            with self.timer.stage(name), _stage_errors(name):
                block = in_pieces(stream.push, block)
            _check_finite(name, block)
        return block

    def finish(self) -> np.ndarray:
        """Flush every stream in order: what one releases still runs through the next."""
        block = empty(self.channels) if not self.items else None
        for name, stream in self.items:
            with self.timer.stage(name), _stage_errors(name):
                parts = (
                    [in_pieces(stream.push, block)] if block is not None and block.shape[1] else []
                )
                parts.append(stream.finish())
            block = concat(parts, parts[-1].shape[0])
            _check_finite(name, block)
        assert block is not None
        return block


def _check_output(path: Path, sources: list[Path]) -> None:
    """:func:`check_output_path`, with the system's own refusals (a name too long for the file
    system, a folder we may not look into) as a clear error."""
    try:
        check_output_path(path, sources)
    except OSError as exc:
        raise OutputError(path, f"unusable output path ({exc.strerror or exc})") from None


def _check_finite(name: str, block: np.ndarray) -> None:
    """A stage's output must be finite (NaN would become noise or silence in a PCM file)."""
    if block.size and not np.isfinite(block).all():
        peak = float(np.max(np.abs(block[np.isfinite(block)]), initial=0.0))
        raise StageError(
            f"stage {name} produced NaN or infinite samples (finite peak {peak:.3g}); "
            "is the input's level sane? Samples far beyond full scale overflow the arithmetic"
        )


@contextlib.contextmanager
def _stage_errors(name: str) -> Iterator[None]:
    try:
        yield
    except AudioRestorerError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise StageError(f"stage {name} failed: {type(exc).__name__}: {exc}") from exc


class _Spill:
    """A hidden raw float32 file holding an intermediate signal between passes."""

    def __init__(self, folder: Path, stem: str, channels: int) -> None:
        fd, name = tempfile.mkstemp(prefix=f".{stem[:40]}.", suffix=".spill", dir=folder)
        self.path = Path(name)
        self.fh = os.fdopen(fd, "wb")
        self.channels = channels
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        try:
            self.fh.write(np.ascontiguousarray(block.T, dtype=np.float32).tobytes())
        except OSError as exc:
            raise OutputError(
                self.path, f"cannot write intermediate data ({exc.strerror})"
            ) from None
        self.frames += block.shape[1]

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        self.fh.close()
        with open(self.path, "rb") as fh:
            while data := fh.read(block_frames * self.channels * 4):
                yield np.frombuffer(data, dtype=np.float32).reshape(-1, self.channels).T.copy()

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.fh.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _segments(stages: list[Stage], rate: int) -> list[list[Stage]]:
    """Cut the chain before every stage (after the first) that needs an analysis pass."""
    segments: list[list[Stage]] = [[]]
    channels = 1  # analyzer presence does not depend on the channel count
    for stage in stages:
        if segments[-1] and stage.analyzer(rate, channels) is not None:
            segments.append([])
        segments[-1].append(stage)
    return segments


def restore_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    chain: Chain | list[Stage],
    options: RestoreOptions | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    decode_cache: DecodeCache | None = None,
) -> RestoreResult:
    """Restore ``input_path`` into ``output_path`` through ``chain``.

    ``decode_cache`` shares the decode of a file read through ffmpeg with the session's other
    readers (the desktop app's overview and previews), instead of decoding it again.

    Raises :class:`~audio_restorer.errors.AudioRestorerError` subclasses for bad input, bad
    output paths and stage failures, and :class:`~audio_restorer.errors.Cancelled` when
    ``cancel`` fires; in every such case no output (and no temporary file) is left behind.
    """
    options = options or RestoreOptions()
    cancel = cancel or CancelToken()
    report: Progress = progress or (lambda fraction, message: None)
    src, dst = Path(input_path), Path(output_path)
    started = time.perf_counter()
    timer = _Timer()

    def decoding(fraction: float) -> None:
        # formats read through ffmpeg are decoded to a temporary file first (long files: a
        # while); the cancel button stops that too
        cancel.raise_if_cancelled()
        report(0.0, f"{src.name}: decoding {fraction:.0%}")

    reader = AudioReader(src, decode_progress=decoding, decode_cache=decode_cache)
    info = reader.info
    try:
        fmt = output_format(dst, options.fmt)
        _check_output(dst, [src])
        if options.report:
            planned = options.report_path or provenance.sidecar_path(dst)
            _check_output(planned, [src])
            if planned.resolve() == dst.resolve():
                raise OutputError(planned, "the report path is the output file's path")
        if options.rate is not None and not 8000 <= options.rate <= 384000:
            raise ParameterError(f"output rate must be in 8000..384000 Hz, got {options.rate}")
        stages = chain.build() if isinstance(chain, Chain) else list(chain)
        device = resolve_device(options.device, stages)
        for stage in stages:
            stage.device = device
        if options.removed is not None:
            names = [s.name for s in stages]
            if options.removed not in names:
                raise ParameterError(f"--removed names stage '{options.removed}', not in the chain")
            stage = stages[names.index(options.removed)]
            if not stage.offers_removed:
                raise ParameterError(f"stage '{stage.name}' does not offer a 'removed' signal")
            stages = stages[: names.index(options.removed) + 1]

        report(0.0, f"{src.name}: hashing input")
        hash_start = time.perf_counter()
        input_sha = sha256_file(src)
        hash_s = time.perf_counter() - hash_start
        cancel.raise_if_cancelled()

        rate = info.rate
        channel_trace = []
        channels = info.channels
        for stage in stages:
            channels = stage.output_channels(channels)
            channel_trace.append(channels)
        out_rate = options.rate or rate
        check_writable(fmt, out_rate, channels)
        history = provenance.coding_history(info, stages, rate, channel_trace)
        bext = provenance.build_bext(info, input_sha, src.stat().st_mtime, history)
        segments = _segments(stages, rate) if stages else [[]]
        first_analysis = bool(stages) and stages[0].analyzer(rate, info.channels) is not None
        passes = len(segments) + (1 if first_analysis else 0)
        measure_in = _Meter(rate, info.channels, options.report, timer)
        state = _RunState(report, cancel, passes, src.name, options.block_frames)

        analysis: Any = None
        findings: list[dict[str, Any]] = []
        if first_analysis:
            analyzer = stages[0].analyzer(rate, info.channels)
            assert analyzer is not None
            for block in state.blocks(
                reader.blocks(options.block_frames),
                info.frames,
                f"analysing for {stages[0].name}",
                timer,
            ):
                measure_in.update(block)
                with timer.stage(stages[0].name):
                    analyzer.update(block)
            with timer.stage(stages[0].name):
                analysis = analyzer.result()
            findings.append(_findings(stages[0], analysis))
            reader.seek(0)
            measured_input = True
        else:
            measured_input = False

        source: Iterator[np.ndarray] = reader.blocks(options.block_frames)
        source_frames, source_channels = info.frames, info.channels
        spills: list[_Spill] = []
        stem_files: list[StemFiles] = []

        def stem_sink(stage: Stage, rate: int, channels: int) -> StemFiles | None:
            """Files for the stems a separation stage is asked to export (at its input rate)."""
            if not getattr(stage, "export_targets", None) or not stage.export_targets(channels):
                return None
            files = StemFiles(
                stage,
                dst,
                rate,
                channels,
                inputs=(src,),
                fmt=fmt,
                bit_depth=options.bit_depth,
                dither=options.dither,
                seed=DITHER_SEED,
            )
            stem_files.append(files)
            return files

        writer: AudioWriter | None = None
        measure_out: _Meter | None = None
        frames_out = 0
        try:
            for k, seg_stages in enumerate(segments):
                last = k == len(segments) - 1
                segment = _Segment(
                    seg_stages,
                    rate,
                    source_channels,
                    analysis,
                    timer,
                    options.removed,
                    stem_sink,
                )
                label = ", ".join(s.name for s in seg_stages) or "copy"
                if last:
                    resampler = (
                        Resampler(rate, out_rate, segment.channels) if out_rate != rate else None
                    )
                    writer = AudioWriter(
                        dst,
                        out_rate,
                        segment.channels,
                        fmt=fmt,
                        bit_depth=options.bit_depth,
                        dither=options.dither,
                        seed=DITHER_SEED,
                        bext=bext if fmt == "wav" else None,
                        tags={
                            "software": f"Audio Restorer {__version__}",
                            "comment": "; ".join(s.describe() for s in stages)[:1000],
                        },
                    )
                    measure_out = _Meter(out_rate, segment.channels, options.report, timer)
                    sink = _FinalSink(writer, measure_out, resampler, timer)
                else:
                    spill = _Spill(dst.parent, dst.stem, segment.channels)
                    spills.append(spill)
                    next_stage = segments[k + 1][0]
                    next_analyzer = next_stage.analyzer(rate, segment.channels)
                    assert next_analyzer is not None
                    sink = _SpillSink(spill, next_analyzer, next_stage.name, timer)
                for block in state.blocks(source, source_frames, label, timer):
                    if not measured_input:
                        measure_in.update(block)
                    sink.write(segment.push(block))
                sink.write(segment.finish())
                measured_input = True
                frames_out = sink.close()
                if not frames_out:
                    raise StageError(
                        f"{src.name}: the chain left no audio ({info.frames} input frames; "
                        "too short for the resampling or speed change asked for)"
                    )
                if not last:
                    analysis = sink.analysis
                    findings.append(_findings(segments[k + 1][0], analysis))
                    source = spills[-1].blocks(options.block_frames)
                    source_frames, source_channels = spills[-1].frames, segment.channels
                    if len(spills) > 1:
                        spills.pop(0).remove()
            assert writer is not None and measure_out is not None
            cancel.raise_if_cancelled()
            report(0.99, f"{src.name}: finishing")
            tmp = writer.close_temp()
            hash_start = time.perf_counter()
            output_sha = sha256_file(tmp)
            stems_report = []
            for files in stem_files:
                for (stem, restored), stem_writer in files.writers.items():
                    stem_tmp = stem_writer.close_temp()
                    stems_report.append(
                        {
                            "stem": stem,
                            "restored": restored,
                            "path": str(stem_writer.path.resolve()),
                            "sha256": sha256_file(stem_tmp),
                            "frames": stem_writer.frames,
                        }
                    )
            hash_s += time.perf_counter() - hash_start
            before = measure_in.result()
            after = measure_out.result()
            warnings = list(reader.warnings)
            said = [f for f in findings if len(f) > 1]  # stages that decided something
            if writer.clipped:
                warnings.append(
                    f"{writer.clipped} samples exceeded full scale and were clipped in the output"
                    " (add the limiter stage or lower the gain)"
                )
            total_s = time.perf_counter() - started
            stage_s = sum(timer.stages.values())
            timings = {
                "total_s": round(total_s, 4),
                "stages_s": {k: round(v, 4) for k, v in timer.stages.items()},
                "io_s": round(timer.io, 4),
                "hash_s": round(hash_s, 4),
                "measure_s": round(timer.measure, 4),
                "runner_overhead_s": round(
                    max(0.0, total_s - stage_s - timer.io - hash_s - timer.measure), 4
                ),
                "passes": passes,
            }
            report_path = None
            if options.report:
                report_path = options.report_path or provenance.sidecar_path(dst)  # checked above
                doc = {
                    "format": provenance.FORMAT,
                    "version": provenance.VERSION,
                    "created": provenance.now_iso(),
                    "software": provenance.software_versions(),
                    "input": {
                        **info.to_dict(),
                        "path": str(src.resolve()),
                        "size_bytes": src.stat().st_size,
                        "sha256": input_sha,
                    },
                    "output": {
                        "path": str(dst.resolve()),
                        "format": fmt,
                        "bit_depth": writer.bit_depth,
                        "dither": "tpdf" if options.dither and writer.quantizer else None,
                        "sample_rate": out_rate,
                        "channels": writer.channels,
                        "frames": writer.frames,
                        "size_bytes": tmp.stat().st_size,
                        "sha256": output_sha,
                        "bext_coding_history": history if fmt == "wav" else None,
                    },
                    "preset": options.preset,
                    "chain": provenance.chain_report(stages),
                    "listen": f"removed by {options.removed}" if options.removed else "result",
                    "stems": stems_report,
                    "models": [m for s in stages for m in s.model_info()],
                    "device": device,
                    "timings": timings,
                    "measurements": {"before": before, "after": after},
                    "findings": said,
                    "warnings": warnings,
                }
                try:
                    provenance.write_report(_hidden(report_path), doc)
                except OSError as exc:
                    raise OutputError(
                        report_path, f"cannot write the report ({exc.strerror or exc})"
                    ) from None
            for files in stem_files:
                files.commit()
            writer.commit()
            if report_path is not None:
                os.replace(_hidden(report_path), report_path)
            report(1.0, f"{src.name}: done")
            return RestoreResult(
                input=src,
                output=dst,
                report_path=report_path,
                frames_in=info.frames,
                frames_out=frames_out,
                rate=out_rate,
                channels=writer.channels,
                timings=timings,
                before=before,
                after=after,
                warnings=warnings,
                findings=said,
            )
        except BaseException:
            for files in stem_files:
                files.abort()
            if writer is not None:
                writer.abort()
            if options.report:
                with contextlib.suppress(FileNotFoundError, OSError):
                    _hidden(options.report_path or provenance.sidecar_path(dst)).unlink()
            raise
        finally:
            for spill in spills:
                spill.remove()
    finally:
        reader.close()


def _hidden(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


class _RunState:
    """Progress over all passes, and cancellation, between blocks."""

    def __init__(
        self, report: Progress, cancel: CancelToken, passes: int, name: str, block_frames: int
    ) -> None:
        self.report = report
        self.cancel = cancel
        self.passes = passes
        self.done_passes = 0
        self.name = name
        self.block_frames = block_frames

    def blocks(
        self, source: Iterator[np.ndarray], frames: int, label: str, timer: _Timer
    ) -> Iterator[np.ndarray]:
        done = 0
        total = max(frames, 1)
        index = self.done_passes + 1
        message = f"{self.name}: {label} (pass {index}/{self.passes})"
        self.report(self.done_passes / self.passes * 0.99, message)
        while True:
            self.cancel.raise_if_cancelled()
            with timer.io_time():
                block = next(source, None)
            if block is None:
                break
            yield block
            done += block.shape[1]
            fraction = (self.done_passes + min(done / total, 1.0)) / self.passes
            self.report(fraction * 0.99, message)
        self.cancel.raise_if_cancelled()
        self.done_passes += 1


class _FinalSink:
    def __init__(
        self, writer: AudioWriter, meter: _Meter, resampler: Resampler | None, timer: _Timer
    ) -> None:
        self.writer, self.meter, self.resampler, self.timer = writer, meter, resampler, timer

    def write(self, block: np.ndarray) -> None:
        if self.resampler is not None:
            block = self.resampler.push(block)
        self._out(block)

    def _out(self, block: np.ndarray) -> None:
        if block.shape[1]:
            self.meter.update(block)
            with self.timer.io_time():
                self.writer.write(block)

    def close(self) -> int:
        if self.resampler is not None:
            self._out(self.resampler.finish())
        return self.writer.frames


class _SpillSink:
    def __init__(self, spill: _Spill, analyzer: Any, stage_name: str, timer: _Timer) -> None:
        self.spill, self.analyzer, self.stage_name, self.timer = spill, analyzer, stage_name, timer
        self.analysis: Any = None

    def write(self, block: np.ndarray) -> None:
        if block.shape[1]:
            with self.timer.stage(self.stage_name):
                in_pieces(self.analyzer.update, block)
            with self.timer.io_time():
                self.spill.write(block)

    def close(self) -> int:
        with self.timer.stage(self.stage_name):
            self.analysis = self.analyzer.result()
        return self.spill.frames
