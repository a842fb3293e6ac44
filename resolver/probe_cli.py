"""`envsolve probe`: what this host has, as a readable report or as a host snapshot (--json)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from envsolve.errors import EnvsolveError

__all__ = ["add_parser", "cmd_probe", "render_probe", "write_atomic"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `envsolve probe` on the CLI's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "probe", help="show what this host has (GPU, driver, CUDA/cuDNN libraries, packages, loader)",
        description="Probe this machine: NVIDIA driver and the CUDA it allows, GPUs and compute capability, "
        "CUDA/cuDNN/FFmpeg libraries and where they live, what each native consumer's loader picks, "
        "installed packages, platform and FFmpeg. --json writes the host snapshot for `plan --host`.")
    parser.add_argument("--json", action="store_true", help="write the host snapshot JSON (docs/host-snapshot.md)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write to FILE (atomically) instead of standard output")
    parser.set_defaults(func=cmd_probe)
    return parser


def cmd_probe(args: argparse.Namespace) -> int:
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


def _table(rows: Iterable[Iterable[str]]) -> list[str]:
    from envsolve.resolver.report import table

    return table([list(r) for r in rows])


def render_probe(result: Any) -> str:
    """The readable report of a Probe."""
    from envsolve.resolver.probe.installed import watched
    from envsolve.resolver.report import describe_host, driver_text

    host = result.host
    lines = [f"envsolve probe: {describe_host(host)}", ""]
    lines.append("GPU and driver:")
    lines.append(f"  {driver_text(host)}")
    for gpu in host.gpus or ():
        memory = f", {gpu.memory_mib} MiB" if gpu.memory_mib is not None else ""
        lines.append(f"  {gpu.name}: compute capability {gpu.compute_capability or '?'}{memory}")
    if host.cuda_toolkits:
        lines += ["", "CUDA toolkits:"] + [f"  {t.version} at {t.path}" for t in host.cuda_toolkits]
    lines += ["", "Libraries (where they live):"]
    if host.libraries:
        lines += _table((lib.soname or lib.name, lib.version or "?", lib.origin, lib.path or "?")
                        for lib in host.libraries)
    else:
        lines.append("  none of cuDNN, cuBLAS, cudart, NCCL or FFmpeg found" if host.libraries is not None
                     else "  not scanned")
    lines += ["", "What each consumer's loader picks:"]
    if host.loader:
        lines += _table((x.consumer, x.needs, x.how, x.resolved or "NOT FOUND", x.via or "")
                        for x in host.loader)
    else:
        lines.append("  no native consumers (ctranslate2, torch, torchcodec) installed")
    if host.packages is not None:
        shown = watched(host.packages)
        lines += ["", f"Packages ({len(host.packages)} installed; the ones the rulebook checks):"]
        lines += _table((name, version) for name, version in shown.items()) or ["  none of them"]
    lines += ["", f"Platform: {host.platform or '?'}; Python {host.python or '?'}; glibc {host.os.glibc or '?'}; "
              f"{host.os.arch or '?'}; {host.os.distro or '?'}"]
    avutil = next((lib for lib in host.libraries or () if lib.name == "avutil"), None)
    lines.append(f"FFmpeg: {host.ffmpeg or 'no ffmpeg executable'}"
                 + (f"; {avutil.soname} at {avutil.path}" if avutil else "; no libavutil found"))
    if host.env:
        lines += ["", "Environment (kept variables only):"] + [f"  {k}={_short(v)}" for k, v in host.env.items()]
    if host.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in host.notes]
    lines += ["", "Snapshot: envsolve probe --json -o host.json; then envsolve plan --host host.json anywhere."]
    return "\n".join(lines)


def _short(value: str, limit: int = 300) -> str:
    return value if len(value) <= limit else value[:limit] + f"... ({len(value)} characters)"
