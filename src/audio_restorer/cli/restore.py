"""``restore`` and ``batch``: run a chain over files and write restored copies."""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio_restorer.audio.io import BIT_DEPTHS, READ_EXTENSIONS, WRITE_FORMATS
from audio_restorer.errors import AudioRestorerError, Cancelled, OutputError, ParameterError
from audio_restorer.pipeline.chain import Chain
from audio_restorer.pipeline.presets import load_preset
from audio_restorer.pipeline.runner import DEVICES, RestoreOptions, RestoreResult, restore_file
from audio_restorer.stages.registry import get_stage_class

DEFAULT_PATTERN = "{stem}.restored.{ext}"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "restore",
        help="restore one or more files",
        description="Restore files through a preset and/or a list of stages.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", type=Path, help="input audio files")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="output file (one input; format from its extension) or folder",
    )
    out.add_argument("--out-dir", type=Path, metavar="DIR", help="output folder")
    _add_common(p)
    p.set_defaults(func=run_restore)

    b = sub.add_parser(
        "batch",
        help="restore every audio file in a folder",
        description="Restore every audio file in a folder into another folder.",
    )
    b.add_argument("folder", type=Path, metavar="DIR", help="folder with audio files")
    b.add_argument("--out-dir", type=Path, metavar="DIR", required=True, help="output folder")
    b.add_argument("--recursive", action="store_true", help="include sub-folders (mirrored)")
    b.add_argument("--jobs", type=int, default=1, metavar="N", help="files processed in parallel")
    b.add_argument("--skip-existing", action="store_true", help="skip files whose output exists")
    _add_common(b)
    b.set_defaults(func=run_batch)


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("chain")
    g.add_argument("--preset", metavar="NAME", help="preset name or JSON file (default: none)")
    g.add_argument(
        "--stages",
        metavar="a,b,c",
        help="run just these stages, in this order (parameters from the preset where "
        "it has them, else defaults)",
    )
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STAGE.PARAM=VALUE",
        help="set a parameter; STAGE.enabled=false switches a stage off (repeatable)",
    )
    g.add_argument(
        "--removed",
        metavar="STAGE",
        help="write what STAGE removed (e.g. clicks or noise only) instead of the result",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--format",
        choices=sorted(WRITE_FORMATS),
        help="output format (default: from -o's extension, else wav)",
    )
    o.add_argument("--bit-depth", choices=BIT_DEPTHS, help="PCM word length (default 24)")
    o.add_argument("--rate", type=int, metavar="HZ", help="output sample rate (default: input's)")
    o.add_argument("--no-dither", action="store_true", help="round without TPDF dither")
    o.add_argument(
        "--name-pattern",
        default=DEFAULT_PATTERN,
        metavar="PATTERN",
        help="output file name in a folder: {stem}, {ext}, {preset} "
        f"(default {DEFAULT_PATTERN!r})",
    )
    o.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="provenance report path (one input; default <output>.restoration.json)",
    )
    o.add_argument("--no-report", action="store_true", help="do not write the provenance report")
    p.add_argument("--device", choices=DEVICES, default="auto", help="where ML stages run")
    p.add_argument("--block-frames", type=int, default=1 << 16, help=argparse.SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def chain_from_args(args: argparse.Namespace) -> tuple[Chain, str | None]:
    """The chain the options describe: preset, then --stages, then --set."""
    preset_name = args.preset
    chain = load_preset(preset_name).chain.copy() if preset_name else Chain()
    if args.stages:
        names = [n.strip() for n in args.stages.split(",") if n.strip()]
        if not names:
            raise ParameterError("--stages needs at least one stage name")
        chain = chain.select(names)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"--set expects STAGE.PARAM=VALUE, got {item!r}")
        chain.set_value(key.strip(), value.strip())
    chain.validate()
    if getattr(args, "removed", None):
        _check_removed(chain, args.removed)
    return chain, preset_name


def _check_removed(chain: Chain, name: str) -> None:
    """``--removed STAGE`` names an enabled stage of the chain that offers a removed signal
    (a usage error, said once, instead of a failure for every file)."""
    config = chain.find(name)
    if config is None or not config.enabled:
        present = ", ".join(c.stage for c in chain.stages if c.enabled) or "none"
        raise ParameterError(f"--removed {name}: not an enabled stage of the chain ({present})")
    if not getattr(get_stage_class(name), "offers_removed", False):
        raise ParameterError(f"--removed {name}: that stage does not offer a 'removed' signal")


def options_from_args(args: argparse.Namespace, preset: str | None) -> RestoreOptions:
    if args.rate is not None and not 8000 <= args.rate <= 384000:
        raise ParameterError(f"--rate must be in 8000..384000 Hz, got {args.rate}")
    if args.block_frames < 256:
        raise ParameterError(f"--block-frames must be at least 256, got {args.block_frames}")
    return RestoreOptions(
        fmt=args.format,
        bit_depth=args.bit_depth,
        rate=args.rate,
        device=args.device,
        block_frames=args.block_frames,
        dither=not args.no_dither,
        report=not args.no_report,
        report_path=getattr(args, "report", None),
        removed=args.removed,
        preset=preset,
    )


def output_name(src: Path, pattern: str, fmt: str, preset: str | None) -> str:
    try:
        name = pattern.format(stem=src.stem, ext=fmt, preset=preset or "none")
    except (KeyError, IndexError, ValueError) as exc:
        raise ParameterError(f"bad --name-pattern {pattern!r} ({exc})") from None
    if not name.lower().endswith(f".{fmt}"):
        name = f"{name}.{fmt}"
    if "/" in name or name.startswith("."):
        raise ParameterError(f"--name-pattern must give a plain file name, got {name!r}")
    return name


def _expand_inputs(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if _is_audio(p))
        else:
            files.append(path)
    return files


def _is_audio(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in READ_EXTENSIONS and not path.name.startswith(".")
    )


def _default_format(src: Path, requested: str | None) -> str:
    return requested or "wav"


@dataclass
class Job:
    src: Path
    dst: Path


class Reporter:
    """Progress bar (rich) and one summary line per file, unless quiet."""

    def __init__(self, quiet: bool, total_files: int) -> None:
        self.quiet = quiet
        self.progress: Any = None
        self.task: Any = None
        if not quiet:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self.console = Console(stderr=True)
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.overall = self.progress.add_task("files", total=total_files)

    def file_callback(self, name: str) -> Any:
        if self.progress is None:
            return None
        task = self.progress.add_task(name[:50], total=1.0)

        def callback(fraction: float, message: str) -> None:
            self.progress.update(task, completed=fraction, description=message[:60])

        self._current = task
        return callback

    def done(
        self, job: Job, result: RestoreResult | None, error: str | None, seconds: float
    ) -> None:
        if self.progress is None:
            if error:
                print(f"audio-restorer: error: {error}", file=sys.stderr)
            return
        if getattr(self, "_current", None) is not None:
            self.progress.remove_task(self._current)
            self._current = None
        self.progress.advance(self.overall)
        if error:
            self.console.print(f"[red]failed[/red] {job.src}: {error}", highlight=False)
        else:
            assert result is not None
            speed = result.frames_in / result.rate / max(seconds, 1e-9) if result.rate else 0
            self.console.print(
                f"[green]ok[/green] {job.src} -> {job.dst} ({speed:.1f}x real time)",
                highlight=False,
            )
            for found in result.findings:
                if "summary" in found:
                    self.console.print(f"  {found['stage']}: {found['summary']}", highlight=False)
            for warning in result.warnings:
                self.console.print(f"  [yellow]warning[/yellow] {warning}", highlight=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _run_jobs(
    jobs: list[Job], chain: Chain, options: RestoreOptions, quiet: bool, workers: int = 1
) -> int:
    failures = 0
    reporter = Reporter(quiet, len(jobs))
    try:
        if workers <= 1:
            for job in jobs:
                start = time.perf_counter()
                try:
                    result = restore_file(
                        job.src,
                        job.dst,
                        chain,
                        options,
                        progress=reporter.file_callback(job.src.name),
                    )
                except Cancelled:
                    raise
                except Exception as exc:  # one file's failure never stops the batch
                    failures += 1
                    reporter.done(job, None, describe(exc), 0.0)
                    continue
                reporter.done(job, result, None, time.perf_counter() - start)
        else:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {
                    pool.submit(_worker, job.src, job.dst, chain.to_list(), options): job
                    for job in jobs
                }
                try:
                    for future in cf.as_completed(futures):
                        job = futures[future]
                        result, error, seconds = future.result()
                        failures += error is not None
                        reporter.done(job, result, error, seconds)
                except BaseException:
                    # interrupted or terminated: no new files, and the running ones stop and
                    # remove their partial outputs (a worker takes SIGTERM like Ctrl-C)
                    for future in futures:
                        future.cancel()
                    for process in list(getattr(pool, "_processes", {}).values()):
                        with contextlib.suppress(OSError):
                            process.terminate()
                    raise
    finally:
        reporter.close()
    return 1 if failures else 0


def describe(exc: BaseException) -> str:
    """One line for a failed file: our errors as they are, anything else (a bug, or the
    system refusing something we did not foresee) with its type, so it can be reported."""
    if isinstance(exc, AudioRestorerError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"internal error: {type(exc).__name__}: {exc}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _worker(
    src: Path, dst: Path, chain: list[dict[str, Any]], options: RestoreOptions
) -> tuple[RestoreResult | None, str | None, float]:
    start = time.perf_counter()
    if hasattr(signal, "SIGTERM"):  # the parent stops us with it: unwind, removing partial files
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = restore_file(src, dst, Chain.from_list(chain), options)
    except Exception as exc:
        return None, describe(exc), 0.0
    except KeyboardInterrupt:
        # stopped (Ctrl-C, or the parent's SIGTERM): the partial files are gone; end this
        # worker rather than let the pool hand it the next file
        os._exit(130)
    return result, None, time.perf_counter() - start


def run_restore(args: argparse.Namespace) -> int:
    chain, preset = chain_from_args(args)
    options = options_from_args(args, preset)
    inputs = _expand_inputs(args.inputs)
    if not inputs:
        raise ParameterError("no audio files found in the given inputs")
    target: Path = args.output if args.output is not None else args.out_dir
    as_file = (
        args.output is not None
        and not target.is_dir()
        and target.suffix.lower().lstrip(".") in WRITE_FORMATS
    )
    if args.output is not None and not as_file and target.suffix and not target.is_dir():
        raise ParameterError(
            f"-o {target}: unknown output extension '{target.suffix}' "
            f"(use .{', .'.join(WRITE_FORMATS)} or a folder)"
        )
    if as_file:
        if args.format is not None and target.suffix.lower().lstrip(".") != args.format:
            raise ParameterError(
                f"-o {target} has the extension '{target.suffix}' but --format asks for "
                f"{args.format}; make them agree"
            )
        if len(inputs) != 1:
            raise ParameterError("-o names one file but several inputs were given; use a folder")
        jobs = [Job(inputs[0], target)]
    else:
        if args.report is not None and len(inputs) != 1:
            raise ParameterError("--report takes one input; with several, each gets a sidecar")
        _make_folder(target)
        jobs = [
            Job(
                src,
                target
                / output_name(src, args.name_pattern, _default_format(src, args.format), preset),
            )
            for src in inputs
        ]
    _check_collisions(jobs)
    return _run_jobs(jobs, chain, options, args.quiet)


def run_batch(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {args.jobs}")
    folder: Path = args.folder
    if not folder.is_dir():
        raise ParameterError(f"{folder}: not a folder")
    if args.report is not None:
        raise ParameterError("--report takes one input; batch writes a report beside each output")
    chain, preset = chain_from_args(args)
    options = options_from_args(args, preset)
    options.report_path = None
    out_dir: Path = args.out_dir
    out_resolved = out_dir.resolve()
    if out_resolved == folder.resolve() or out_resolved in folder.resolve().parents:
        # the sources would lie inside the output tree, where files are taken for outputs
        raise ParameterError(
            f"--out-dir {out_dir} is the input folder or contains it; choose a separate "
            "folder (or one inside the input folder)"
        )
    _make_folder(out_dir)
    pattern = folder.rglob("*") if args.recursive else folder.iterdir()
    sources = sorted(p for p in pattern if _is_audio(p) and out_resolved not in p.resolve().parents)
    jobs = []
    skipped = 0
    for src in sources:
        rel = src.parent.relative_to(folder)
        dst = (
            out_dir
            / rel
            / output_name(src, args.name_pattern, _default_format(src, args.format), preset)
        )
        if args.skip_existing and dst.exists():
            skipped += 1
            continue
        _make_folder(dst.parent)
        jobs.append(Job(src, dst))
    if not args.quiet:
        print(f"{len(jobs)} file(s) to restore, {skipped} skipped", file=sys.stderr)
    if not jobs:
        return 0
    _check_collisions(jobs)
    return _run_jobs(jobs, chain, options, args.quiet, workers=args.jobs)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(folder, f"cannot create the output folder ({exc.strerror})") from None


def _check_collisions(jobs: list[Job]) -> None:
    seen: dict[Path, Path] = {}
    for job in jobs:
        key = job.dst.resolve()
        if key in seen:
            raise ParameterError(
                f"{seen[key]} and {job.src} would both be written to {job.dst}; "
                "use a --name-pattern with more detail"
            )
        seen[key] = job.src
