"""Load the compatibility matrices (TOML data files in matrices/) and check their shape.

The tables are data, not code: each row names its source and how it was checked. This module
only reads them; the rules that interpret them live in envsolve.resolver.rulebook and
envsolve.resolver.packages.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from envsolve import packagefiles
from envsolve.errors import EnvsolveError
from envsolve.resolver import compiled
from envsolve.terminal import printable

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["Matrix", "Row", "load", "names", "parse", "problems", "sort_value"]


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
    # where()'s indexes, one per set of field names asked about; None where a row's value cannot be hashed.
    _indexes: dict[tuple[str, ...], dict[tuple[Any, ...], list[Row]] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def where(self, **fields: Any) -> list[Row]:
        """Rows whose fields equal the given values."""
        # A plan asks a few hundred of these of tables up to 300 rows long: scanning them all was a tenth of its
        # time. A dict finds what == would (1, 1.0 and True hash alike, as they compare).
        names = tuple(fields)
        if names not in self._indexes:
            self._indexes[names] = _index(self.rows, names)
        index = self._indexes[names]
        try:
            if index is not None:
                return list(index.get(tuple(fields.values()), ()))
        except TypeError:  # an unhashable value asked for
            pass
        return [row for row in self.rows if all(row.get(k) == v for k, v in fields.items())]

    def one(self, **fields: Any) -> Row | None:
        found = self.where(**fields)
        return found[0] if found else None


def _index(rows: tuple[Row, ...], names: tuple[str, ...]) -> dict[tuple[Any, ...], list[Row]] | None:
    index: dict[tuple[Any, ...], list[Row]] = {}
    try:
        for row in rows:
            index.setdefault(tuple(row.get(k) for k in names), []).append(row)
    except TypeError:  # a list or table value: where() scans instead
        return None
    return index


def _folder() -> Traversable:
    return packagefiles.folder("envsolve.matrices")


def names() -> list[str]:
    """Every matrix shipped with envsolve, by file stem."""
    return sorted(p.name[: -len(".toml")] for p in _folder().iterdir() if p.name.endswith(".toml"))


@cache
def load(name: str) -> Matrix:
    """The named matrix; raises EnvsolveError(unknown-matrix) for a name that does not exist."""
    if name not in names():  # a name, never a path: `../../x` and 300-character names are unknown, not opened
        raise EnvsolveError(
            "unknown-matrix",
            f"There is no matrix called {printable(repr(name[:80]))}.",
            hint=f"Use one of: {', '.join(names())}.",
        )
    resource = _folder().joinpath(f"{name}.toml")
    # The compiled JSON beside the TOML when it is fresh (resolver/compiled.py), else the TOML itself.
    try:
        return _matrix(name, *compiled.read(_folder(), name, resource.read_bytes()))
    except ValueError as error:  # tomllib.TOMLDecodeError: a stale compiled copy sent us to a broken TOML
        raise _bad_toml(name, error) from None


def parse(name: str, text: str) -> Matrix:
    """The matrix in a TOML text."""
    try:
        return _matrix(name, *compiled.parse_toml(text))
    except ValueError as error:  # tomllib.TOMLDecodeError
        raise _bad_toml(name, error) from None


def _bad_toml(name: str, error: ValueError) -> EnvsolveError:
    return EnvsolveError("bad-matrix", f"matrices/{name}.toml is not valid TOML ({error}).",
                         hint="Restore it from envsolve's copy (git checkout), or refresh it.")


def _matrix(name: str, data: Mapping[str, Any], header: str) -> Matrix:
    if data.get("schema") != SCHEMA:
        raise EnvsolveError("bad-matrix", f"matrices/{name}.toml does not declare schema = {SCHEMA!r}.")
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
        for evidence in ("source", "checked"):
            if not str(row.get(evidence, "")).strip():
                found.append(f"{where}: no {evidence!r}")
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

