"""Running envsolve on hostile input as a user would, and what every such run must hold to.

Each run is a fresh process with a time limit and a memory limit (RLIMIT_AS), so a hang or a runaway
allocation fails the test instead of the machine. `assert_clean` is the contract of issue 12: the
expected exit status, no traceback, no raw control character on the terminal (the only escape allowed is
the progress bar's own `\\r\\x1b[K`, and only on a terminal, which these runs are not).
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 4 * 1024**3  # bytes of address space; the pipeline with tiny.en needs about 1.5 GB
# Control characters other than newline, and the C1 range (0x9b is a one-byte CSI).
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def envsolve(*args: str | os.PathLike[str], timeout: float = 60, env: dict[str, str] | None = None,
             cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m envsolve ARGS`, bounded in time and memory, output decoded without losing a byte."""
    return subprocess.run([sys.executable, "-m", "envsolve", *map(str, args)], capture_output=True, text=True,
                          errors="surrogateescape", timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd,
                          preexec_fn=_limits, input=stdin)


def assert_clean(result: subprocess.CompletedProcess[str], exit_code: int, *needles: str) -> str:
    """The run exited with `exit_code`, printed no traceback and no raw control character, and said each of
    `needles` (on stdout or stderr). Returns stdout + stderr."""
    both = result.stdout + result.stderr
    assert result.returncode == exit_code, f"exit {result.returncode}, wanted {exit_code}:\n{both[-3000:]}"
    assert "Traceback" not in both and "internal error" not in both, both[-3000:]
    assert not RAW_CONTROL.search(both), f"raw control character in output: {RAW_CONTROL.search(both)!r}"
    for needle in needles:
        assert needle in both, f"{needle!r} not in:\n{both[-3000:]}"
    return both


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error paragraph: exactly one line on stderr."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error[")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def stray_files(folder: Path, allowed: Sequence[str] = ()) -> list[str]:
    """Files under `folder` that a finished run should not have left: temporary files of atomic writes and
    lock files, unless named in `allowed`."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if (p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.endswith(".lock")))
                  and p.name not in allowed)
