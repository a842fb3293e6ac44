"""Load the compatibility matrices (TOML data files in matrices/) and check their shape.

The tables are data, not code: each row names its source and how it was checked. This module
only reads them; the rules that interpret them live in envsolve.resolver.rulebook and
envsolve.resolver.packages.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from packaging.version import InvalidVersion, Version

from envsolve.errors import EnvsolveError
from envsolve.terminal import printable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA = "envsolve.matrix/1"
Row = Mapping[str, Any]


@dataclass(frozen=True)
class Matrix:
    """One compatibility table: rows of facts, each with `source` and `checked`."""

    name: str
    title: str
    key: tuple[str, ...]
    order: str
    rows: tuple[Row, ...]
    header: str

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def where(self, **fields: Any) -> list[Row]:
        """Rows whose fields equal the given values."""
        return [row for row in self.rows if all(row.get(k) == v for k, v in fields.items())]

    def one(self, **fields: Any) -> Row | None:
        found = self.where(**fields)
        return found[0] if found else None


def names() -> list[str]:
    """Every matrix shipped with envsolve, by file stem."""
    folder = resources.files("envsolve.matrices")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


@cache
def load(name: str) -> Matrix:
    """The named matrix; raises EnvsolveError(unknown-matrix) for a name that does not exist."""
    if name not in names():  # a name, never a path: `../../x` and 300-character names are unknown, not opened
        raise EnvsolveError(
            "unknown-matrix",
            f"There is no matrix called {printable(repr(name[:80]))}.",
            hint=f"Use one of: {', '.join(names())}.",
        )
    text = resources.files("envsolve.matrices").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse(name, text)


def parse(name: str, text: str) -> Matrix:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EnvsolveError("bad-matrix", f"matrices/{name}.toml is not valid TOML ({error}).",
                            hint="Restore it from envsolve's copy (git checkout), or refresh it.") from None
    if data.get("schema") != SCHEMA:
        raise EnvsolveError("bad-matrix", f"matrices/{name}.toml does not declare schema = {SCHEMA!r}.")
    header = "\n".join(line[1:].strip() for line in text.splitlines() if line.startswith("#"))
    return Matrix(
        name=str(data.get("name", name)),
        title=str(data.get("title", name)),
        key=tuple(data.get("key", ())),
        order=str(data.get("order", "")),
        rows=tuple(data.get("rows", ())),
        header=header,
    )


def sort_value(value: Any) -> tuple[int, Any]:
    """A key that orders versions by PEP 440 and everything else naturally."""
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (1, Version(str(value)))
    if isinstance(value, str):
        try:
            return (1, Version(value))
        except InvalidVersion:
            return (2, value)
    return (3, str(value))


def problems(matrix: Matrix) -> list[str]:
    """Shape problems: rows without evidence, out of order, duplicated or overlapping."""
    found: list[str] = []
    seen: set[tuple[Any, ...]] = set()
    previous: tuple[Any, ...] | None = None
    for index, row in enumerate(matrix.rows):
        where = f"{matrix.name}.toml row {index + 1}"
        for field in ("source", "checked"):
            if not str(row.get(field, "")).strip():
                found.append(f"{where}: no {field!r}")
        key = tuple(row.get(k) for k in matrix.key)
        if None in key:
            found.append(f"{where}: key field missing ({', '.join(matrix.key)})")
        elif key in seen:
            found.append(f"{where}: duplicate key {key}")
        seen.add(key)
        if matrix.order:
            position = (sort_value(row.get(matrix.order)), *(sort_value(v) for v in key))
            if previous is not None and position < previous:
                found.append(f"{where}: out of order by {matrix.order!r}")
            previous = position
    found += _overlaps(matrix)
    return found


def _overlaps(matrix: Matrix) -> list[str]:
    """Range rows (min inclusive, max exclusive) must not overlap."""
    ranged = [row for row in matrix.rows if "min" in row]
    found = []
    for before, after in itertools.pairwise(ranged):
        end = before.get("max")
        if end is None or Version(str(end)) > Version(str(after["min"])):
            found.append(f"{matrix.name}.toml: range {before['min']}..{end} overlaps {after['min']}")
    return found

