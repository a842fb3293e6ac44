"""What keeps `envsolve plan --host FILE` light (benchmarks/plan_startup.py measures it): no probe, no TOML or
requirement parser, no other command's options (the render kinds' registry only, for the help), and indexed
matrix look-ups that find what a scan would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from envsolve.errors import EnvsolveError
from envsolve.resolver import matrices
from envsolve.resolver.plan import needed_with

HOSTS = Path(__file__).parent / "hosts"


def test_a_snapshot_plan_loads_neither_the_probe_nor_the_parsers() -> None:
    # Measured against what the interpreter had loaded before envsolve (a site hook may load zipfile itself).
    code = ("import sys; before = set(sys.modules); import envsolve.cli as c; "
            "c.main(['plan', '--host', sys.argv[1], '--json']); "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith(('envsolve.resolver.probe', "
            "'envsolve.pipeline', 'envsolve.render.')) or m in ('tomllib', 'tomli', 'packaging.requirements', "
            "'zipfile')), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, str(HOSTS / "colab-l4.json")], capture_output=True,
                            text=True, check=True)
    assert result.stderr.strip() == "[]"


def test_where_finds_what_a_scan_finds() -> None:
    rows = ({"a": 1, "b": "x"}, {"a": 1.0, "b": ["x"]}, {"a": True}, {"b": "y"}, {"a": 2, "b": "x"})
    table = matrices.Matrix("t", "t", ("a",), "", rows, "")
    queries: list[dict[str, object]] = [{"a": 1}, {"a": 1.0}, {"a": None}, {"b": "x"}, {"b": ["x"]},
                                        {"a": 1, "b": "x"}, {"b": "x", "a": 2}, {"a": [1]}, {"a": 3}]
    for query in queries:
        assert table.where(**query) == [r for r in rows if all(r.get(k) == v for k, v in query.items())], query
    assert table.one(a=2) == rows[4] and table.one(a=5) is None


@pytest.mark.parametrize("row", list(matrices.load("source_builds")), ids=lambda r: str(r["package"]))
def test_needed_with_reads_each_row_as_packaging_does(row: dict[str, object]) -> None:
    text = str(row["needed_with"])
    name, specifier = needed_with(text)
    requirement = Requirement(text)
    assert (name, specifier) == (requirement.name, requirement.specifier)
    assert requirement.marker is None and not requirement.extras and requirement.url is None


def test_needed_with_refuses_what_is_not_a_name_and_specifier() -> None:
    assert needed_with("pyannote-audio") == ("pyannote-audio", SpecifierSet())
    with pytest.raises(EnvsolveError, match="needed_with"):
        needed_with("pyannote-audio[extra]<4")
