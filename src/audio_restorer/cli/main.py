"""Entry point of the ``audio-restorer`` command.

Exit codes: 0 success, 1 when any file failed (the others are still processed), 2 on bad
usage (unknown options, stages, presets or parameter values), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
        return int(args.func(args))
    except (ParameterError, PresetError) as exc:
        print(f"audio-restorer: error: {exc}", file=sys.stderr)
        return 2
    except AudioRestorerError as exc:
        print(f"audio-restorer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("audio-restorer: interrupted; no partial output was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
