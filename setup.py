"""setuptools' package list, found instead of written down.

pyproject.toml maps the top-level folders (resolver/, pipeline/, ...) under one namespace, envsolve.*,
with `package-dir`. Its `packages.find` cannot put the mapped name in front of what it finds inside a
mapped folder, so the list is made here: each mapped package and every folder below it. A new subpackage
(resolver/probe/, envsolve/commands/) ships without an edit. Data-only folders (envsolve/data/) are
packages too, so that setuptools ships their files without warning that a future version may not.
Everything else is configured in pyproject.toml.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import find_namespace_packages, setup

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - a build-system requirement on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent


def packages() -> list[str]:
    """Every package under the package-dir mapping, with its installed (envsolve.*) name."""
    mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found: list[str] = []
    for name, folder in sorted(mapping.items()):
        below = find_namespace_packages(str(ROOT / folder), exclude=["__pycache__", "*.__pycache__"])
        found += [name, *(f"{name}.{sub}" for sub in below)]
    return found


setup(packages=packages())
