"""Turn a Solution into the plan users read: exact pins, indexes, libraries, image, env, decisions.

The JSON form is versioned (`envsolve.plan/1`, docs/plan-json.md). `make_plan` also implements
pathway `auto`: B (self-contained pip wheels) when it works, else A (the host's cuDNN), and says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from envsolve.errors import EnvsolveError
from envsolve.resolver import matrices
from envsolve.resolver.check import satisfies
from envsolve.resolver.failure import NoSolution
from envsolve.resolver.host import Host
from envsolve.resolver.images import flavors_for, image_why, suggest_image
from envsolve.resolver.loadorder import TORCH_LOADED, LoaderView
from envsolve.resolver.model import Finding
from envsolve.resolver.packages import NUMPY_ABI
from envsolve.resolver.python_source import python_source
from envsolve.resolver.refusal import explain_failure
from envsolve.resolver.request import Request
from envsolve.resolver.rulebook import SITE, ct2_on_gpu, gpu_cc, row_source
from envsolve.resolver.search import Planner, Solution, with_library_path

__all__ = ["PYPI", "SCHEMA", "Plan", "make_plan", "needed_with"]


SCHEMA = "envsolve.plan/1"
PYPI = "https://pypi.org/simple"
# Pipeline environment defaults: pyannote's telemetry is on by default; the hub's too.
CT2_SOURCE_BUILD = (
    "transcription runs on the CPU: PyPI's ctranslate2 wheels for {arch} are CPU-only. For a GPU ctranslate2 here, "
    "build it from source with CUDA (https://opennmt.net/CTranslate2/installation.html#install-from-sources: "
    "cmake -DWITH_CUDA=ON -DWITH_CUDNN=ON -DWITH_MKL=OFF -DOPENMP_RUNTIME=COMP .., make install, then pip install "
    "the python/ wheel); nothing in this plan is added for a GPU ctranslate2")
PIPELINE_ENV = {"PYANNOTE_METRICS_ENABLED": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}


@dataclass
class Pin:
    name: str
    version: str  # exact version, or a specifier for packages resolved by the lock step
    index: str = PYPI
    why: str = ""
    source: str = ""
    exact: bool = True

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}" if self.exact else f"{self.name}{self.version}"


@dataclass
class Decision:
    subject: str
    chosen: str
    rule: str
    why: str
    source: str
    rejected: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Plan:
    host: Host
    request: Request
    pathway: str
    gpu: bool  # some component runs on the GPU
    python: str
    pins: list[Pin]
    libraries: list[dict[str, str]]
    base_image: str
    env: dict[str, str]
    compute_type: str
    decisions: list[Decision]
    warnings: list[Finding]
    notes: list[str]
    devices: dict[str, str] = field(default_factory=dict)  # component (ctranslate2, torch) -> cuda or cpu
    source_builds: list[dict[str, str]] = field(default_factory=list)  # dependencies PyPI has only as sdists

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "workload": self.request.workload,
            "pathway": self.pathway,
            "device": "cuda" if self.gpu else "cpu",
            "devices": self.devices,
            "source_builds": self.source_builds,
            "python": self.python,
            "target": self.target(),
            "packages": [{"name": p.name, "version": p.version, "requirement": p.requirement,
                          "index": p.index, "exact": p.exact, "why": p.why, "source": p.source}
                         for p in self.pins],
            "indexes": sorted({p.index for p in self.pins}),
            "libraries": self.libraries,
            "base_image": self.base_image,
            "python_source": python_source(self.base_image, self.python),
            "env": self.env,
            "compute_type": self.compute_type,
            "decisions": [vars(d) for d in self.decisions],
            "warnings": [w.to_json() for w in self.warnings],
            "notes": self.notes,
        }

    def target(self) -> dict[str, Any]:
        """What the rendered files need to know about the machine the plan is for (docs/plan-json.md)."""
        gpus = self.host.gpus or ()
        # The smallest GPU decides what a cloud platform must rent for this plan (render/cloud.py).
        ccs = [g.compute_capability or gpu_cc(g.name) for g in gpus]
        memory = [g.memory_mib for g in gpus if g.memory_mib]
        return {"arch": self.host.os.arch or "x86_64", "platform": self.host.platform or "",
                "gpus": [g.name for g in gpus],
                "compute_capability": min((c for c in ccs if c), key=Version, default=""),
                "gpu_memory_mib": min(memory, default=0),
                "driver_cuda": self.host.driver.cuda if self.host.driver and self.host.driver.cuda else "",
                "keeps_preinstalled": any(d.rule == "keep-preinstalled" for d in self.decisions)}


def make_plan(host: Host, request: Request) -> Plan:
    """Plan for one host and request; pathway auto tries B, then A.

    On Colab and Kaggle the preinstalled torch family is kept when a stack fits around it; when none
    does, the plan replaces it and says so first (the refusal would only say to pass --replace-preinstalled).
    """
    try:
        return _plan_pathway_or_split(host, request)
    except NoSolution as kept:
        if not kept.failure.kept_preinstalled:
            raise
        replacing = replace(request, replace_preinstalled=True)
        plan = _plan_pathway(host, replacing)  # its own refusal, if any, names the causes that remain
        torch = host.package("torch")
        plan.notes.insert(0, f"the {kept.failure.kept_preinstalled} platform's preinstalled torch {torch} cannot "
                          f"serve this workload ({kept.failure.summary().rstrip('.')}), so this plan replaces the "
                          "torch family: installing it replaces the preinstalled one (restart the runtime after)")
        for decision in plan.decisions:
            if decision.subject == "torch":
                decision.rule, decision.why = "replace-preinstalled", (
                    f"the preinstalled torch {torch} fits no {request.workload} stack")
        return plan


def _plan_pathway_or_split(host: Host, request: Request) -> Plan:
    """`_plan_pathway`; when no GPU stack fits the whole workload, a refusal that first offers the split that does
    fit: transcription on the CPU, diarization (torch) on the GPU (`--asr-device cpu`)."""
    try:
        return _plan_pathway(host, request)
    except NoSolution as refused:
        failure = refused.failure
        if not failure.gpu or request.asr_device != "auto" or request.device == "cpu" or \
                not {"torch", "ctranslate2"} <= set(request.packages):
            raise
        try:
            split = _plan_pathway(host, replace(request, asr_device="cpu"))
        except NoSolution:
            raise refused from None
        torch = next((p.version for p in split.pins if p.name == "torch"), "?")
        ct2 = next((p.version for p in split.pins if p.name == "ctranslate2"), "?")
        way = (f"Transcribe on the CPU and diarize on the GPU: envsolve plan --asr-device cpu (it fits: torch {torch} "
               f"on the GPU, ctranslate2 {ct2} on the CPU, int8).")
        failure = replace(failure, alternatives=(way,))
        raise NoSolution(failure, *explain_failure(failure)) from None


def _plan_pathway(host: Host, request: Request) -> Plan:
    if request.pathway != "auto":
        _require_known_libraries(host, request, request.pathway)
        return _assemble(Planner(host, request, request.pathway).solve())
    try:
        solution = Planner(host, request, "B").solve()
        solution.notes.append("pathway auto chose B: every library comes from pip wheels, so the stack does "
                              "not depend on what the host has installed")
        return _assemble(solution)
    except NoSolution as first:
        if host.libraries is None and request.target == "host":
            raise first
        try:
            solution = Planner(host, request, "A").solve()
        except NoSolution:
            raise first from None
        reason = first.failure.summary().rstrip(".")
        solution.notes.append(f"pathway auto chose A: no self-contained stack fits ({reason}); the host's system "
                              "libraries make one")
        return _assemble(solution)


def _require_known_libraries(host: Host, request: Request, pathway: str) -> None:
    if pathway == "A" and request.target == "host" and host.libraries is None:
        raise EnvsolveError(
            "pathway-a-needs-libraries",
            "Pathway A uses the host's own cuDNN and CUDA libraries, but this snapshot does not list them.",
            hint="Probe the host with `envsolve probe --json > host.json` (it lists the libraries), add a "
            '"libraries" list to the snapshot by hand, or use --pathway B.',
        )


def _assemble(solution: Solution) -> Plan:
    pins: list[Pin] = []
    decisions: list[Decision] = []
    rejected: dict[str, list[dict[str, str]]] = {}
    for rejection in solution.rejections:
        first = rejection.findings[0]
        rejected.setdefault(rejection.variable, []).append(
            {"version": rejection.version, "code": first.code, "why": f"{first.subject}: {first.message}"})
    for variable, entries in rejected.items():
        chosen = solution.choices.get(variable)
        # Only versions newer than the one chosen explain the choice; the same version may have failed
        # beside another torch earlier in the search, which says nothing about this stack.
        entries = [e for e in entries if chosen is None or _newer(e["version"], chosen.version)]
        unique = list({e["version"]: e for e in reversed(entries)}.values())[::-1]
        # Every distinct reason first (newest version for each), then the rest in search order.
        firsts = list({e["code"]: e for e in reversed(unique)}.values())[::-1]
        rejected[variable] = firsts + [e for e in unique if e not in firsts]
    for variable, choice in solution.choices.items():
        if choice.row is None or not choice.version or variable == "image":
            continue
        if variable == "torch":
            pins += _torch_pins(choice.row, {c.name for c in choice.candidates})
            rule, why = "newest-consistent", "the newest torch build every rule accepts on this host"
            if choice.preinstalled:
                rule, why = "keep-preinstalled", "the platform's preinstalled torch is kept"
        else:
            pins.append(Pin(variable, choice.version, why="newest release every rule accepts",
                            source=row_source(choice.row)))
            rule, why = "newest-consistent", f"the newest {variable} every rule accepts"
        decisions.append(Decision(variable, choice.version, rule, why, row_source(choice.row),
                                  rejected.get(variable, [])[:12]))
    for wheel in solution.library_wheels:
        pins.append(Pin(wheel.name, wheel.version, why="ctranslate2 loads this library and torch does not bring "
                        "it (pathway B)", source=wheel.source))
        decisions.append(Decision(wheel.name, wheel.version, "pathway-b-library",
                                  "ctranslate2's CUDA library, from pip", wheel.source))
    pins += _hub_pin(solution)
    pins += _numpy_pin(solution)
    devices = component_devices(solution)
    gpu = "cuda" in devices.values()
    python = solution.python
    env = dict(PIPELINE_ENV)
    if solution.env.get("LD_LIBRARY_PATH"):
        env["LD_LIBRARY_PATH"] = solution.env["LD_LIBRARY_PATH"] + ":${LD_LIBRARY_PATH}"
    libraries = _library_sources(solution)
    chosen_image = solution.choices.get("image")
    image, image_note = (chosen_image.version, f"base image {chosen_image.version}: chosen with the stack (its "
                         f"libraries, glibc and NVIDIA_REQUIRE_CUDA were checked){image_why(chosen_image.version)}") \
        if chosen_image else base_image(solution)
    notes = list(solution.notes) + ([image_note] if image_note else [])
    builds = source_builds(pins)
    notes += [f"{b['package']}=={b['version']} has no wheel on PyPI and is built from source ({b['build']}): {b['why']}"
              for b in builds]
    if solution.runtime.gpu and devices.get("ctranslate2") == "cpu" and not solution.runtime.asr_gpu:
        notes.insert(0, "transcription runs on the CPU by choice (--asr-device cpu, compute type int8); diarization "
                     "(torch) runs on the GPU")
    elif solution.runtime.gpu and devices.get("ctranslate2") == "cpu":
        notes.insert(0, CT2_SOURCE_BUILD.format(arch=solution.host.os.arch or "this architecture"))
    if SITE in env.get("LD_LIBRARY_PATH", ""):
        notes.append(f"{SITE} is the environment's site-packages folder: "
                     "python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])'")
    return Plan(
        host=solution.host, request=solution.request, pathway=solution.pathway, gpu=gpu, devices=devices,
        source_builds=builds,
        python=python, pins=pins, libraries=libraries, base_image=image, env=env,
        compute_type=default_compute_type(solution), decisions=decisions,
        warnings=[f for f in solution.result.findings if f.severity == "warning"], notes=notes)


def _newer(version: str, than: str) -> bool:
    try:
        return Version(version.split("+")[0]) > Version(than.split("+")[0]) or (
            version != than and version.split("+")[0] == than.split("+")[0])
    except InvalidVersion:
        return version != than


def _torch_pins(row: Mapping[str, Any], family: set[str]) -> list[Pin]:
    index = PYPI if row.get("index") == "pypi" else str(row["index"])
    label = "" if row.get("index") == "pypi" else str(row.get("local", ""))
    src = row_source(row)
    pins = [Pin("torch", f"{row['torch']}{label}", index, f"torch {row['variant']} build", src)]
    for name in ("torchaudio", "torchvision"):
        if row.get(name) and name in family:
            pins.append(Pin(name, f"{row[name]}{label}", index, f"the {name} release built for torch {row['torch']}",
                            src))
    return pins


def _hub_pin(solution: Solution) -> list[Pin]:
    """pyannote 3.x passes use_auth_token=: keep huggingface_hub in a range that accepts it."""
    choice = solution.choices.get("pyannote-audio")
    if not choice or not choice.row or choice.row.get("auth_keyword") != "use_auth_token":
        return []
    accepting = [r for r in matrices.load("huggingface_hub") if r.get("use_auth_token") in ("accepted", "deprecated")]
    if not accepting:
        return []
    last = max(accepting, key=lambda r: Version(str(r["min"])))
    spec = f"<{last['max']}" if last.get("max") else ""
    if choice.row.get("huggingface_hub"):
        spec = f"{choice.row['huggingface_hub']},{spec}" if spec else str(choice.row["huggingface_hub"])
    return [Pin("huggingface_hub", spec, why="pyannote.audio 3.x passes use_auth_token=", source=row_source(last),
                exact=False)] if spec else []


def _numpy_pin(solution: Solution) -> list[Pin]:
    """A planned package compiled against NumPy 1.x (matrices/numpy_abi.toml): keep numpy in that range. NumPy is
    left to the lock step otherwise, and pip would pick 2.x beside a torch 2.0 that cannot use it."""
    rules = [(c, r) for choice in solution.choices.values() for c in choice.candidates for r in c.requires
             if r.code == NUMPY_ABI and r.spec]
    if not rules:
        return []
    spec = ",".join(sorted({str(r.spec) for _, r in rules}))
    who = ", ".join(dict.fromkeys(c.label for c, _ in rules))
    return [Pin("numpy", spec, why=f"{who} was compiled against NumPy 1.x (its C API import fails on NumPy 2: "
                "\"Numpy is not available\")", source=rules[0][1].source, exact=False)]


def _library_sources(solution: Solution) -> list[dict[str, str]]:
    """For each consumer and library: where the loader will find it in the planned environment."""
    stack = [c for choice in solution.choices.values() for c in choice.candidates] + solution.library_wheels
    providers = [p for c in [*stack, *solution.fixed] for p in c.provides if p.capability.startswith("lib:")]
    profile = matrices.load("workloads").one(workload=solution.request.workload)
    view = LoaderView.of(with_library_path(solution.host, solution.env.get("LD_LIBRARY_PATH", "")),
                         torch_first=bool(profile and profile.get("torch_first")))
    loads = [p for c in stack for p in c.provides if p.capability.startswith(TORCH_LOADED)]
    rows = []
    for c in stack:
        for r in c.requires:
            if r.library is None:
                continue
            need = r.library
            same = [p for p in providers if p.capability == f"lib:{need.name}"
                    and p.detail.get("major") == str(need.major)]
            order = view.order(same, need, [p for p in loads if p.capability == f"{TORCH_LOADED}{need.name}"])
            picked, how = order[0] if order else (None, "not found")
            rows.append({"consumer": need.consumer, "library": f"{need.name} {need.major}",
                         "from": picked.detail.get("origin", "") if picked else "missing",
                         "version": picked.version or "" if picked else "",
                         "package": picked.detail.get("package", "") if picked else "",
                         "path": picked.detail.get("path", "") if picked else "", "found_via": how})
    return rows


def source_builds(pins: list[Pin]) -> list[dict[str, str]]:
    """The source-only dependencies these pins pull in (matrices/source_builds.toml), with why and what it takes."""
    versions = {p.name: p.version.split("+")[0] for p in pins if p.exact}
    out = []
    for row in matrices.load("source_builds"):
        name, specifier = needed_with(str(row["needed_with"]))
        have = versions.get(name)
        if have is not None and specifier.contains(have, prereleases=True):
            out.append({"package": str(row["package"]), "version": str(row["version"]), "why": str(row["why"]),
                        "build": str(row["build"]), "source": str(row["source"])})
    return out


_NAME_THEN_SPECIFIER = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*([<>=!~].*)?")


def needed_with(text: str) -> tuple[str, SpecifierSet]:
    """source_builds' `needed_with` ("pyannote-audio<4"): a name and a specifier.

    Not packaging.requirements, whose import (markers, tags, logging) is a fifth of a plan's start-up; a test reads
    every row with it too and requires the same name and specifier.
    """
    found = _NAME_THEN_SPECIFIER.fullmatch(text)
    if found is None:
        raise EnvsolveError("bad-matrix", f"matrices/source_builds.toml: needed_with {text!r} is not a name followed "
                            "by a version specifier.")
    return found[1], SpecifierSet(found[2] or "")


def component_devices(solution: Solution) -> dict[str, str]:
    """Where each component runs: ctranslate2 (transcription) and torch (diarization, alignment).

    On a GPU target a component runs on the CPU when its build has no CUDA for this machine: PyPI's
    aarch64 ctranslate2 wheels (a GH200) are CPU-only, while torch's aarch64 CUDA wheels are not.
    """
    devices: dict[str, str] = {}
    ct2, torch = solution.choices.get("ctranslate2"), solution.choices.get("torch")
    if ct2 and ct2.row:
        devices["ctranslate2"] = "cuda" if ct2_on_gpu(ct2.row, solution.host, solution.runtime) else "cpu"
    if torch and torch.row:
        devices["torch"] = "cuda" if solution.runtime.gpu and torch.row.get("variant") != "cpu" else "cpu"
    return devices


def default_compute_type(solution: Solution) -> str:
    """float16 on GPUs with tensor cores, int8_float32 on Pascal 6.1, float32 below; int8 on CPU."""
    ct2 = solution.choices.get("ctranslate2")
    if not solution.runtime.gpu or (ct2 and ct2.row and not ct2_on_gpu(ct2.row, solution.host, solution.runtime)):
        return "int8"
    if solution.runtime.compute_type:
        return solution.runtime.compute_type
    ccs = [p.version for c in solution.fixed for p in c.provides
           if p.capability == "compute-capability" and p.version]
    if not ccs:
        return "float16"
    lowest = min(ccs, key=Version)
    for compute_type in ("float16", "int8_float32", "float32"):
        row = matrices.load("compute_types").one(compute_type=compute_type)
        minimum = row.get("gpu_min_cc") if row else None
        if minimum is None or satisfies(lowest, f">={minimum}"):
            return compute_type
    return "float32"


def base_image(solution: Solution) -> tuple[str, str]:
    """A Docker base image to suggest for a host plan (resolver/images.py): for its driver, the CUDA major of
    what runs on the GPU, and under A the system libraries ctranslate2 loads (those torch, imported first,
    already loaded excepted)."""
    host = solution.host
    devices = component_devices(solution)
    system = {row["library"].split()[0] for row in _library_sources(solution) if row["consumer"] == "ctranslate2"
              and row["from"] != "pip" and not row["found_via"].startswith("already loaded")}
    on_gpu = [solution.choices.get(name) for name, device in devices.items() if device == "cuda"]
    cuda_major = next((int(c.row["cuda_major"]) for c in on_gpu if c and c.row and c.row.get("cuda_major")), None)
    ct2 = solution.choices.get("ctranslate2")
    cudnn_major = int(ct2.row.get("cudnn_major") or 0) if ct2 and ct2.row and devices.get("ctranslate2") == "cuda" \
        else 0
    return suggest_image("cuda" in devices.values(), solution.pathway, solution.python,
                         flavors_for(solution.pathway, system),
                         driver=host.driver.cuda if host.driver and host.driver.cuda else None,
                         cuda_major=cuda_major, cudnn_major=cudnn_major)
