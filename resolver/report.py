"""Text renderings of plans, findings and matrices for the terminal (JSON lives on the objects)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from envsolve.resolver.host import Host
from envsolve.resolver.matrices import Matrix
from envsolve.resolver.model import Finding
from envsolve.resolver.plan import Plan


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None, indent: str = "  ") -> list[str]:
    """Left-aligned columns; the last column is not padded."""
    all_rows = [list(header)] if header else []
    all_rows += [list(r) for r in rows]
    if not all_rows:
        return []
    widths = [max(len(r[i]) for r in all_rows if i < len(r)) for i in range(len(all_rows[0]))]
    out = []
    for n, row in enumerate(all_rows):
        cells = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        out.append(indent + "  ".join(cells).rstrip())
        if header and n == 0:
            out.append(indent + "  ".join("-" * w for w in widths))
    return out


def driver_text(host: Host) -> str:
    """'driver 550.54.15 (CUDA 12.4)', 'no NVIDIA driver reachable' or 'driver unknown'."""
    if host.driver:
        return f"driver {host.driver.version} (CUDA {host.driver.cuda or 'unknown'})"
    return "no NVIDIA driver reachable" if host.driver_known else "driver unknown"


def describe_host(host: Host) -> str:
    parts = [host.os.arch or "arch ?", f"Python {host.python or '?'}"]
    if host.platform:
        parts.append(host.platform)
    if host.os.glibc:
        parts.append(f"glibc {host.os.glibc}")
    parts.append(driver_text(host))
    for gpu in host.gpus or ():
        parts.append(f"{gpu.name} (cc {gpu.compute_capability or '?'})")
    return ", ".join(parts)


def render_plan(plan: Plan) -> str:
    lines = [f"envsolve plan: {plan.request.workload} for {describe_host(plan.host)}",
             f"Pathway {plan.pathway}, {'GPU (CUDA)' if plan.gpu else 'CPU'}, Python {plan.python}, "
             f"compute type {plan.compute_type}", "", "Packages:"]
    lines += table([(p.requirement, p.index) for p in plan.pins])
    if plan.libraries:
        lines += ["", "Native libraries (where each consumer's loader finds them):"]
        lines += table([(lib["consumer"], lib["library"],
                         f"{lib['from']} {lib['package'] or lib['path']} {lib['version']}".strip(),
                         f"via {lib['found_via']}") for lib in plan.libraries])
    lines += ["", f"Base image: {plan.base_image or '(none fits)'}"]
    if plan.env:
        lines += ["Environment:"] + [f"  {k}={v}" for k, v in plan.env.items()]
    lines += ["", "Decisions:"]
    for d in plan.decisions:
        lines.append(f"  {d.subject} {d.chosen}  [{d.rule}] {d.why}")
        for r in d.rejected[:3]:
            lines.append(f"    not {r['version']}: [{r['code']}] {r['why']}")
        if d.source:
            lines.append(f"    source: {shorten(d.source)}")
    if plan.warnings:
        lines += ["", "Warnings:"] + [f"  [{w.code}] {w.subject}: {w.message}" for w in plan.warnings]
    if plan.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in plan.notes]
    return "\n".join(lines)


def shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_findings(host: Host, findings: Iterable[Finding], unknown: Sequence[str]) -> str:
    findings = list(findings)
    lines = [f"envsolve doctor: {describe_host(host)}"]
    if not findings:
        lines.append("Healthy: every rule holds for what is installed.")
    for f in findings:
        lines += ["", f"{f.severity.upper()} [{f.code}] {f.subject}: {f.message}"]
        lines += [f"  evidence: {e}" for e in f.evidence]
        if f.fix:
            lines.append(f"  fix: {f.fix}")
        lines.append(f"  explain: envsolve explain {f.code}")
    if unknown:
        lines += ["", f"Not checked ({len(unknown)}): the snapshot does not say enough."]
        lines += [f"  - {u}" for u in unknown[:10]]
    return "\n".join(lines)


def render_matrix(matrix: Matrix, columns: Sequence[str] | None = None) -> str:
    fields: list[str] = list(columns or [])
    if not fields:
        for row in matrix.rows:
            for key in row:
                if key not in fields and key not in ("source", "checked", "note"):
                    fields.append(key)
        fields = fields[:9]
    rows = [[_cell(row.get(f)) for f in fields] for row in matrix.rows]
    lines = [f"{matrix.title} ({len(matrix)} rows; matrices/{matrix.name}.toml)", ""]
    lines += table(rows, fields)
    lines += ["", "Every row names its source and how it was checked: envsolve matrices "
              f"{matrix.name} --json shows them."]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
