"""Explain a failed plan in layers, as pip's get_installation_error does.

1. host causes first (the driver, the GPU, glibc, Python: what no package choice can change);
2. the single variable that ran out of versions, with the versions that exist;
3. "the conflict is caused by", one line per distinct cause;
4. numbered ways out, each a command or an edit the user can make.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from envsolve.resolver import codes
from envsolve.resolver.failure import Failure, describe_exhausted
from envsolve.resolver.model import Finding

__all__ = ["explain_failure", "layers"]


def _host_caused(finding: Finding) -> bool:
    return any(c.startswith("host:") or c in ("request", "cuda-driver") for c in finding.culprits)


REFUSAL_SCHEMA = "envsolve.plan-refusal/1"


@dataclass(frozen=True)
class Layers:
    """A failed search in the order people and programs read it (docs/plan-json.md, "When no stack fits")."""

    failure: Failure
    host_causes: list[Finding]
    conflicts: list[Finding]
    elsewhere: list[Finding]
    ways: list[str]

    def to_json(self) -> dict[str, Any]:
        f, exhausted = self.failure, self.failure.exhausted
        return {
            "schema": REFUSAL_SCHEMA, "error": "no-consistent-stack",
            "request": {"workload": f.workload, "pathway": f.pathway, "device": f.device,
                        "gpu": f.gpu, "python": f.python, "arch": f.arch or "",
                        "constraints": dict(f.constraints), "kept_preinstalled": f.kept_preinstalled or ""},
            "exhausted": None if exhausted is None else {
                "variable": exhausted.variable, "tried": list(exhausted.tried),
                "constraint": exhausted.constraint or "", "empty": exhausted.empty,
                "summary": describe_exhausted(exhausted)},
            "host_causes": [c.to_json() for c in self.host_causes],
            "conflicts": [c.to_json() for c in self.conflicts],
            "elsewhere": [c.to_json() for c in self.elsewhere],
            "alternatives": list(f.alternatives),
            "ways_out": [{"number": i, "text": way} for i, way in enumerate(self.ways, 1)],
        }


def layers(failure: Failure) -> Layers:
    """The causes of a failed search in layers, and the ways out.

    The causes that would change the outcome lead: those that rejected the variable that ran out (its
    host causes, then its conflicts). What else the search met, on other packages' versions, comes last
    and short, since changing it alone would not give a stack.
    """
    exhausted = failure.exhausted
    primary = [f for r in failure.rejections if exhausted is None or r.variable == exhausted.variable
               for f in r.findings]
    secondary = [f for r in failure.rejections if exhausted is not None and r.variable != exhausted.variable
                 for f in r.findings]
    host_causes = _distinct(f for f in primary if _host_caused(f))
    conflicts = _distinct(f for f in primary if not _host_caused(f))
    seen = {(f.code, f.subject.split(" ")[0]) for f in host_causes + conflicts}
    elsewhere = [f for f in _distinct(secondary) if (f.code, f.subject.split(" ")[0]) not in seen]
    return Layers(failure, host_causes[:6], conflicts[:8], elsewhere[:4],
                  ways_out(failure, host_causes, conflicts + elsewhere))


def explain_failure(failure: Failure) -> tuple[str, str]:
    """(explanation, numbered ways out) for a failed search: `layers` in words."""
    layered = layers(failure)
    exhausted = failure.exhausted
    host_causes, conflicts, elsewhere = layered.host_causes, layered.conflicts, layered.elsewhere
    lines = [f"No {failure.workload} stack fits this host under pathway {failure.pathway} "
             f"({'GPU' if failure.gpu else 'CPU'}, Python {failure.python}"
             f"{', ' + failure.arch if failure.arch else ''})."]
    if exhausted is not None:
        lines.append(describe_exhausted(exhausted))
    if host_causes:
        lines.append("Host causes:")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in host_causes]
    if conflicts:
        lines.append("The conflict is caused by:")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in conflicts]
    if elsewhere:
        lines.append("Also met while searching (other packages' versions; not the blocker on their own):")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in elsewhere]
    hint = " ".join(f"({i}) {w}" for i, w in enumerate(layered.ways, 1))
    return "\n".join(lines), hint


def _distinct(findings: Iterable[Finding]) -> list[Finding]:
    """One line per (code, package): 'ctranslate2 4.8.5 ... (and 39 other versions)'."""
    groups: OrderedDict[tuple[str, str], list[Finding]] = OrderedDict()
    for f in findings:
        groups.setdefault((f.code, f.subject.split(" ")[0]), []).append(f)
    out = []
    for same in groups.values():
        first = same[0]
        versions = {f.subject for f in same}
        if len(versions) > 1:
            first = replace(first, message=f"{first.message} (and {len(versions) - 1} other versions)")
        out.append(first)
    # The cause behind the most rejections first: that is what the user most needs to change.
    return sorted(out, key=lambda f: -len(groups[(f.code, f.subject.split(" ")[0])]))


def ways_out(failure: Failure, host_causes: list[Finding], conflicts: list[Finding]) -> list[str]:
    """Concrete things to type, one per distinct way out, the one that changes the outcome first: what blocks
    the variable that ran out. A finding code gets one line: the finding's own fix (it names the versions),
    else the code's generic way out; the same advice in other words ("Upgrade the NVIDIA driver ..." and
    "Plan for the CUDA the driver supports, or upgrade the driver") is not repeated."""
    ways: list[str] = []
    variable = failure.exhausted.variable if failure.exhausted else None
    answered: set[str] = set()

    def add(way: str) -> None:
        if way and way not in ways:
            ways.append(way)

    def answer(finding: Finding) -> None:
        if finding.code not in answered:
            answered.add(finding.code)
            add(finding.fix or next(iter(codes.ways_out(finding.code)), ""))

    for way in failure.alternatives:  # tried and known to work: they change the outcome for certain
        add(way)
    if failure.kept_preinstalled and variable == "torch":
        # Only the preinstalled build was allowed: the one option that changes the outcome goes first.
        add(f"Pass --replace-preinstalled to let envsolve replace {failure.kept_preinstalled}'s torch family.")
    blocking = [f for f in conflicts + host_causes if variable and f.subject.split(" ")[0] == variable]
    for finding in blocking:
        answer(finding)
    if failure.pathway == "B" and any(f.code.startswith(("cudnn", "cublas")) for f in conflicts + host_causes):
        add("Try `--pathway A` on a host (or base image) whose system cuDNN/cuBLAS has the major ctranslate2 needs.")
    for name, spec in failure.constraints.items():
        add(f"Drop or widen the constraint {name}{spec}.")
    if failure.kept_preinstalled:
        add(f"Pass --replace-preinstalled to let envsolve replace {failure.kept_preinstalled}'s torch family.")
    for finding in host_causes + conflicts:
        answer(finding)
    if failure.gpu and failure.device != "cuda":
        add("Plan a CPU-only stack with --device cpu.")
    return ways[:7]
