"""The check direction on a whole environment: host facts + what is installed -> findings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from envsolve.resolver.check import check
from envsolve.resolver.host import Host
from envsolve.resolver.model import Finding, Require
from envsolve.resolver.packages import compute_type_rule, installed_candidates
from envsolve.resolver.rulebook import Runtime, candidate, host_candidates, split_local

SCHEMA = "envsolve.doctor/1"


@dataclass
class Report:
    findings: list[Finding]
    unknown: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "healthy": self.healthy, "findings": [f.to_json() for f in self.findings],
                "unknown": self.unknown}


def _expects_gpu(host: Host, device: str) -> bool:
    """Is a GPU expected here? Asked for, or CUDA builds installed inside a GPU-less container."""
    if device == "cuda":
        return True
    if device == "cpu" or host.has_driver:
        return False
    cuda_builds = any(split_local(v)[1] not in (None, "cpu") for k, v in (host.packages or {}).items()
                      if k in ("torch", "torchaudio", "torchvision"))
    in_container = host.platform in ("docker", "modal", "runpod") or "NVIDIA_VISIBLE_DEVICES" in host.env
    return cuda_builds and in_container


def diagnose(host: Host, device: str = "auto", compute_type: str | None = None) -> Report:
    """Every unmet requirement of what is installed on this host."""
    gpu = device == "cuda" or (device == "auto" and host.has_driver)
    runtime = Runtime(gpu=gpu, compute_type=compute_type)
    stack = host_candidates(host) + installed_candidates(host, runtime)
    if _expects_gpu(host, device) and host.driver_known and not host.has_driver:
        stack.append(candidate("request", device, [], [Require(
            "cuda-driver", "gpu-not-visible",
            "a GPU is expected (CUDA builds are installed, or --device cuda) but no NVIDIA driver is reachable; "
            "in a container this means it was started without the GPU, not that the GPU is unsupported",
            "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/docker-specialized.html",
            absent="fail", fix="docker run --gpus all ... (or the platform's GPU switch); check with nvidia-smi "
            "inside the container.")]))
    if compute_type and gpu and not any(c.name == "ctranslate2" for c in stack):
        stack.append(candidate("request", compute_type, [], compute_type_rule(compute_type)))
    installed = set(host.packages or {})

    def settled(capability: str) -> bool:
        # A package missing from a hand-written snapshot is unknown; from the probe's, it is absent.
        if capability.startswith("pkg:"):
            return host.packages_complete or capability[4:] in installed
        return True

    result = check(stack, host, settled)
    # The probe's own words about the container (no /dev/nvidia*, /.dockerenv) are the evidence here.
    context = tuple(n for n in host.notes if "container" in n.lower() or "gpu" in n.lower())
    result.findings = [replace(f, evidence=f.evidence + context) if f.code == "gpu-not-visible" else f
                       for f in result.findings]
    order = {"error": 0, "warning": 1}
    findings = sorted(result.findings, key=lambda f: (order[f.severity], f.code, f.subject))
    return Report(_dedupe(findings), sorted(set(result.unknown)))


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.subject, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
