"""The `--host` option shared by the commands that plan or check: a snapshot file, a built-in example, or
this machine."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envsolve.resolver.host import Host


def add_host_argument(parser: argparse.ArgumentParser) -> None:
    from envsolve.resolver.host import EXAMPLE_PREFIX, examples

    parser.add_argument("--host", metavar="FILE", help="host snapshot JSON, or example:NAME for a built-in one "
                        f"({', '.join(EXAMPLE_PREFIX + name for name in examples())}); default: this machine")


def load_host(path: str | None, loader: bool = True) -> Host:
    """The snapshot at `path`, or this machine probed (`loader`: with the loader simulation)."""
    if path is not None and not path.strip():  # `--host "$SNAPSHOT"` with the variable unset must not quietly
        from envsolve.errors import EnvsolveError  # describe this machine

        raise EnvsolveError("usage", "--host is empty.", hint="Give a snapshot file (envsolve probe --json > "
                            "host.json) or example:NAME, or leave --host out to use this machine.")
    if path:
        from envsolve.resolver.host import read_host

        return read_host(path)
    # Only a probe imports the probe (NVML, the ldconfig cache, installed packages, ELF): a snapshot plan in CI
    # pays for none of it.
    from envsolve.resolver.probe import probe_host

    return probe_host(loader=loader)
