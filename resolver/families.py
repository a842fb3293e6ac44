"""The package families: one entry per package the engine knows (its builder in resolver/packages.py, its
matrix, what decides it), read by the planner's domains and blame, doctor's candidates and unknown-version
expansion, the probe report and the render contract. A family is its matrix file plus one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from envsolve.resolver import matrices
from envsolve.resolver.packages import (
    Builder,
    ctranslate2_candidate,
    faster_whisper_candidate,
    huggingface_hub_candidate,
    installed_torch,
    matrix_candidate,
    onnxruntime_gpu_candidate,
    pyannote_candidate,
    torchaudio_candidate,
    torchcodec_candidate,
    torchvision_candidate,
    whisperx_candidate,
)
from envsolve.resolver.rulebook import torch_rows

__all__ = ["FAMILIES", "Family", "family_of", "optional_members", "release_versions"]


@dataclass(frozen=True)
class Family:
    """A package family. Its entry in FAMILIES plus its matrix file is all the engine needs: the planner's
    domains and blame, doctor's candidates and unknown-version expansion, and the probe report read it here."""

    build: Builder
    matrix: str | None = None  # the matrix whose rows are its releases (`version` field)
    decided_by: str | None = None  # the planner variable whose choice fixes it (torchaudio: torch's row)
    needed_by: tuple[str, ...] = ()  # an optional member: planned when a chosen row of these names a spec for it
    plan_requires: tuple[str, ...] = ()  # row fields without which a release is never planned (a guess)
    capabilities: tuple[str, ...] = ()  # capability prefixes it decides besides pkg:NAME

    @property
    def field(self) -> str:
        """The field other rows name it by (pyannote_audio.toml's `torchcodec`, `speechbrain`)."""
        return next(name for name, family in FAMILIES.items() if family is self).replace("-", "_")


FAMILIES: dict[str, Family] = {
    "torch": Family(installed_torch, capabilities=("torch-variant",)),
    "torchaudio": Family(torchaudio_candidate, "torchaudio", decided_by="torch", capabilities=("api:torchaudio.",)),
    "torchvision": Family(torchvision_candidate, decided_by="torch"),
    "ctranslate2": Family(ctranslate2_candidate, "ctranslate2"),
    "faster-whisper": Family(faster_whisper_candidate, "faster_whisper", capabilities=("kw:faster_whisper.",)),
    "pyannote-audio": Family(pyannote_candidate, "pyannote_audio", capabilities=("kw:pyannote.audio.",)),
    "whisperx": Family(whisperx_candidate, "whisperx"),
    "torchcodec": Family(torchcodec_candidate, "torchcodec", needed_by=("pyannote-audio", "whisperx"),
                         plan_requires=("torch",)),
    "speechbrain": Family(matrix_candidate("speechbrain", "speechbrain", ("torch", "torchaudio")), "speechbrain",
                          needed_by=("pyannote-audio",)),
    "huggingface-hub": Family(huggingface_hub_candidate, capabilities=("hf:",)),  # pinned by the lock step
    "onnxruntime-gpu": Family(onnxruntime_gpu_candidate),
}


def family_of(capability: str) -> str | None:
    """The family a capability belongs to: pkg:NAME, or one of a family's capability prefixes."""
    name = capability.removeprefix("pkg:")
    if name in FAMILIES:
        return name
    return next((n for n, f in FAMILIES.items() if capability.startswith(f.capabilities) and f.capabilities), None)


def optional_members(core: tuple[str, ...]) -> list[str]:
    """The optional families a workload's core packages may pull in (torchcodec, speechbrain), in registry order."""
    return [name for name, f in FAMILIES.items() if f.needed_by and set(f.needed_by) & set(core)
            and name not in core]


def release_versions(dist: str) -> list[str]:
    """Every release the matrices know for a package (torch: every build, as version+variant)."""
    if dist == "torch":
        return [f"{r['torch']}+{r['variant']}" for r in torch_rows()]
    if dist == "torchvision":
        return sorted({str(r["torchvision"]) for r in torch_rows() if r.get("torchvision")})
    family = FAMILIES.get(dist)
    return [str(r["version"]) for r in matrices.load(family.matrix)] if family and family.matrix else []
