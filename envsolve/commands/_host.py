"""The `--host` option shared by the commands that plan or check: a snapshot file, a built-in example, or
this machine."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envsolve.resolver.host import Host


def add_host_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", metavar="FILE", help="host snapshot JSON, or example:NAME for a built-in one "
                        "(example:colab-l4, example:aws-dlami-a10g, example:cuda13-l4, example:rtx5090); "
                        "default: this machine")


def load_host(path: str | None, loader: bool = True) -> Host:
    """The snapshot at `path`, or this machine probed (`loader`: with the loader simulation)."""
    from envsolve.resolver.host import read_host
    from envsolve.resolver.probe import probe_host

    if path is None:
        return probe_host(loader=loader)
    if not path.strip():  # `--host "$SNAPSHOT"` with the variable unset must not quietly describe this machine
        from envsolve.errors import EnvsolveError

        raise EnvsolveError("usage", "--host is empty.", hint="Give a snapshot file (envsolve probe --json > "
                            "host.json) or example:NAME, or leave --host out to use this machine.")
    return read_host(path)
