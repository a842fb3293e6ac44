"""Shared helpers for the matrix derivation scripts: write a matrix TOML file, check drift.

The scripts run with the standard library plus `packaging`; they are tools for maintainers and
for the drift tests, not part of the installed package.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

MATRICES = Path(__file__).resolve().parent.parent / "matrices"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a matrix: {value!r}")


def render_matrix(
    name: str,
    title: str,
    key: list[str],
    order: str,
    rows: list[dict[str, Any]],
    header: str,
) -> str:
    """The text of a matrix file. `header` is the comment block (each line gets '# ')."""
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()]
    lines += [
        'schema = "envsolve.matrix/1"',
        f"name = {_value(name)}",
        f"title = {_value(title)}",
        f"key = {_value(key)}",
        f"order = {_value(order)}",
    ]
    for row in rows:
        lines.append("")
        lines.append("[[rows]]")
        for field, value in row.items():
            if value is None:
                continue  # absent means unknown
            lines.append(f"{field} = {_value(value)}")
    return "\n".join(lines) + "\n"


def write_or_check(name: str, text: str, check: bool) -> int:
    """Write matrices/<name>.toml, or with check=True report drift against the committed copy."""
    path = MATRICES / f"{name}.toml"
    if check:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old == text:
            print(f"{path.name}: up to date")
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(old.splitlines(True), text.splitlines(True), str(path), "derived")
        )
        print(f"{path.name}: drifted from the registry; regenerate with the script named in its header")
        return 1
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path}")
    return 0
