"""The matrices compiled to JSON (matrices/compiled/NAME.json), so that `plan` does not parse TOML.

tomllib took 0.16 s of a 0.29 s `plan --host` to read the 5,700 rules of the 13 matrices a plan consults; the
standard library's JSON decoder (C) reads the same data for all 22 matrices in about 3 ms. JSON rather than
marshal or pickle: loading it runs no code (a pickle can), its format is the same on every Python (marshal's
is not promised to be), marshal measured no faster here, and a compiled file diffs as text in review.

Each compiled file carries the sha256 of the TOML it was made from, and `read` uses it only when the TOML's
bytes still hash to that (hashing all 900 kB takes about a millisecond). A TOML edited without regenerating is
therefore never read stale, only slowly; tests/test_compiled.py fails on it, naming REGENERATE.
`envsolve matrices refresh` recompiles what it rewrites.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["FOLDER", "REGENERATE", "compile_folder", "parse_toml", "read", "render", "stale"]

FOLDER = "compiled"
REGENERATE = "python scripts/compile_matrices.py"
Table = dict[str, Any]


def parse_toml(text: str) -> tuple[Table, str]:
    """A matrix file's table and its header (the text of its `#` comment lines)."""
    import sys

    # Imported here: with the compiled files fresh, a plan never needs the TOML parser.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    header = "\n".join(line[1:].strip() for line in text.splitlines() if line.startswith("#"))
    return tomllib.loads(text), header


def read(folder: Traversable, name: str, raw: bytes) -> tuple[Table, str]:
    """The table and header of NAME.toml, whose bytes are `raw`: compiled when that file is fresh, else parsed."""
    compiled = _compiled(folder.joinpath(FOLDER).joinpath(f"{name}.json"), hashlib.sha256(raw).hexdigest())
    return compiled if compiled is not None else parse_toml(raw.decode("utf-8"))


def _compiled(path: Traversable, sha256: str) -> tuple[Table, str] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):  # absent (a checkout before compiling) or damaged: the TOML is the truth
        return None
    if not isinstance(data, dict) or data.get("toml_sha256") != sha256:
        return None
    table, header = data.get("table"), data.get("header")
    if not isinstance(table, dict) or not isinstance(header, str):
        return None
    return table, header


def render(name: str, raw: bytes) -> str:
    """The compiled file for NAME.toml's bytes: one row a line, so a review sees which rows changed."""
    table, header = parse_toml(raw.decode("utf-8"))

    def dump(value: object) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    lines = ["{" + f'"generated":{dump(f"from {name}.toml by envsolve, regenerate with: {REGENERATE}")},',
             f'"toml_sha256":{dump(hashlib.sha256(raw).hexdigest())},', f'"header":{dump(header)},']
    rows = table.get("rows")
    if not isinstance(rows, list):
        return "\n".join([*lines, f'"table":{dump(table)}' + "}"]) + "\n"
    rest = dump({k: v for k, v in table.items() if k != "rows"})[:-1]
    lines.append(f'"table":{rest}{"," if rest != "{" else ""}"rows":[')
    lines += [dump(row) + ("," if i < len(rows) - 1 else "") for i, row in enumerate(rows)]
    return "\n".join(lines) + "\n]}}\n"


def _expected(folder: Path) -> dict[Path, str]:
    return {folder / FOLDER / f"{toml.stem}.json": render(toml.stem, toml.read_bytes())
            for toml in sorted(folder.glob("*.toml"))}


def stale(folder: Path) -> list[str]:
    """What differs between folder/*.toml and their compiled files: one line each, empty when current."""
    expected = _expected(folder)
    found = [f"{path.parent.name}/{path.name} is missing" for path in expected if not path.is_file()]
    found += [f"{path.parent.name}/{path.name} does not match {path.stem}.toml" for path, text in expected.items()
              if path.is_file() and path.read_text(encoding="utf-8") != text]
    found += [f"{path.parent.name}/{path.name} has no {path.stem}.toml" for path in _orphans(folder, expected)]
    return found


def compile_folder(folder: Path) -> list[Path]:
    """Write the compiled file of every folder/*.toml that differs, remove those without a TOML; what changed."""
    from envsolve.atomic import write_text

    expected = _expected(folder)
    (folder / FOLDER).mkdir(exist_ok=True)
    changed = []
    for path, text in expected.items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_text(path, text)
            changed.append(path)
    for orphan in _orphans(folder, expected):
        orphan.unlink()
        changed.append(orphan)
    return changed


def _orphans(folder: Path, expected: Iterable[Path]) -> list[Path]:
    return sorted(set((folder / FOLDER).glob("*.json")) - set(expected))
