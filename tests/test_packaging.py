"""The wheel ships every source and data file of the mapped folders at its envsolve.* path, and nothing else.

An editable install imports whatever the folders hold, so a subpackage or data file that the build
configuration misses still works in development and is absent only from the wheel; this builds one
(setuptools' PEP 517 hook, offline, from a copy of the project so no build/ left over from an earlier
build can fill a gap) and compares.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAPPING: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md")


def _source_files() -> list[str]:
    """Files under the mapped folders as git sees them: tracked or new, never ignored (caches, temp files)."""
    folders = sorted(set(MAPPING.values()))
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *folders],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    return sorted(p for p in set(listed) if (ROOT / p).is_file())  # a deleted, still tracked file is not a source


def _installed_name(source: str) -> str:
    """resolver/probe/elf.py -> envsolve/resolver/probe/elf.py, through the package-dir mapping."""
    folder, _, rest = source.partition("/")
    package = next(p for p, f in MAPPING.items() if f == folder)
    return f"{package.replace('.', '/')}/{rest}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[zipfile.ZipFile, str]:
    project = tmp_path_factory.mktemp("project")
    for rel in [*BUILD_INPUTS, *_source_files()]:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, project / rel)
    out = tmp_path_factory.mktemp("wheel")
    build = ("import sys, setuptools.build_meta as backend; "
             "print('WHEEL=' + backend.build_wheel(sys.argv[1]))")
    # PYTHONDONTWRITEBYTECODE makes distutils warn that it skips byte-compiling, a warning about the caller.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, "-c", build, str(out)], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    name = next(line for line in proc.stdout.splitlines() if line.startswith("WHEEL=")).removeprefix("WHEEL=")
    return zipfile.ZipFile(out / name), log


def test_source_files_are_found() -> None:
    files = _source_files()
    for expected in ("envsolve/cli.py", "envsolve/py.typed", "resolver/codes.toml", "matrices/torch.toml"):
        assert expected in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def test_wheel_holds_every_source_and_data_file_and_nothing_else(wheel: tuple[zipfile.ZipFile, str]) -> None:
    archive, _ = wheel
    names = set(archive.namelist())
    dist_info = {n for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    expected = {_installed_name(f) for f in _source_files()}
    assert sorted(expected - names) == [], "in the source folders but not in the wheel"
    assert sorted(names - dist_info - expected) == [], "in the wheel but not a source file"
    top_level = next(n for n in dist_info if n.endswith("/top_level.txt"))
    assert archive.read(top_level).decode().split() == ["envsolve"]  # nothing generic (resolver) in site-packages


def test_build_prints_no_warning(wheel: tuple[zipfile.ZipFile, str]) -> None:
    _, log = wheel
    assert [line for line in log.splitlines() if "warn" in line.lower()] == [], log
