"""Run mypy over the package as it installs (envsolve.resolver lives in resolver/, and so on).

The folders are mapped under one namespace by setuptools' package-dir, which mypy cannot follow
through an editable install, so this builds a tree of symlinks in the package's installed shape
and checks that.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"


def main() -> int:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(TREE, ignore_errors=True)
    for package, folder in sorted(mapping.items()):
        target = TREE.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for source in (ROOT / folder).glob("*.py*"):
            if source.suffix in {".py", ".pyi", ".typed"}:
                (target / source.name).symlink_to(source)
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "envsolve"]
    return subprocess.call(command, cwd=TREE)


if __name__ == "__main__":
    raise SystemExit(main())
