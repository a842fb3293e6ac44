"""The wheel ships every source and data file of the mapped folders at its envsolve.* path, and nothing else.

An editable install imports whatever the folders hold, so a subpackage or data file that the build
configuration misses still works in development and is absent only from the wheel; this builds one
(setuptools' PEP 517 hook, offline, from a copy of the project so no build/ left over from an earlier
build can fill a gap) and compares.
"""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import build_wheel, source_files

ROOT = Path(__file__).resolve().parent.parent
MAPPING: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md")


def _source_files() -> list[str]:
    return source_files(sorted(set(MAPPING.values())))


def _installed_name(source: str) -> str:
    """resolver/probe/elf.py -> envsolve/resolver/probe/elf.py, through the package-dir mapping."""
    folder, _, rest = source.partition("/")
    package = next(p for p, f in MAPPING.items() if f == folder)
    return f"{package.replace('.', '/')}/{rest}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[zipfile.ZipFile, str]:
    path, log = build_wheel(tmp_path_factory.mktemp("project"), tmp_path_factory.mktemp("wheel"),
                            [*BUILD_INPUTS, *_source_files()])
    return zipfile.ZipFile(path), log


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


def test_the_wheel_render_ships_is_the_wheel_setuptools_builds(wheel: tuple[zipfile.ZipFile, str]) -> None:
    """render/selfwheel.py rebuilds envsolve's wheel from the running envsolve without setuptools: the same files
    with the same bytes (RECORD and WHEEL name their own generator)."""
    import io

    from envsolve.render.selfwheel import build_wheel

    ours = zipfile.ZipFile(io.BytesIO(build_wheel()))
    archive, _ = wheel
    generated = ("/RECORD", "/WHEEL")
    theirs = {n for n in archive.namelist() if not n.endswith(generated)}
    assert {n for n in ours.namelist() if not n.endswith(generated)} == theirs
    metadata = next(n for n in theirs if n.endswith("/METADATA"))
    assert [n for n in theirs - {metadata} if ours.read(n) != archive.read(n)] == []
    # METADATA: the same headers, without the long description (the README), which an editable install keeps stale.
    headers = archive.read(metadata).decode().split("\n\n", 1)[0].splitlines()
    assert ours.read(metadata).decode().splitlines() == [h for h in headers if not h.startswith("Description-Content")]
