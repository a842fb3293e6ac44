"""Explain a failed plan in layers, as pip's get_installation_error does.

1. host causes first (the driver, the GPU, glibc, Python: what no package choice can change);
2. the single variable that ran out of versions, with the versions that exist;
3. "the conflict is caused by", one line per distinct cause;
4. numbered ways out, each a command or an edit the user can make.
"""

from __future__ import annotations

from collections import OrderedDict
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
    exhausted = _exhausted(planner)
    if exhausted:
        lines.append(exhausted)
    if conflicts:
        lines.append("The conflict is caused by:")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in conflicts[:8]]
    ways = ways_out(planner, host_causes + conflicts)
    hint = " ".join(f"({i}) {w}" for i, w in enumerate(ways, 1))
    return "\n".join(lines), hint


def _distinct(findings: object) -> list[Finding]:
    seen: OrderedDict[tuple[str, str], Finding] = OrderedDict()
    for f in findings:  # type: ignore[attr-defined]
        seen.setdefault((f.code, f.message), f)
    return list(seen.values())


def _exhausted(planner: Planner) -> str:
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
            return (f"No {variable} version passes the request" + (f" (constraint {variable}{spec})" if spec else "")
                    + ".")
        if variable in tried and len(tried[variable]) >= len(domain):
            shown = ", ".join(tried[variable][:6]) + (" ..." if len(tried[variable]) > 6 else "")
            return f"Every {variable} tried fails ({len(tried[variable])} versions: {shown})."
    return ""


def ways_out(planner: Planner, causes: list[Finding]) -> list[str]:
    """Concrete things to type, most specific first."""
    ways: list[str] = []
    for finding in causes:
        if finding.fix and finding.fix not in ways:
            ways.append(finding.fix)
        for way in rules.ways_out(finding.code):
            if way not in ways:
                ways.append(way)
    for name, spec in planner.constraints.items():
        ways.append(f"Drop or widen the constraint {name}{spec}.")
    if planner.pathway == "B" and any(f.code.startswith("cudnn") for f in causes):
        ways.append("Try `--pathway A` on a host (or base image) whose system cuDNN has the major ctranslate2 needs.")
    if any(n.startswith("keeping") for n in planner.notes):
        ways.append("Pass --replace-preinstalled to let envsolve replace the platform's torch family.")
    if planner.target.gpu and planner.request.device != "cuda":
        ways.append("Plan a CPU-only stack with --device cpu.")
    return ways[:6]
