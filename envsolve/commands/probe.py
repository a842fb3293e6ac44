"""`envsolve probe`: what this host has, as a readable report or as a host snapshot (--json)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from envsolve.errors import EnvsolveError

__all__ = ["add_arguments", "run", "write_atomic"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="write the host snapshot JSON (docs/host-snapshot.md)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write to FILE (atomically) instead of standard output")


def run(args: argparse.Namespace) -> int:
    from envsolve.report import render_probe
    from envsolve.resolver.host import host_to_json
    from envsolve.resolver.probe import probe

    result = probe()
    text = json.dumps(host_to_json(result.host), indent=2) + "\n" if args.json else render_probe(result) + "\n"
    if args.output:
        write_atomic(Path(args.output), text)
    else:
        print(text, end="")
    return 0


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see half a file."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise EnvsolveError("output-unwritable", f"Cannot write into {directory}: {e.strerror or e}.",
                            hint="Choose a writable --output location.") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise EnvsolveError("output-unwritable", f"Cannot write {path}: {e.strerror or e}.",
                            hint="Choose a writable --output location.") from None
