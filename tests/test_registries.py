"""Lists that prose or code must spell out are held to the registry they copy: the render kinds (render.KINDS),
the built-in example hosts (envsolve/data/examples), the derivable matrices (derive DERIVABLE) and the
facts a host provides (rulebook.host_candidates). What can be derived is derived; these check the rest."""

from __future__ import annotations

import argparse
import ast
import importlib
import re
from pathlib import Path

import pytest

from conftest import HOSTS
from envsolve.cli import build_parser
from envsolve.commands import COMMANDS
from envsolve.derive import DERIVABLE
from envsolve.render import KINDS
from envsolve.resolver.host import examples, read_host
from envsolve.resolver.request import compute_types
from envsolve.resolver.rulebook import host_candidates
from envsolve.resolver.search import HOST_CAPABILITIES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
KIND_NAMES = [kind.name for kind in KINDS]


def _table_after(header: str) -> list[str]:
    lines = README.split(header + "\n", 1)[1].splitlines()
    return [line for line in lines[1:next(i for i, line in enumerate(lines) if not line.startswith("|"))]]


def test_readme_commands_table_names_every_render_kind() -> None:
    row = next(line for line in README.splitlines() if line.startswith("| `envsolve render KIND"))
    named = re.findall(r"`([a-z][a-z-]*)`", row)
    assert named == [*KIND_NAMES, "all"], "README's render row must list render.KINDS in order, then `all`"


def test_readme_kinds_table_has_a_row_per_kind() -> None:
    rows = _table_after("| Kind | File(s) | What it is |")
    named = [name for row in rows for name in re.findall(r"`([a-z][a-z-]*)`", row.split("|")[1])]
    assert named == KIND_NAMES


def test_readme_names_every_example_host() -> None:
    line = next(line for line in README.splitlines() if "built-in examples:" in line)
    assert sorted(re.findall(r"[a-z0-9-]+", line.split("built-in examples:", 1)[1])) == examples()


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_texts_are_made_from_the_registries() -> None:
    parsers = _subparsers()
    render = next(c for c in COMMANDS if c.name == "render")
    assert all(name in render.help for name in KIND_NAMES)
    assert all(kind.help in (render.description or "") for kind in KINDS)
    epilog = parsers["matrices"].epilog or ""
    assert all(name in epilog for name in DERIVABLE)
    host_help = next(a.help for a in parsers["plan"]._actions if "--host" in a.option_strings) or ""
    assert all(f"example:{name}" in host_help for name in examples())
    compute = next(a for a in parsers["run"]._actions if "--compute-type" in a.option_strings)
    assert list(compute.choices or ()) == compute_types()


@pytest.mark.parametrize("snapshot", sorted(HOSTS.glob("*.json")), ids=lambda p: p.stem)
def test_host_capabilities_are_what_host_candidates_provide(snapshot: Path) -> None:
    provided = {p.capability for c in host_candidates(read_host(snapshot)) for p in c.provides}
    assert {p for p in provided if not p.startswith("lib:")} <= set(HOST_CAPABILITIES)


def test_every_host_capability_is_provided_by_some_host() -> None:
    hosts = [read_host(p) for p in HOSTS.glob("*.json")] + [read_host(f"example:{name}") for name in examples()]
    provided = {p.capability for host in hosts for c in host_candidates(host) for p in c.provides}
    assert set(HOST_CAPABILITIES) <= provided, "search.HOST_CAPABILITIES names a fact no host provides"


def test_a_regenerate_command_gives_every_plan_flag_back() -> None:
    from envsolve.commands.plan import add_plan_arguments
    from envsolve.commands.render import _plan_flags

    flags = ["--host", "h.json", "--pathway", "A", "--workload", "whisperx", "--device", "cpu", "--python", "3.11",
             "--compute-type", "int8", "-c", "torch<3", "-c", "ctranslate2<5", "--replace-preinstalled",
             "--target", "image"]
    plan_only = argparse.ArgumentParser(add_help=False)
    add_plan_arguments(plan_only)
    assert {a.dest for a in plan_only._actions} == set(vars(plan_only.parse_args(flags)))
    assert all(value not in (None, False) for value in vars(plan_only.parse_args(flags)).values()), "flags: all"
    given = build_parser().parse_args(["render", "all", "-o", "x", *flags])
    again = build_parser().parse_args(["render", "all", "-o", "x", *_plan_flags(given)])
    assert {k: getattr(again, k) for k in vars(plan_only.parse_args([]))} == vars(plan_only.parse_args(flags))


RESOLVER = Path(__file__).resolve().parent.parent / "resolver"
CORE = sorted(p.stem for p in RESOLVER.glob("*.py") if p.stem != "__init__")


def _used_from_outside() -> dict[str, set[str]]:
    """Per core resolver module, the names other modules (tests included) import from it or read off it."""
    root = RESOLVER.parent
    files = [p for folder in ("envsolve", "resolver", "render", "pipeline", "tests", "scripts", "benchmarks")
             for p in (root / folder).rglob("*.py")]
    used: dict[str, set[str]] = {m: set() for m in CORE}
    for path in files:
        own = path.stem if path.parent == RESOLVER else None
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = node.module.removeprefix("envsolve.resolver.")
                if module in CORE and module != own:
                    used[module].update(alias.name for alias in node.names)
                if node.module == "envsolve.resolver":
                    aliases.update({a.asname or a.name: a.name for a in node.names if a.name in CORE})
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and aliases[node.value.id] != own):
                used[aliases[node.value.id]].add(node.attr)
    return used


def test_core_resolver_modules_declare_what_others_use() -> None:
    used = _used_from_outside()
    for module in CORE:
        loaded = importlib.import_module(f"envsolve.resolver.{module}")
        declared = getattr(loaded, "__all__", None)
        assert declared is not None, f"resolver/{module}.py has no __all__"
        assert all(hasattr(loaded, name) for name in declared), module
        missing = sorted(n for n in used[module] if not n.startswith("_") and n not in declared)
        assert missing == [], f"add {missing} to envsolve.resolver.{module}.__all__ (other modules use them)"
