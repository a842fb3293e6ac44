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
from typing import TYPE_CHECKING

from envsolve.resolver import rules
from envsolve.resolver.model import Finding

if TYPE_CHECKING:
    from envsolve.resolver.planner import Planner


def _host_caused(finding: Finding) -> bool:
    return any(c.startswith("host:") or c in ("request", "cuda-driver") for c in finding.culprits)


def explain_failure(planner: Planner) -> tuple[str, str]:
    """(explanation, numbered ways out) for a planner that found nothing."""
    request = planner.request
    findings = [f for r in planner.rejections for f in r.findings]
    host_causes = _distinct(f for f in findings if _host_caused(f))
    conflicts = _distinct(f for f in findings if not _host_caused(f))
    lines = [f"No {request.workload} stack fits this host under pathway {planner.pathway} "
             f"({'GPU' if planner.target.gpu else 'CPU'}, Python {planner.python}"
             f"{', ' + planner.host.os.arch if planner.host.os.arch else ''})."]
    if host_causes:
        lines.append("Host causes:")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in host_causes[:6]]
    exhausted, variable = _exhausted(planner)
    if exhausted:
        lines.append(exhausted)
    if conflicts:
        lines.append("The conflict is caused by:")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in conflicts[:8]]
    ways = ways_out(planner, host_causes, conflicts, variable)
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


def _exhausted(planner: Planner) -> tuple[str, str | None]:
    """Name the first variable with nothing left, and the versions that exist for it."""
    tried: dict[str, list[str]] = {}
    for rejection in planner.rejections:
        tried.setdefault(rejection.variable, [])
        if rejection.version not in tried[rejection.variable]:
            tried[rejection.variable].append(rejection.version)
    for variable in planner.variables:
        domain = planner.domain(variable, {})
        if not domain:
            spec = planner.constraints.get(variable)
            return (f"No {variable} version passes the request"
                    + (f" (constraint {variable}{spec})" if spec else "") + "."), variable
        if variable in tried and len(tried[variable]) >= len(domain):
            shown = ", ".join(tried[variable][:6]) + (" ..." if len(tried[variable]) > 6 else "")
            return f"Every {variable} tried fails ({len(tried[variable])} versions: {shown}).", variable
    return "", None


def ways_out(planner: Planner, host_causes: list[Finding], conflicts: list[Finding],
             variable: str | None) -> list[str]:
    """Concrete things to type, the most relevant first: what blocks the variable that ran out."""
    ways: list[str] = []

    def add(way: str) -> None:
        if way and way not in ways:
            ways.append(way)

    blocking = [f for f in conflicts + host_causes if variable and f.subject.split(" ")[0] == variable]
    for finding in blocking:
        add(finding.fix)
        for way in rules.ways_out(finding.code):
            add(way)
    if planner.pathway == "B" and any(f.code.startswith(("cudnn", "cublas")) for f in conflicts + host_causes):
        add("Try `--pathway A` on a host (or base image) whose system cuDNN/cuBLAS has the major ctranslate2 needs.")
    for name, spec in planner.constraints.items():
        add(f"Drop or widen the constraint {name}{spec}.")
    if any(n.startswith("keeping") for n in planner.notes):
        add("Pass --replace-preinstalled to let envsolve replace the platform's torch family.")
    for finding in host_causes + conflicts:
        if finding.code != "python-unsupported":
            add(finding.fix)
    if planner.target.gpu and planner.request.device != "cuda":
        add("Plan a CPU-only stack with --device cpu.")
    return ways[:7]
