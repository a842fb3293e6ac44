"""Run mypy over the package as it installs, and name each file in its report by its source.

setuptools maps the top-level folders under one namespace (envsolve.resolver lives in resolver/, and so
on), which mypy cannot follow through the editable install's import hook. setuptools' strict editable
mode lays the package out in its installed shape as a tree of links to the sources; this asks setuptools
for that tree (its PEP 660 hook, offline), so the tree holds exactly the packages and files the wheel
does, runs mypy on it, and turns the linked paths in mypy's report back into source paths
(envsolve/resolver/probe/elf.py -> resolver/probe/elf.py). The tree goes in build/ (ignored by git).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_LOCATION = re.compile(r"^(?P<path>[^\s:][^:]*\.pyi?)(?=:)", re.MULTILINE)


def link_tree() -> Path:
    """The folder of setuptools' strict editable link tree, (re)made now from the current sources."""
    with tempfile.TemporaryDirectory() as out:
        hook = ("import sys, setuptools.build_meta as backend; "
                "print(backend.build_editable(sys.argv[1], {'editable_mode': 'strict'}))")
        proc = subprocess.run([sys.executable, "-c", hook, out], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"setuptools could not lay out the package:\n{proc.stdout}{proc.stderr}")
        wheel = Path(out, proc.stdout.strip().splitlines()[-1])
        with zipfile.ZipFile(wheel) as archive:
            # The editable wheel's only job is a .pth naming the tree.
            pth = next(n for n in archive.namelist() if n.endswith(".pth"))
            return Path(archive.read(pth).decode().strip())


def to_source(report: str, tree: Path) -> str:
    """Replace each linked path at the start of a line with the source file it links to."""

    def source(match: re.Match[str]) -> str:
        real = os.path.realpath(tree / match["path"])
        return os.path.relpath(real, ROOT) if real.startswith(str(ROOT) + os.sep) else match["path"]

    return _LOCATION.sub(source, report)


def main() -> int:
    tree = link_tree()
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "--cache-dir", str(ROOT / ".mypy_cache"), "-p", "envsolve"]
    # Run inside the tree: from the repository root, ./envsolve (the CLI folder alone) would shadow it.
    proc = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    print(to_source(proc.stdout, tree), end="")
    print(to_source(proc.stderr, tree), end="", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
