"""Writing a matrix file, and comparing derived rows with the committed ones.

The file is the data: rows in the committed order of their `order` field, one `key = value` line per known
fact (absent means unknown). `checked` says when a row's facts were last read; a refresh that finds the same
facts keeps the committed `checked`, so a file changes only when a fact does."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envsolve.errors import EnvsolveError
from envsolve.resolver.matrices import Matrix, parse, sort_value

__all__ = ["Derived", "RowChange", "compare", "keep_checked", "load_dir", "render"]

Row = dict[str, Any]
VOLATILE = ("checked",)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class Derived:
    """A matrix as a deriver made it: what `refresh` writes and `verify` compares."""

    name: str
    title: str
    key: list[str]
    order: str
    header: str
    rows: list[Row]
    curated_fields: tuple[str, ...] = ()  # facts refresh keeps from the committed rows (curated by hand)
    notes: list[str] = field(default_factory=list)  # what the deriver could not check, said once

    def key_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row.get(k) for k in self.key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{k if _BARE_KEY.fullmatch(k) else json.dumps(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }" if value else "{}"
    raise TypeError(f"cannot write {type(value).__name__} to a matrix: {value!r}")


def render(matrix: Derived) -> str:
    """The text of a matrix file; `header` becomes the leading comment block."""
    lines = [f"# {line}".rstrip() for line in matrix.header.strip().splitlines()]
    lines += [
        'schema = "envsolve.matrix/1"',
        f"name = {_value(matrix.name)}",
        f"title = {_value(matrix.title)}",
        f"key = {_value(matrix.key)}",
        f"order = {_value(matrix.order)}",
    ]
    for row in matrix.rows:
        lines += ["", "[[rows]]"]
        lines += [f"{k} = {_value(v)}" for k, v in row.items() if v is not None]
    return "\n".join(lines) + "\n"


def clean(row: Mapping[str, Any]) -> Row:
    """A row without its unknown (None) fields, as it reads back from the file."""
    return {k: v for k, v in row.items() if v is not None}


def sort_rows(matrix: Derived) -> None:
    matrix.rows.sort(key=lambda r: (sort_value(r.get(matrix.order)), *(sort_value(r.get(k)) for k in matrix.key)))


@dataclass(frozen=True)
class RowChange:
    key: tuple[Any, ...]
    old: Mapping[str, Any]
    new: Mapping[str, Any]

    @property
    def fields(self) -> list[str]:
        names = list(dict.fromkeys([*self.old, *self.new]))
        return [f for f in names if f not in VOLATILE and self.old.get(f) != self.new.get(f)]


def compare(derived: Derived, committed: Matrix[Any] | None
            ) -> tuple[list[Row], list[Mapping[str, Any]], list[RowChange]]:
    """(rows only derived, rows only committed, rows whose facts differ); `checked` is not a fact."""
    old = {derived.key_of(r): r for r in (committed.rows if committed else ())}
    new = {derived.key_of(r): clean(r) for r in derived.rows}
    added = [r for k, r in new.items() if k not in old]
    removed = [r for k, r in old.items() if k not in new]
    changed = [RowChange(k, old[k], r) for k, r in new.items() if k in old and RowChange(k, old[k], r).fields]
    return added, removed, changed


def keep_checked(derived: Derived, committed: Matrix[Any] | None) -> None:
    """Carry the committed `checked` onto rows whose facts did not change, and curated fields onto every row."""
    old = {derived.key_of(r): r for r in (committed.rows if committed else ())}
    for i, row in enumerate(derived.rows):
        before = old.get(derived.key_of(row))
        if before is None:
            continue
        merged = dict(row)
        for name in derived.curated_fields:
            if name in before and merged.get(name) is None:
                merged[name] = before[name]
        if not RowChange(derived.key_of(row), before, clean(merged)).fields and "checked" in before:
            merged["checked"] = before["checked"]
        derived.rows[i] = merged


def load_dir(folder: Path, name: str) -> Matrix[Any] | None:
    path = folder / f"{name}.toml"
    if not path.exists():
        return None
    try:
        return parse(name, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise EnvsolveError("bad-matrix", f"Cannot read {path}: {error}.",
                            hint="Restore it from envsolve's copy (git checkout), or pass another --matrices."
                            ) from None


def ordered(row: Mapping[str, Any], fields: Sequence[str]) -> Row:
    """`row` with `fields` first, in that order, then the rest; None values dropped."""
    out = {f: row[f] for f in fields if row.get(f) is not None}
    out.update({k: v for k, v in row.items() if k not in out and v is not None})
    return out
