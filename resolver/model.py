"""Provides/requires: the vocabulary both directions of the engine speak.

A candidate is a package version *or a host fact* (the driver, a GPU, glibc, a library file).
Each provides capabilities and requires capabilities of others. `doctor` evaluates the
requirements of a fixed set of candidates; `plan` searches for a set in which they all hold.
Because host facts are candidates too, "driver too old" and "package clash" are explained by
the same code (pip's RequiresPythonCandidate and conda's `__cuda` are the models).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Candidate", "Finding", "LibraryNeed", "Provide", "Require"]


Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Provide:
    """A capability with a version: `pkg:torch 2.5.1`, `cuda-driver 12.4`, `lib:cudnn 9.1.0.70`."""

    capability: str
    version: str | None = None
    detail: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        where = self.detail.get("path") or self.detail.get("package") or ""
        text = f"{self.capability.split(':', 1)[-1]} {self.version or '(version unknown)'}"
        origin = self.detail.get("origin")
        if origin:
            text += f" [{origin}]"
        return f"{text} at {where}" if where else text


@dataclass(frozen=True)
class LibraryNeed:
    """A native library a consumer loads: which major, how new, and how the consumer searches."""

    name: str  # cudnn, cublas, avutil, ...
    major: int
    min_version: str | None = None
    # "torch": the wheel's own DT_RPATH into site-packages/nvidia comes before LD_LIBRARY_PATH, except
    # for cuDNN, whose shim dlopens its sub-libraries with RUNPATH=$ORIGIN (after LD_LIBRARY_PATH); see
    # check.LoaderView. "ld": LD_LIBRARY_PATH, then the ld.so cache and default dirs (ctranslate2 has no
    # path into pip's site-packages/nvidia).
    search: Literal["torch", "ld"] = "ld"
    consumer: str = ""
    cuda_major: int | None = None  # cuDNN is built per CUDA major (nvidia-cudnn-cu12 vs -cu13)
    # The consumer's own cuDNN front library (its version, e.g. "9.1.0"), grafted into its wheel under an
    # auditwheel-renamed SONAME (ctranslate2.libs/libcudnn-74a4c495.so.9.1.0). It dlopens the sub-libraries
    # itself, through the ordinary search, so a front torch loaded is a different object and is not shared.
    front: str | None = None


@dataclass(frozen=True)
class Require:
    """What a candidate needs. Unmet, it becomes a finding with `code`."""

    capability: str
    code: str
    why: str
    source: str
    spec: str | None = None  # PEP 440 specifier the provided version must satisfy
    allowed: tuple[str, ...] | None = None  # the provided value must be one of these
    library: LibraryNeed | None = None
    forbid: bool = False  # the capability must not be provided by anything else
    absent: Literal["fail", "skip"] = "skip"  # no provider at all: a finding, or unknown
    gate: str | None = None  # with absent="fail": only when this capability is provided (else unknown)
    every: bool = False  # every provider must satisfy (each GPU), not just one
    severity: Severity = "error"
    fix: str = ""


@dataclass(frozen=True)
class Candidate:
    """A package version or a host fact, with what it provides and requires."""

    name: str
    version: str
    provides: tuple[Provide, ...] = ()
    requires: tuple[Require, ...] = ()
    fixed: bool = False  # a host fact: the planner cannot change it
    source: str = ""

    @property
    def label(self) -> str:
        return self.name if self.name.startswith("host:") else f"{self.name} {self.version}"


@dataclass(frozen=True)
class Finding:
    """One unmet requirement: the code, who needs what, the evidence and the exact fix."""

    code: str
    severity: Severity
    subject: str
    message: str
    evidence: tuple[str, ...]
    fix: str
    source: str
    culprits: tuple[str, ...] = ()  # candidate names involved: the planner learns no-goods from them

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "evidence": list(self.evidence),
            "fix": self.fix,
            "source": self.source,
        }
