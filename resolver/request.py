"""What the user asks `plan` for: a workload, a pathway, a device and optional constraints."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement

from envsolve.errors import EnvsolveError
from envsolve.resolver.host import normalize

# The packages each workload installs, in the order the planner decides them (the most
# constraining first, so conflicts surface early). Optional members (torchcodec, ...) follow
# from packages.FAMILIES: planned when a chosen row asks for them.
WORKLOADS: dict[str, tuple[str, ...]] = {
    "pipeline": ("torch", "ctranslate2", "faster-whisper", "pyannote-audio"),
    "whisperx": ("whisperx", "torch", "ctranslate2", "faster-whisper", "pyannote-audio"),
    "faster-whisper": ("ctranslate2", "faster-whisper"),
}
PATHWAYS = ("auto", "A", "B")
DEVICES = ("auto", "cuda", "cpu")


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

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS:
            raise EnvsolveError("unknown-workload", f"There is no workload called {self.workload!r}.",
                                hint=f"Use one of: {', '.join(WORKLOADS)}.")
        if self.pathway not in PATHWAYS:
            raise EnvsolveError("unknown-pathway", f"Pathway must be auto, A or B, not {self.pathway!r}.",
                                hint="A uses the host's system cuDNN/CUDA libraries; B brings them as pip "
                                "wheels; auto picks what works.")
        if self.device not in DEVICES:
            raise EnvsolveError("unknown-device", f"Device must be auto, cuda or cpu, not {self.device!r}.",
                                hint="Use --device cuda to insist on a GPU, cpu for a CPU-only stack.")
        self.parsed_constraints()

    def parsed_constraints(self) -> dict[str, str]:
        """'ctranslate2<4.5' -> {'ctranslate2': '<4.5'}; several for one package are joined."""
        out: dict[str, str] = {}
        for text in self.constraints:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                raise EnvsolveError(
                    "bad-constraint", f"{text!r} is not a package requirement.",
                    hint='Write it like pip does, e.g. --constraint "ctranslate2<4.5" or "torch==2.5.1".',
                ) from None
            name = normalize(requirement.name)
            spec = str(requirement.specifier)
            out[name] = f"{out[name]},{spec}" if name in out and spec else spec or out.get(name, "")
        return out

    @property
    def packages(self) -> tuple[str, ...]:
        return WORKLOADS[self.workload]
