"""A failed plan as data: what was rejected and why, which variable ran out, what was asked.

The planner produces a `Failure`; `explain` turns one into words and `plan` reads it to say why
pathway auto moved on. Neither calls back into the planner, in the way resolvelib's
`ResolutionImpossible` carries its `causes` rather than the resolver that found them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from envsolve.errors import EnvsolveError
from envsolve.resolver.model import Finding

__all__ = ["Exhausted", "Failure", "NoSolution", "Rejection", "describe_exhausted"]


@dataclass(frozen=True)
class Rejection:
    """One value of one variable that failed, with the unmet requirements that sank it."""

    variable: str
    version: str
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Exhausted:
    """The first variable with nothing left: no value passed the request, or every value tried failed."""

    variable: str
    tried: tuple[str, ...]  # versions tried and rejected, in search order
    constraint: str | None = None  # the user's constraint on it, if any
    empty: bool = False  # no version passed the request at all (nothing was tried)


@dataclass(frozen=True)
class Failure:
    """Everything a failed search found out, and the request and setting it was made under."""

    workload: str
    pathway: str
    gpu: bool
    python: str
    arch: str | None
    device: str  # what the user asked: auto, cuda or cpu
    rejections: tuple[Rejection, ...]
    exhausted: Exhausted | None
    constraints: Mapping[str, str] = field(default_factory=dict)
    kept_preinstalled: str | None = None  # "colab" when the platform's torch was kept
    alternatives: tuple[str, ...] = ()  # ways out that were tried and fit (a per-component split): offered first

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.rejections for f in r.findings]

    def summary(self) -> str:
        """One line: what ran out, or the most frequent cause."""
        if self.exhausted is not None:
            return describe_exhausted(self.exhausted)
        findings = self.findings
        if findings:
            first = findings[0]
            return f"[{first.code}] {first.subject}: {first.message}"
        return f"no {self.workload} stack passes"


def describe_exhausted(exhausted: Exhausted) -> str:
    name = exhausted.variable
    if exhausted.empty:
        return f"No {name} version passes the request" + (
            f" (constraint {name}{exhausted.constraint})." if exhausted.constraint else ".")
    tried = exhausted.tried
    shown = ", ".join(tried[:6]) + (" ..." if len(tried) > 6 else "")
    return f"Every {name} tried fails ({len(tried)} versions: {shown})."


class NoSolution(EnvsolveError):
    """No stack passes. `failure` is the data; the message and hint are its explanation."""

    exit_code = 1
    multiline = True

    def __init__(self, failure: Failure, message: str, hint: str) -> None:
        self.failure = failure
        super().__init__("no-consistent-stack", message, hint=hint, exit_code=1)
