"""The check direction on a whole environment: host facts + what is installed -> findings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from envsolve.errors import EnvsolveError
from envsolve.resolver import matrices
from envsolve.resolver.check import check
from envsolve.resolver.families import FAMILIES, release_versions
from envsolve.resolver.host import Host, normalize
from envsolve.resolver.model import Candidate, Finding, Provide, Require
from envsolve.resolver.packages import compute_type_rule, nvidia_library_candidate
from envsolve.resolver.request import check_compute_type, check_device
from envsolve.resolver.rulebook import Context, Runtime, candidate, host_candidates, split_local, torch_row

__all__ = ["DoctorReport", "diagnose"]


SCHEMA = "envsolve.doctor/1"


@dataclass
class DoctorReport:
    findings: list[Finding]
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was assumed (the process modelled, the device)

    @property
    def healthy(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def complete(self) -> bool:
        """Every rule could be decided (nothing was left unchecked for want of facts)."""
        return not self.unknown

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "healthy": self.healthy, "complete": self.complete,
                "findings": [f.to_json() for f in self.findings], "unknown": self.unknown, "notes": self.notes}


def _expects_gpu(host: Host, device: str) -> bool:
    """Is a GPU expected here? Asked for, or a GPU-less container that lists GPUs or holds a GPU stack.

    A container that was meant to use a GPU says so by what it holds (CUDA builds, nvidia-* wheels, CUDA
    libraries: `gpu_stack_evidence`, which needs no package version) or by what it was given
    (NVIDIA_VISIBLE_DEVICES, GPUs in the snapshot), whatever the package versions are."""
    if device == "cuda":
        return True
    if device == "cpu" or host.has_driver:
        return False
    visible = host.env.get("NVIDIA_VISIBLE_DEVICES", "").strip().lower()
    asked = bool(host.gpus) or visible not in ("", "void", "none")
    in_container = host.platform in ("docker", "modal", "runpod") or "NVIDIA_VISIBLE_DEVICES" in host.env
    return in_container and (asked or bool(gpu_stack_evidence(host)))


def gpu_stack_evidence(host: Host) -> list[str]:
    """Why the installed stack is a GPU stack: CUDA builds, nvidia-* wheels, CUDA library files."""
    packages = host.packages or {}
    found = []
    torch = packages.get("torch")
    if torch is not None:
        row = torch_row(torch, None)
        variant = split_local(torch)[1] or (str(row["variant"]) if row else None)
        if variant and variant != "cpu":
            found.append(f"torch {torch} is a CUDA build ({variant})")
    if "ctranslate2" in packages and host.os.arch in (None, "x86_64"):
        found.append(f"ctranslate2 {packages['ctranslate2'] or '(version unknown)'} from PyPI is a CUDA build on "
                     "x86_64")
    found += [f"{name} {version or '(version unknown)'} is installed" for name, version in sorted(packages.items())
              if name.startswith("nvidia-") and name.removeprefix("nvidia-").startswith(("cudnn", "cublas"))]
    found += [f"{lib.soname or lib.name} at {lib.path}" for lib in host.libraries or ()
              if lib.name in ("cudnn", "cublas")][:3]
    return found


def _device(host: Host, device: str, notes: list[str]) -> bool:
    """Check the GPU path? Asked for, a driver present, or (driver unknown) a GPU stack installed."""
    if device != "auto":
        return device == "cuda"
    if host.has_driver:
        return True
    if host.driver_known:
        return False
    evidence = gpu_stack_evidence(host)
    if evidence:
        # Unknown device must not read as healthy: a GPU stack is checked as one, and says so.
        notes.append("the snapshot does not say whether there is an NVIDIA driver; the installed stack is a GPU "
                     f"stack ({'; '.join(evidence[:3])}), so its GPU rules were checked as if it runs on a GPU "
                     "(rules that need the driver or the GPU are listed as not checked)")
        return True
    return False


def infer_workload(host: Host) -> str:
    """The workload whose process is modelled when none is named: WhisperX if installed, else envsolve's
    pipeline when pyannote.audio is there with a Whisper stack, diarization alone when it is there without one,
    else faster-whisper alone."""
    packages = host.packages or {}
    if "whisperx" in packages:
        return "whisperx"
    if "pyannote-audio" in packages:
        return "pipeline" if "ctranslate2" in packages or "faster-whisper" in packages else "diarization"
    return "faster-whisper"


def diagnose(host: Host, device: str = "auto", compute_type: str | None = None,
             workload: str = "auto") -> DoctorReport:
    """Every unmet requirement of what is installed on this host, for one workload's process."""
    check_device(device)
    check_compute_type(compute_type)
    notes: list[str] = []
    named = workload != "auto"
    workload = workload if named else infer_workload(host)
    profile = matrices.load("workloads").one(workload=workload)
    if profile is None:
        raise EnvsolveError("unknown-workload", f"There is no workload called {workload!r}.",
                            hint="Use one of: auto, " + ", ".join(str(r["workload"]) for r in
                                                               matrices.load("workloads")) + ".")
    torch_first = bool(profile.get("torch_first"))
    gpu = _device(host, device, notes)
    if gpu:  # the import order matters only for which CUDA library copies the process loads
        how = ("torch is imported first, so ctranslate2 gets the cuBLAS torch already loaded (not its cuDNN: "
               "ctranslate2's own cuDNN front loads its sub-libraries itself)" if torch_first
               else "ctranslate2 loads its own CUDA libraries")
        inferred = "" if named else " (inferred from what is installed; --workload names another)"
        notes.append(f"process modelled: {workload}{inferred}: {how}")
    if compute_type is None and gpu and profile.get("gpu_compute_type"):
        compute_type = str(profile["gpu_compute_type"])
        notes.append(f"compute type {compute_type}: {workload}'s command-line default on a GPU "
                     "(pass --compute-type for the one you use)")
    runtime = Runtime(gpu=gpu, compute_type=compute_type)
    installed, releases = installed_candidates(host, runtime)
    stack = host_candidates(host) + installed
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
    names = set(host.packages or {})

    def settled(capability: str) -> bool:
        # A package missing from a hand-written snapshot is unknown; from the probe's, it is absent.
        if capability.startswith("pkg:"):
            return host.packages_complete or capability[4:] in names
        return True

    result = check(stack, host, settled, torch_first=torch_first)
    for dist, variants in releases.items():
        findings, unknown = _for_every_release(dist, variants, stack, host, settled, torch_first)
        result.findings += findings
        result.unknown += unknown
    # The probe's own words about the container (no /dev/nvidia*, /.dockerenv) are the evidence here.
    context = tuple(n for n in host.notes if "container" in n.lower() or "gpu" in n.lower())
    result.findings = [replace(f, evidence=f.evidence + context) if f.code == "gpu-not-visible" else f
                       for f in result.findings]
    # A release no matrix knows is not silently fine: its rules were not checked, and the report says so.
    unknown = list(result.unknown) + [f"{c.name} {c.version}: {c.source.removeprefix('not in ')} does not know "
                                      "this release, so none of its rules were checked"
                                      for c in installed if c.source.startswith("not in matrices/")]
    result.findings += yanked_findings(host)
    order = {"error": 0, "warning": 1}
    findings = sorted(result.findings, key=lambda f: (order[f.severity], f.code, f.subject))
    return DoctorReport(_dedupe(findings), sorted(set(unknown)), notes)


def yanked_findings(host: Host) -> list[Finding]:
    """Installed releases their maintainers yanked (PEP 592): a warning with the reason the registry gives."""
    out = []
    for dist, version in sorted((host.packages or {}).items()):
        family = FAMILIES.get(dist)
        if version is None or family is None or family.matrix is None:
            continue
        row = matrices.load(family.matrix).one(version=split_local(version)[0])
        if row and row.get("yanked"):
            reason = str(row.get("yanked_reason") or "no reason given")
            out.append(Finding("release-yanked", "warning", f"{dist} {version}",
                               f"{dist} {version} was yanked from PyPI: {reason}",
                               (f"matrices/{family.matrix}.toml: yanked = true ({reason})",),
                               f"Install another release: `envsolve plan` never picks a yanked one unless it is "
                               f"pinned exactly (-c \"{dist}=={version}\").", str(row.get("source", "")),
                               (dist,)))
    return out


def _for_every_release(dist: str, variants: list[Candidate], stack: list[Candidate], host: Host,
                       settled: Callable[[str], bool], torch_first: bool) -> tuple[list[Finding], list[str]]:
    """A package installed with an unknown version: what holds whichever release it is.

    The stack is checked once per release the matrices know, with that release in place of the
    placeholder; a finding about the package that every release gets is reported (its evidence says so),
    and one that only some releases get is listed as not checked.
    """
    placeholder = next(c for c in stack if c.name == dist and c.source == "installed, version unknown")
    per_release: list[dict[str, Finding]] = []
    for variant in variants:
        trial = [variant if c is placeholder else c for c in stack]
        found = check(trial, host, settled, torch_first=torch_first).findings
        per_release.append({f.code: f for f in found if dist in f.culprits})
    common = set.intersection(*(set(r) for r in per_release)) if per_release else set()
    some = set().union(*(set(r) for r in per_release)) - common
    matrix = f"matrices/{FAMILIES[dist].matrix or 'torch'}.toml"
    every = (f"holds for every release of {dist} the matrices know ({len(variants)} in {matrix}), so the "
             "unknown version does not matter" if len(variants) > 1 else "this rule needs no version")
    shown = f"{dist} {split_local(variants[0].version)[0]}" if variants else dist
    findings = [replace(f, subject=f"{dist} (version unknown)" if f.subject.startswith(dist) else f.subject,
                        message=f.message.replace(shown, f"{dist} (every release)"), evidence=(*f.evidence, every))
                for f in (per_release[0][code] for code in sorted(common))]
    unknown = [f"{dist} (version unknown): [{code}] holds for some of its releases only; give the version to "
               "check it" for code in sorted(some)]
    return findings, unknown


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.subject, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def installed_candidates(host: Host, runtime: Runtime) -> tuple[list[Candidate], dict[str, list[Candidate]]]:
    """Candidates for every package the host has installed (the doctor direction).

    A package installed with an unknown version is a placeholder (it provides itself, version None),
    and the second value holds, per such package, one candidate for each release the matrices know:
    doctor reports what holds for every one of them (an aarch64 ctranslate2 is CPU-only whatever the version).
    """
    packages = host.packages or {}
    pip_lib_files = {lib.path for lib in host.libraries or () if lib.origin == "pip"}
    # torch's nvidia-* wheels are packages of their own; when the snapshot names none of them (a
    # hand-written one), torch from pip is taken to have brought the ones it pins.
    torch_brings_libs = not pip_lib_files and not any(d.startswith("nvidia-") for d in packages)
    context = Context(host, runtime, torch_brings_libs)
    out: list[Candidate] = []
    releases: dict[str, list[Candidate]] = {}
    for dist, version in sorted(packages.items()):
        dist = normalize(dist)
        if version is None and dist.startswith("nvidia-") and not pip_lib_files:
            lib = nvidia_library_candidate(dist, None)
            if lib is not None:
                out.append(lib)
                continue
        if version is None:
            out.append(candidate(dist, "(version unknown)", [Provide(f"pkg:{dist}", None)], [],
                                 "installed, version unknown"))
            if dist in FAMILIES:
                build = FAMILIES[dist].build
                releases[dist] = [build(v, context) for v in release_versions(dist)] or \
                    [build("0", context)]  # no matrix: its rules need no version (onnxruntime-gpu)
            continue
        if dist in FAMILIES:
            out.append(FAMILIES[dist].build(version, context))
        elif dist.startswith("nvidia-") and not pip_lib_files:
            lib = nvidia_library_candidate(dist, version)
            if lib is not None:
                out.append(lib)
        else:
            out.append(candidate(dist, version, [Provide(f"pkg:{dist}", split_local(version)[0])], []))
    return out, releases
