"""Explain a failed plan in layers, as pip's get_installation_error does.

1. host causes first (the driver, the GPU, glibc, Python: what no package choice can change);
2. the single variable that ran out of versions, with the versions that exist;
3. "the conflict is caused by", one line per distinct cause;
4. numbered ways out, each a command or an edit the user can make.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace

from envsolve.resolver import codes
from envsolve.resolver.failure import Failure, describe_exhausted
from envsolve.resolver.model import Finding

__all__ = ["explain_failure"]


def _host_caused(finding: Finding) -> bool:
    return any(c.startswith("host:") or c in ("request", "cuda-driver") for c in finding.culprits)


def explain_failure(failure: Failure) -> tuple[str, str]:
    """(explanation, numbered ways out) for a failed search.

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
    lines = [f"No {failure.workload} stack fits this host under pathway {failure.pathway} "
             f"({'GPU' if failure.gpu else 'CPU'}, Python {failure.python}"
             f"{', ' + failure.arch if failure.arch else ''})."]
    if exhausted is not None:
        lines.append(describe_exhausted(exhausted))
    if host_causes:
        lines.append("Host causes:")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in host_causes[:6]]
    if conflicts:
        lines.append("The conflict is caused by:")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in conflicts[:8]]
    if elsewhere:
        lines.append("Also met while searching (other packages' versions; not the blocker on their own):")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in elsewhere[:4]]
    ways = ways_out(failure, host_causes, conflicts + elsewhere)
    hint = " ".join(f"({i}) {w}" for i, w in enumerate(ways, 1))
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
    """Concrete things to type, the most relevant first: what blocks the variable that ran out."""
    ways: list[str] = []
    variable = failure.exhausted.variable if failure.exhausted else None

    def add(way: str) -> None:
        if way and way not in ways:
            ways.append(way)

    if failure.kept_preinstalled and variable == "torch":
        # Only the preinstalled build was allowed: the one option that changes the outcome goes first.
        add(f"Pass --replace-preinstalled to let envsolve replace {failure.kept_preinstalled}'s torch family.")
    blocking = [f for f in conflicts + host_causes if variable and f.subject.split(" ")[0] == variable]
    for finding in blocking:
        add(finding.fix)
        for way in codes.ways_out(finding.code):
            add(way)
    if failure.pathway == "B" and any(f.code.startswith(("cudnn", "cublas")) for f in conflicts + host_causes):
        add("Try `--pathway A` on a host (or base image) whose system cuDNN/cuBLAS has the major ctranslate2 needs.")
    for name, spec in failure.constraints.items():
        add(f"Drop or widen the constraint {name}{spec}.")
    if failure.kept_preinstalled:
        add(f"Pass --replace-preinstalled to let envsolve replace {failure.kept_preinstalled}'s torch family.")
    for finding in host_causes + conflicts:
        if finding.code != "python-unsupported":
            add(finding.fix)
    if failure.gpu and failure.device != "cuda":
        add("Plan a CPU-only stack with --device cpu.")
    return ways[:7]
