"""`envsolve probe`: what this host has, as a readable report or as a host snapshot (--json)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from envsolve.atomic import write_text

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="write the host snapshot JSON (docs/host-snapshot.md)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write to FILE (atomically) instead of standard output")


def run(args: argparse.Namespace) -> int:
    from envsolve.report import format_probe
    from envsolve.resolver.host import host_to_json
    from envsolve.resolver.probe import probe

    result = probe()
    text = json.dumps(host_to_json(result.host), indent=2) + "\n" if args.json else format_probe(result) + "\n"
    if args.output:
        write_text(Path(args.output), text, hint="Choose a writable --output location.")
    else:
        print(text, end="")
    return 0
