"""What a drift means, in a sentence a maintainer acts on: "torchaudio 2.11.1 is new; its native libraries need
torch >=2.13.0 symbols; its Requires-Dist admits torch 2.11.0, which lacks them; envsolve's diarize extra
(torchaudio==2.11.0) does not admit it"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envsolve.derive._toml import Derived, RowChange

__all__ = ["meanings", "own_requirements"]

Row = Mapping[str, Any]
FAMILY = ("torchaudio", "torchvision", "torchcodec")
PROJECT = {"torchaudio": "torchaudio", "torchvision": "torchvision", "torchcodec": "torchcodec",
           "ctranslate2": "ctranslate2", "faster_whisper": "faster-whisper", "pyannote_audio": "pyannote.audio",
           "whisperx": "whisperx", "torch": "torch"}


def own_requirements() -> list[tuple[str, Requirement]]:
    """(extra or "", requirement) of the installed envsolve distribution: what its extras pin."""
    out = []
    try:
        lines = metadata.requires("envsolve") or []
    except metadata.PackageNotFoundError:
        return []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        extra = ""
        if req.marker is not None and "extra" in str(req.marker):
            extra = str(req.marker).split("extra ==", 1)[-1].strip().strip("'\"")
        out.append((extra, req))
    return out


def _label(derived: Derived, row: Row) -> str:
    if derived.name == "torch":
        return f"torch {row.get('torch')}+{row.get('variant')}"
    if derived.name == "huggingface_hub":
        return f"huggingface_hub >={row.get('min')}"
    return f"{PROJECT.get(derived.name, derived.name)} {row.get('version')}"


def _admitted_but_lacking(row: Row) -> list[str]:
    """Torch releases its Requires-Dist admits (among those checked) that its binaries do not load with."""
    spec = row.get("torch_requires")
    abi = row.get("torch_abi")
    checked = row.get("torch_abi_checked") or []
    if not abi:
        return []
    declared = SpecifierSet(spec) if spec else SpecifierSet()
    binary = SpecifierSet(abi)
    return [t for t in checked if declared.contains(t, prereleases=True) and not binary.contains(t, prereleases=True)]


def _family_sentence(derived: Derived, row: Row) -> list[str]:
    out = []
    name = _label(derived, row)
    abi = row.get("torch_abi")
    if abi:
        missing = row.get("torch_abi_missing") or {}
        lack = "; ".join(f"torch {r} lacks {', '.join(s)}" for r, s in missing.items())
        out.append(f"its native libraries need torch {abi} symbols" + (f" ({lack})" if lack else ""))
        bad = _admitted_but_lacking(row)
        if bad:
            declared = row.get("torch_requires") or "no torch requirement at all"
            out.append(f"its Requires-Dist ({declared}) admits torch {', '.join(bad)}, which cannot load it: pip can "
                       "install a pair that does not import, and the rulebook calls that torch-family-mismatch")
    elif row.get("torch_abi_checked"):
        out.append("no checked torch release exports every torch symbol it imports")
    project = canonicalize_name(PROJECT[derived.name])
    for extra, req in own_requirements():
        if canonicalize_name(req.name) != project:
            continue
        where = f"envsolve's {extra} extra" if extra else "envsolve's own requirement"
        try:
            admits = req.specifier.contains(str(row.get("version")), prereleases=True)
        except InvalidVersion:
            continue
        out.append(f"{where} ({req.name}{req.specifier}) {'admits' if admits else 'does not admit'} it")
    return [f"{name}: " + "; ".join(out)] if out else []


def meanings(derived: Derived, added: Sequence[Row], removed: Sequence[Row], changed: Sequence[RowChange]) -> list[str]:
    """Sentences on what the drift changes for the rules that read this matrix."""
    out: list[str] = []
    for row in added:
        reason = row.get("yanked_reason") or "no reason given"
        what = "is new" + (f", and yanked ({reason})" if row.get("yanked") else "")
        line = f"{_label(derived, row)} {what}"
        if derived.name in FAMILY:
            detail = _family_sentence(derived, row)
            line += "; " + detail[0].split(": ", 1)[1] if detail else ""
        elif derived.name == "torch" and row.get("pypi_default"):
            line += (f" (PyPI's default build: CUDA {row.get('cuda', 'none')}, Python "
                     f"{', '.join(row.get('python') or ['?'])}); `envsolve plan` will consider it")
        out.append(line)
    for row in removed:
        out.append(f"{_label(derived, row)} is no longer on the index (deleted, or the index is another one): rules "
                   "still read its committed row until a refresh removes it")
    for change in changed:
        label = _label(derived, change.new)
        fields = change.fields
        if "yanked" in fields and change.new.get("yanked"):
            out.append(f"{label} was yanked ({change.new.get('yanked_reason') or 'no reason given'}): the planner "
                       "should stop choosing it")
        if derived.name in FAMILY and {"torch_abi", "torch_abi_checked"} & set(fields):
            old, new = change.old.get("torch_abi"), change.new.get("torch_abi")
            new_torch = sorted(set(change.new.get("torch_abi_checked") or []) - set(change.old.get("torch_abi_checked")
                                                                                   or []), key=_v)
            if old is None and change.old.get("torch_abi_checked") is None:
                out.append(f"{label}: torch_abi now read from its binaries: {new or '(no checked torch loads it)'}")
            elif old != new:
                out.append(f"{label}: torch_abi {old or '(unknown)'} -> {new or '(none)'}"
                           + (f" (new torch release checked: {', '.join(new_torch)})" if new_torch else "")
                           + ": the torch-family-mismatch rule changes with it")
            elif new_torch:
                out.append(f"{label}: its symbols are all in torch {', '.join(new_torch)} too (new torch release "
                           "checked); no rule changes")
        for field in ("torchaudio", "torchvision"):
            if derived.name == "torch" and field in fields:
                out.append(f"{label} now pairs with {field} {change.new.get(field) or '(none)'} "
                           f"(was {change.old.get(field) or 'none'}): `envsolve plan` pins that {field} with it")
        facts = [f for f in fields if f not in ("evidence", "source", "note", "artifact", "sha256", "yanked",
                                                "yanked_reason", "torch_abi", "torch_abi_checked", "torchaudio",
                                                "torchvision", "torch_abi_missing", "torch_symbols", "index_note",
                                                "index_source")]
        if facts:
            out.append(f"{label}: " + "; ".join(f"{f} {_short(change.old.get(f))} -> {_short(change.new.get(f))}"
                                                for f in facts) + " (rules reading these fields change)")
    return out


def _v(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def _short(value: Any, limit: int = 80) -> str:
    text = "(absent)" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
