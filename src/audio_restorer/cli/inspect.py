"""``presets``, ``stages`` and ``analyze``: look at what is available and at files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from audio_restorer.analysis.measure import measure_file
from audio_restorer.audio.bwf import read_bext
from audio_restorer.audio.io import probe
from audio_restorer.errors import AudioRestorerError
from audio_restorer.pipeline.presets import list_presets, load_preset
from audio_restorer.stages.registry import get_stage_class, stage_names


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list presets, or show one as JSON")
    p.add_argument("name", nargs="?", help="preset to show")
    p.set_defaults(func=run_presets)

    s = sub.add_parser("stages", help="list every stage with its parameters")
    s.add_argument("name", nargs="?", help="only this stage")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=run_stages)

    a = sub.add_parser(
        "analyze",
        help="measure files and print JSON",
        description="Print measurements of each file as JSON.",
    )
    a.add_argument("files", nargs="+", type=Path, metavar="FILE")
    a.set_defaults(func=run_analyze)


def run_presets(args: argparse.Namespace) -> int:
    if args.name:
        print(json.dumps(load_preset(args.name).to_dict(), indent=2))
        return 0
    for preset in list_presets():
        origin = "built-in" if preset.builtin else "user"
        stages = (
            ", ".join(c.stage if c.enabled else f"({c.stage})" for c in preset.chain.stages)
            or "no stages"
        )
        print(f"{preset.name:16} {preset.title} [{origin}]\n{'':16} {stages}")
    return 0


def stage_description(name: str) -> dict[str, Any]:
    cls = get_stage_class(name)
    default = cls()
    return {
        "name": cls.name,
        "title": cls.title,
        "summary": cls.summary,
        "changes_length": cls.changes_length,
        "offers_removed": cls.offers_removed,
        "uses_torch": bool(default.uses_torch),  # with default settings
        "params": [info.to_dict() for info in cls.Params.infos()],
    }


def run_stages(args: argparse.Namespace) -> int:
    names = [args.name] if args.name else stage_names()
    docs = [stage_description(n) for n in names]
    if args.json:
        print(json.dumps(docs, indent=2))
        return 0
    for doc in docs:
        flags = []
        if doc["changes_length"]:
            flags.append("changes length")
        if doc["offers_removed"]:
            flags.append("--removed")
        if doc["uses_torch"]:
            flags.append("torch")
        extra = f" [{', '.join(flags)}]" if flags else ""
        print(f"{doc['name']} — {doc['title']}: {doc['summary']}{extra}")
        for prm in doc["params"]:
            rng = ""
            if "choices" in prm:
                rng = "{" + ", ".join(prm["choices"]) + "}"
            elif "min" in prm or "max" in prm:
                rng = f"{prm.get('min', '')}..{prm.get('max', '')}"
                if "step" in prm:
                    rng += f" step {prm['step']}"
            unit = f" {prm['unit']}" if "unit" in prm else ""
            default = "none" if prm["default"] is None else prm["default"]
            print(f"    {prm['name']:<18} {prm['type']:<5} default {default}{unit}  {rng}")
            print(f"    {'':<18} {prm['help']}")
        print()
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    failures = 0
    for path in args.files:
        try:
            info = probe(path)
            doc: dict[str, Any] = {
                "file": str(path),
                "format": info.format,
                "subtype": info.subtype,
            }
            doc.update(measure_file(path).to_dict())
            bext = read_bext(path)
            if bext is not None:
                doc["bext"] = bext
            results.append(doc)
        except AudioRestorerError as exc:
            failures += 1
            print(f"audio-restorer: error: {exc}", file=sys.stderr)
    if results:
        print(json.dumps(results[0] if len(args.files) == 1 else results, indent=2))
    return 1 if failures else 0
