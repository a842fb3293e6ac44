"""The finding codes: titles, explanations, symptoms, sources and ways out (resolver/rules.toml)."""

from __future__ import annotations

import sys
from functools import cache
from importlib import resources
from typing import Any

from envsolve.errors import EnvsolveError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@cache
def all_rules() -> dict[str, dict[str, Any]]:
    text = resources.files("envsolve.resolver").joinpath("rules.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text))


def rule(code: str) -> dict[str, Any]:
    rules = all_rules()
    if code not in rules:
        close = [c for c in rules if code.split("-")[0] in c]
        raise EnvsolveError("unknown-code", f"There is no finding code {code!r}.",
                            hint=f"Known codes: {', '.join(close or sorted(rules))}. "
                            "`envsolve explain` with no code lists them all.")
    return rules[code]


def ways_out(code: str) -> list[str]:
    return list(all_rules().get(code, {}).get("ways_out", []))
