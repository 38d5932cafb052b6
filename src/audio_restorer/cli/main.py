"""Entry point of the ``audio-restorer`` command.

Exit codes: 0 success, 1 when any file failed (the others are still processed), 2 on bad
usage (unknown options, stages, presets or parameter values), 130 when interrupted (Ctrl-C),
128 + the signal's number when terminated (SIGTERM, SIGHUP): both stop the work and remove
partial outputs and temporary files, as a cancel does.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from audio_restorer import __version__
from audio_restorer.cli import gui, inspect, models, restore, simulate
from audio_restorer.errors import AudioRestorerError, ParameterError, PresetError

SUBCOMMANDS = (restore, inspect, models, gui)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audio-restorer",
        description="Restore historical and degraded recordings (78s, cylinders, tape, vinyl, "
        "MP3). Sources are never modified; every output gets a provenance report.",
    )
    parser.add_argument("--version", action="version", version=f"audio-restorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parsers(sub)
    simulate.add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so partial files are removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _termination_unwinds() -> Iterator[None]:
    """While the command runs, SIGTERM and SIGHUP raise :class:`Terminated` (a kill with no
    chance to clean up would leave hidden temporary files beside the outputs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    wanted = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        if argv is None and gui.gui_available():
            return gui.run(args)
        parser.print_help()
        if argv is None:
            print(
                "\n(no display found: the desktop application needs one; use the commands above)",
                file=sys.stderr,
            )
        return 0
    try:
        if args.func is gui.run:  # Qt's event loop has its own shutdown
            return int(args.func(args))
        with _termination_unwinds():
            return int(args.func(args))
    except (ParameterError, PresetError) as exc:
        print(f"audio-restorer: error: {exc}", file=sys.stderr)
        return 2
    except AudioRestorerError as exc:
        print(f"audio-restorer: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the system refused a path (a name too long, no permission)
        print(f"audio-restorer: error: {restore.describe(exc)}", file=sys.stderr)
        return 1
    except Terminated as exc:
        print("audio-restorer: terminated; no partial output was kept", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("audio-restorer: interrupted; no partial output was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
