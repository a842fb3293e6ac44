"""The catalogue of finding codes: titles, explanations, symptoms, sources and ways out (resolver/codes.toml).

The rules that raise the codes live in rulebook.py and packages.py; this module only describes them.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from envsolve.errors import EnvsolveError

__all__ = ["all_codes", "entry", "ways_out"]


@cache
def all_codes() -> dict[str, dict[str, Any]]:
    import sys

    # Imported here: a plan that succeeds explains nothing and need not load the TOML parser.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    text = resources.files("envsolve.resolver").joinpath("codes.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text))


def entry(code: str) -> dict[str, Any]:
    known = all_codes()
    if code not in known:
        close = [c for c in known if code.split("-")[0] in c]
        raise EnvsolveError("unknown-code", f"There is no finding code {code!r}.",
                            hint=f"Known codes: {', '.join(close or sorted(known))}. "
                            "`envsolve explain` with no code lists them all.")
    return known[code]


def ways_out(code: str) -> list[str]:
    return list(all_codes().get(code, {}).get("ways_out", []))
