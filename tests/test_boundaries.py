"""The probe and the engine meet only in the Host snapshot (envsolve.resolver.host), checked on the imports.

The engine (the rulebook, check, the planner, explanations, reports...) works the same on a snapshot
read from JSON and on this machine, so it must not reach into the probe; the probe fills in a Host and
needs nothing else of the engine. Every import statement counts, those inside functions too.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESOLVER = ROOT / "resolver"
PROBE = "envsolve.resolver.probe"
JOIN = "envsolve.resolver.host"


def _modules() -> dict[str, Path]:
    """Every module of the package by its installed name, through the package-dir mapping."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out: dict[str, Path] = {}
    for package, folder in mapping.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()
# The commands and the text renderings (envsolve/commands, envsolve/report.py) sit above both and may use both.
ENGINE = sorted(m for m, p in MODULES.items() if p.parent == RESOLVER and m != JOIN)
PROBE_MODULES = sorted(m for m in MODULES if m == PROBE or m.startswith(PROBE + "."))


def imports(module: str) -> set[str]:
    """The modules `module` imports (a `from package import submodule` names the submodule)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found


def _in_probe(module: str) -> bool:
    return module == PROBE or module.startswith(PROBE + ".")


def test_the_layout_is_what_the_checks_assume() -> None:
    assert {"envsolve.resolver.check", "envsolve.resolver.search", "envsolve.resolver.rulebook"} <= set(ENGINE)
    assert {f"{PROBE}.compose", f"{PROBE}.elf", f"{PROBE}.loader", f"{PROBE}.nvml"} <= set(PROBE_MODULES)
    assert JOIN in MODULES and JOIN not in ENGINE


@pytest.mark.parametrize("module", ENGINE)
def test_engine_does_not_import_the_probe(module: str) -> None:
    assert sorted(m for m in imports(module) if _in_probe(m)) == []


@pytest.mark.parametrize("module", PROBE_MODULES)
def test_probe_takes_only_the_host_snapshot_from_the_engine(module: str) -> None:
    allowed = {JOIN, "envsolve.errors"}
    outside = sorted(m for m in imports(module) if m.split(".")[0] == "envsolve" and not _in_probe(m))
    assert [m for m in outside if m not in allowed] == []


def test_the_join_does_not_import_the_probe() -> None:
    assert sorted(m for m in imports(JOIN) if _in_probe(m)) == []


def test_imports_are_read_from_every_kind_of_statement() -> None:
    # The check is only as good as the parser: function-level, from-package and relative imports all count.
    assert f"{PROBE}.installed" in imports(f"{PROBE}.compose")  # from envsolve.resolver.probe import installed
    assert JOIN in imports("envsolve.commands.probe")  # imported inside a function
    assert f"{PROBE}.compose" in imports(PROBE)


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str]:
    """A path start -> ... -> start through `graph`, or [] when there is none."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop()
        for nxt in sorted(graph[path[-1]]):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    return []


def test_resolver_modules_import_no_cycle() -> None:
    # A cycle hidden behind a function-level import (derive/_index <-> _wheel did) still ties two modules into
    # one: neither can be read, tested or moved alone.
    resolver = {m for m in MODULES if m.startswith("envsolve.resolver.")}
    graph = {m: {i for i in imports(m) if i in resolver and i != m} for m in resolver}
    assert [cycle for m in sorted(resolver) if (cycle := _cycle_from(m, graph))] == []
