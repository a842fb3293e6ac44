"""What the user asks `plan` for: a workload, a pathway, a device and optional constraints."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from envsolve.errors import EnvsolveError
from envsolve.resolver.host import normalize

if TYPE_CHECKING:
    from packaging.requirements import Requirement

__all__ = ["WORKLOADS", "Request", "check_compute_type", "check_device", "compute_types"]


# The packages each workload installs, in the order the planner decides them (the most
# constraining first, so conflicts surface early). Optional members (torchcodec, ...) follow
# from families.FAMILIES: planned when a chosen row asks for them.
WORKLOADS: dict[str, tuple[str, ...]] = {
    "pipeline": ("torch", "ctranslate2", "faster-whisper", "pyannote-audio"),
    "whisperx": ("whisperx", "torch", "ctranslate2", "faster-whisper", "pyannote-audio"),
    "faster-whisper": ("ctranslate2", "faster-whisper"),
    "diarization": ("torch", "pyannote-audio"),  # speakers only (`envsolve run --no-asr`): no Whisper stack
}
PATHWAYS = ("auto", "A", "B")
DEVICES = ("auto", "cuda", "cpu")
_PYTHON = re.compile(r"3\.\d{1,2}")
MAX_CONSTRAINT = 200  # characters; a requirement longer than this is not one a person wrote
_LONG_NUMBER = re.compile(r"\d{10,}")  # int() of a 5,000-digit version component is an attack, not a release


def compute_types() -> list[str]:
    """The CTranslate2 compute types the matrices know (matrices/compute_types.toml)."""
    from envsolve.resolver import matrices

    return [str(row["compute_type"]) for row in matrices.load("compute_types")]


def check_device(device: str) -> None:
    """auto, cuda or cpu; anything else is EnvsolveError `unknown-device`."""
    if device not in DEVICES:
        raise EnvsolveError("unknown-device", f"Device must be auto, cuda or cpu, not {device!r}.",
                            hint="Use --device cuda to insist on a GPU, cpu for a CPU-only stack.")


def check_compute_type(compute_type: str | None) -> None:
    """A compute type CTranslate2 has (or None); anything else is EnvsolveError `unknown-compute-type`."""
    if compute_type is not None and compute_type not in compute_types():
        raise EnvsolveError("unknown-compute-type", f"CTranslate2 has no compute type {compute_type!r}.",
                            hint=f"Use one of: {', '.join(compute_types())}.")


@dataclass(frozen=True)
class Request:
    workload: str = "pipeline"
    pathway: str = "auto"
    device: str = "auto"
    python: str | None = None
    compute_type: str | None = None
    constraints: tuple[str, ...] = ()
    replace_preinstalled: bool = False
    target: str = "host"  # host: install on the machine; image: a Docker image on it
    asr_device: str = "auto"  # cpu: transcription (ctranslate2) on the CPU, diarization on the GPU

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS:
            raise EnvsolveError("unknown-workload", f"There is no workload called {self.workload!r}.",
                                hint=f"Use one of: {', '.join(WORKLOADS)}.")
        if self.pathway not in PATHWAYS:
            raise EnvsolveError("unknown-pathway", f"Pathway must be auto, A or B, not {self.pathway!r}.",
                                hint="A uses the host's system cuDNN/CUDA libraries; B brings them as pip "
                                "wheels; auto picks what works.")
        check_device(self.device)
        if self.asr_device not in ("auto", "cpu"):
            raise EnvsolveError("unknown-device", f"--asr-device must be auto or cpu, not {self.asr_device!r}.",
                                hint="cpu transcribes on the CPU while torch (diarization) uses the GPU; auto "
                                "follows --device.")
        check_compute_type(self.compute_type)
        if self.python is not None and not _PYTHON.fullmatch(self.python):
            raise EnvsolveError("bad-python", f"--python takes a CPython release as X.Y, such as 3.11, not "
                                f"{self.python!r}.", hint="Give the target's Python as X.Y, or leave --python out to "
                                "plan for the host's.")
        self.parsed_constraints()

    def plannable(self) -> tuple[str, ...]:
        """The packages a constraint may name: those the planner decides for this workload."""
        from envsolve.resolver.families import optional_members

        return (*self.packages, *optional_members(self.packages))

    def parsed_constraints(self) -> dict[str, str]:
        """'ctranslate2<4.5' -> {'ctranslate2': '<4.5'}; several for one package are joined."""
        out: dict[str, str] = {}
        for text in self.constraints:
            requirement = self._requirement(text)
            name = normalize(requirement.name)
            spec = str(requirement.specifier)
            out[name] = f"{out[name]},{spec}" if name in out and spec else spec or out.get(name, "")
        return out

    def _requirement(self, text: str) -> Requirement:
        """One constraint, refused loudly unless the planner will honour all of it."""
        def bad(why: str, hint: str = 'Write it like pip does, e.g. --constraint "ctranslate2<4.5" or '
                '"torch==2.5.1".') -> EnvsolveError:
            return EnvsolveError("bad-constraint", f"{text[:60]!a}{'...' if len(text) > 60 else ''} {why}.", hint=hint)

        if len(text) > MAX_CONSTRAINT:
            raise bad(f"is longer than {MAX_CONSTRAINT} characters")
        if _LONG_NUMBER.search(text):
            raise bad("has a number of 10 or more digits, which no release of these packages has")
        # Imported only for a constraint: packaging.requirements brings markers, tags and logging, a fifth of
        # a plan's start-up, and a plan without -c parses no requirement.
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            raise bad("is not a package requirement") from None
        name = normalize(requirement.name)
        if requirement.url:
            raise bad("is a URL requirement; the planner chooses among the releases the matrices know",
                      f'Constrain by version instead, e.g. --constraint "{name}==X.Y.Z".')
        if requirement.marker is not None or requirement.extras:
            raise bad("has an environment marker or extras, which a plan for one host cannot honour",
                      f'Give the package and its versions only, e.g. --constraint "{name}<X".')
        try:
            SpecifierSet(str(requirement.specifier))
        except InvalidSpecifier:  # pragma: no cover - Requirement already parsed it
            raise bad("has an invalid version specifier") from None
        plannable = self.plannable()
        if name not in plannable:
            from envsolve.resolver.families import FAMILIES

            if name in FAMILIES:
                # A package family envsolve knows: the planner honours it (torchaudio picks the torch rows that
                # pair it) or refuses it as constraint-not-planned, naming what this workload plans.
                return requirement
            raise bad(f"names {name}, which no envsolve plan chooses",
                      f"Constrain one of: {', '.join(plannable)}.")
        return requirement

    @property
    def packages(self) -> tuple[str, ...]:
        return WORKLOADS[self.workload]
