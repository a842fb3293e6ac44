"""Row facts every package matrix carries, from the index: release date, yanked (PEP 592), Python tags,
the artifact read (file name and the sha256 the index lists), and the requirement lines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from email.message import Message
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from envsolve.derive._index import Dist, python_versions

__all__ = ["artifact_fields", "index_fields", "pick_wheel", "requirement", "yanked_fields"]


def yanked_fields(files: Sequence[Dist]) -> dict[str, Any]:
    """yanked (every file of the release is), its reason; a partly yanked release says which files in a note."""
    every = bool(files) and all(f.yanked for f in files)
    reason = next((f.yanked_reason for f in files if f.yanked and f.yanked_reason), None)
    out: dict[str, Any] = {"yanked": every, "yanked_reason": reason if every else None}
    some = [f.filename for f in files if f.yanked]
    if some and not every:
        out["_note"] = f"{len(some)} of {len(files)} files yanked ({', '.join(sorted(some)[:3])}...)"
    return out


def index_fields(files: Sequence[Dist], *, python: bool = True) -> dict[str, Any]:
    """released (first upload), yanked, yanked_reason, python (CPython X.Y of the Linux x86_64 wheels' tags)."""
    dates = [f.uploaded for f in files if f.uploaded]
    out: dict[str, Any] = {"released": min(dates) if dates else None}
    out.update(yanked_fields(files))
    if python:
        regular, _ = python_versions(files)
        out["python"] = regular or None  # py3-none wheels: no CPython list (python_requires says it)
    return out


def artifact_fields(dist: Dist | None) -> dict[str, Any]:
    return {"artifact": dist.filename, "sha256": dist.sha256 or None} if dist else {}


def pick_wheel(files: Iterable[Dist], machine: str = "x86_64") -> Dist | None:
    """The Linux wheel for `machine` that stands for the release: cp311, else py3/abi3, else the newest CPython."""
    wheels = [f for f in files if f.is_wheel and f.linux(machine)]

    def rank(f: Dist) -> tuple[int, Version, str]:
        tags = f.tags
        if any(t.interpreter == "cp311" and not t.abi.endswith("t") for t in tags):
            return (3, Version("3.11"), f.filename)
        if any(t.abi in ("none", "abi3") for t in tags):
            return (2, Version("0"), f.filename)
        cps = [Version(f"3.{t.interpreter[3:]}") for t in tags
               if t.interpreter[3:].isdigit() and not t.abi.endswith("t")]
        return (1, max(cps), f.filename) if cps else (0, Version("0"), f.filename)

    best = max(wheels, key=rank, default=None)
    return best if best is None or rank(best)[0] > 0 else None


def requirement(meta: Message, name: str) -> tuple[Requirement | None, str | None]:
    """The unconditional (not extra-only) Requires-Dist on `name`, and its line as written."""
    for text in meta.get_all("Requires-Dist") or []:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == canonicalize_name(name) and not (req.marker and "extra" in str(req.marker)):
            return req, f"Requires-Dist: {text}"
    return None, None
