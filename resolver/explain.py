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


def _host_caused(finding: Finding) -> bool:
    return any(c.startswith("host:") or c in ("request", "cuda-driver") for c in finding.culprits)


def explain_failure(failure: Failure) -> tuple[str, str]:
    """(explanation, numbered ways out) for a failed search."""
    findings = failure.findings
    host_causes = _distinct(f for f in findings if _host_caused(f))
    conflicts = _distinct(f for f in findings if not _host_caused(f))
    lines = [f"No {failure.workload} stack fits this host under pathway {failure.pathway} "
             f"({'GPU' if failure.gpu else 'CPU'}, Python {failure.python}"
             f"{', ' + failure.arch if failure.arch else ''})."]
    if host_causes:
        lines.append("Host causes:")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in host_causes[:6]]
    if failure.exhausted is not None:
        lines.append(describe_exhausted(failure.exhausted))
    if conflicts:
        lines.append("The conflict is caused by:")
        lines += [f"  - [{f.code}] {f.subject}: {f.message}" for f in conflicts[:8]]
    ways = ways_out(failure, host_causes, conflicts)
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
        add("Pass --replace-preinstalled to let envsolve replace the platform's torch family.")
    for finding in host_causes + conflicts:
        if finding.code != "python-unsupported":
            add(finding.fix)
    if failure.gpu and failure.device != "cuda":
        add("Plan a CPU-only stack with --device cpu.")
    return ways[:7]
