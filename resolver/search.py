"""The plan direction: search for the newest stack that `check` passes on this host.

Variables are the workload's packages (plus the base image when planning an image), decided in
the workload's order; host facts are fixed candidates. After each choice the partial stack is
checked; a failure's culprits become a no-good so the same clash is not tried again. If nothing
fits, the search's findings become a `Failure` (envsolve.resolver.failure), which
envsolve.resolver.refusal turns into a layered explanation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from packaging.version import Version

from envsolve.errors import EnvsolveError
from envsolve.resolver import matrices
from envsolve.resolver.check import CheckResult, check, satisfies
from envsolve.resolver.failure import Exhausted, Failure, NoSolution, Rejection
from envsolve.resolver.families import FAMILIES, family_of, optional_members
from envsolve.resolver.host import Host
from envsolve.resolver.images import image_candidate, image_rows
from envsolve.resolver.model import Candidate, Finding, Provide, Require
from envsolve.resolver.packages import (
    torch_candidate,
    torchaudio_candidate,
    torchvision_candidate,
)
from envsolve.resolver.refusal import explain_failure
from envsolve.resolver.request import Request
from envsolve.resolver.rulebook import (
    SITE,
    Context,
    Runtime,
    candidate,
    ct2_on_gpu,
    host_candidates,
    pip_lib_dir,
    pip_library,
    pip_library_wheel,
    torch_row,
    torch_rows,
)

__all__ = ["HOST_CAPABILITIES", "Planner", "Solution", "with_library_path"]


PREINSTALLING_PLATFORMS = ("colab", "kaggle")
LIBRARY_SOURCES = ("torch", "ctranslate2", "image")  # the variables whose choices decide which libraries exist
CUDA_LIBRARIES = ("lib:cudnn", "lib:cublas", "lib:cudart", "lib:nccl")
HOST_CAPABILITIES = ("python", "arch", "glibc", "cuda-driver", "driver", "compute-capability", "ffmpeg-libs",
                     "libraries-listed")


@dataclass(frozen=True)
class Choice:
    """One value of one variable: a package version (with its matrix row) or a base image."""

    variable: str
    version: str
    row: Mapping[str, Any] | None
    candidates: tuple[Candidate, ...]
    preinstalled: bool = False


@dataclass
class Solution:
    """A stack that passed: choices, the nvidia-* wheels added for ctranslate2, and how libraries are found."""

    host: Host
    request: Request
    python: str
    pathway: str
    runtime: Runtime
    fixed: list[Candidate]
    choices: dict[str, Choice]
    library_wheels: list[Candidate]
    env: dict[str, str]
    result: CheckResult
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Planner:
    """Search for one pathway; `solve` returns a Solution or raises NoSolution."""

    def __init__(self, host: Host, request: Request, pathway: str) -> None:
        self.host = host
        self.request = request
        self.pathway = pathway
        gpu = request.device == "cuda" or (request.device == "auto" and host.has_driver)
        self.runtime = Runtime(gpu=gpu, compute_type=request.compute_type, asr_gpu=request.asr_device != "cpu")
        self.context = Context(host, self.runtime, planning=True)
        profile = matrices.load("workloads").one(workload=request.workload)
        self.torch_first = bool(profile and profile.get("torch_first"))
        self.constraints = request.parsed_constraints()
        self.python = request.python or (".".join(host.python.split(".")[:2]) if host.python else "3.11")
        self.fixed = self._fixed_candidates()
        self.variables = [*request.packages, *optional_members(request.packages)]
        self._refuse_unplanned_constraints()
        if request.target == "image":
            # Decided right after ctranslate2: under pathway A the image supplies its libraries.
            at = self.variables.index("ctranslate2") + 1 if "ctranslate2" in self.variables else len(self.variables)
            self.variables.insert(at, "image")
        self.rejections: list[Rejection] = []
        self.nogoods: list[dict[str, str]] = []
        self.last_failure: list[Finding] = []
        installed = host.package("torch")
        self.keeps_preinstalled = bool(installed and host.platform in PREINSTALLING_PLATFORMS
                                       and not request.replace_preinstalled)
        self.notes: list[str] = []
        if self.keeps_preinstalled:
            self.notes.append(f"keeping the {host.platform} platform's preinstalled torch {installed} "
                              "(pass --replace-preinstalled to allow replacing it)")
        # A kept torch the workload does not plan (faster-whisper on Kaggle) is part of every stack checked.
        self.kept_torch = self._kept_torch() if "torch" not in self.variables else ()

    def _refuse_unplanned_constraints(self) -> None:
        """A constraint on a package this plan does not decide would be silently ignored: refuse it instead."""
        for name in self.constraints:
            decided_by = FAMILIES[name].decided_by if name in FAMILIES else None
            if name in self.variables or (decided_by is not None and decided_by in self.variables):
                continue
            planned = ", ".join(v for v in self.variables)
            raise EnvsolveError(
                "constraint-not-planned", f"The constraint on {name} cannot be honoured: the {self.request.workload} "
                f"workload does not plan {name} (it plans {planned}).",
                hint=f"Drop the constraint, or pick a workload that includes {name} (--workload whisperx plans "
                "torch, torchaudio, torchvision and the rest).")

    # ------------------------------------------------------------------ fixed facts

    def _fixed_candidates(self) -> list[Candidate]:
        out = [c for c in host_candidates(self.host) if c.name != "host:python"]
        if self.pathway == "B" or self.request.target == "image":
            # B is self-contained, and an image brings its own system: the host's CUDA libraries neither
            # satisfy nor shadow anything there.
            out = [c for c in out if not any(p.capability in CUDA_LIBRARIES for p in c.provides)]
        if self.request.target == "image":
            out = [_without(c, "glibc") for c in out]  # the image's OS decides glibc
        out.append(candidate("host:python", self.python, [Provide("python", self.python)], [], fixed=True))
        if self.runtime.gpu:
            out.append(candidate("request", self.request.device, [], [Require(
                "cuda-driver", "gpu-not-visible",
                "a GPU stack was asked for, but no NVIDIA driver is reachable on this host",
                "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/docker-specialized.html",
                absent="fail",
                fix="Start the container with the GPU passed in (docker run --gpus all ...; on Kubernetes request "
                "nvidia.com/gpu), or plan for the CPU with --device cpu.")], fixed=True))
        return out

    # ------------------------------------------------------------------ domains

    def domain(self, variable: str, chosen: Mapping[str, Choice]) -> list[Choice]:
        spec = self.constraints.get(variable, "")
        if variable == "torch":
            return self._torch_domain(spec)
        if variable == "image":
            # Under A every flavour of a tag is a value, smallest first: the check keeps the first whose libraries
            # the stack needs (base when torch, imported first, already brings ctranslate2's cuBLAS).
            return [Choice("image", tag, row, (image_candidate(tag, row, self.pathway),))
                    for tag, row in image_rows(self.runtime.gpu, self.pathway, self.python)]
        family = FAMILIES[variable]
        assert family.matrix is not None, f"{variable} has no matrix to plan from"
        wanted: list[str] = []
        if family.needed_by:
            # An optional member: only when a chosen row asks for it (pyannote 4 -> torchcodec).
            wanted = [str(c.row[family.field]) for c in chosen.values()
                      if c.variable in family.needed_by and c.row and c.row.get(family.field)]
            if not wanted and not spec:
                return [Choice(variable, "", None, ())]  # not needed by the chosen stack
        rows = sorted(matrices.load(family.matrix), key=lambda r: Version(str(r["version"])), reverse=True)
        out = []
        for row in rows:
            version = str(row["version"])
            if any(not satisfies(version, w) for w in wanted) or (spec and not satisfies(version, spec)):
                continue
            if Version(version).is_prerelease and not spec:
                continue
            if any(not row.get(name) for name in family.plan_requires):
                continue  # a fact the rules need is not evidenced for this release: never plan a guess
            if row.get("yanked") and not pinned_exactly(spec, version):
                continue  # PEP 592: a yanked release is chosen only when the user pins exactly that version
            out.append(Choice(variable, version, row, (family.build(version, self.context),)))
        return out

    def _torch_domain(self, spec: str) -> list[Choice]:
        installed = self.host.package("torch")
        keep = self.keeps_preinstalled
        rows: list[Mapping[str, Any]] = list(torch_rows())  # constraints name fields: torchaudio, torchvision
        if keep and installed:
            preinstalled = torch_row(installed, None)
            rows = [preinstalled] if preinstalled else []
            if not rows:
                raise EnvsolveError("preinstalled-unknown", f"The preinstalled torch {installed} is not in "
                                    "matrices/torch.toml, so envsolve cannot plan around it.",
                                    hint="Pass --replace-preinstalled to plan a fresh torch family.")
        driver_cuda = Version(self.host.driver.cuda) if self.host.driver and self.host.driver.cuda else None

        def preference(row: Mapping[str, Any]) -> tuple[Any, ...]:
            cuda = Version(str(row["cuda"])) if row.get("cuda") else Version("0")
            if not self.runtime.gpu:
                # A +cpu build saves gigabytes of CUDA wheels; prefer it over a newer CUDA-only release.
                return (row["variant"] == "cpu", Version(str(row["torch"])), bool(row.get("pypi_default")))
            full = driver_cuda is None or cuda <= driver_cuda
            # Past what the driver fully supports, the nearest CUDA leans least on minor-version compatibility.
            number = cuda.major * 100 + cuda.minor
            pypi = bool(row.get("pypi_default"))
            return (Version(str(row["torch"])), full, (pypi, number) if full else (-number, pypi))

        rows.sort(key=preference, reverse=True)
        derived = self._derived_constraints()
        out = []
        for row in rows:
            version = str(row["torch"])
            # A constraint is matched against the build's local label too: `torch==2.5.1+cu121`, the exact pin a
            # plan prints, selects that build (PEP 440 ignores the label only when the specifier has none).
            labelled = f"{version}+{row['variant']}"
            if (spec and not satisfies(labelled, spec)) or Version(version).is_prerelease:
                continue
            if any(not row.get(name) or not satisfies(f"{row[name]}+{row['variant']}", wanted)
                   for name, wanted in derived.items()):
                continue  # -c torchaudio==X: torch's row fixes torchaudio, so the constraint picks torch rows
            if row.get("yanked") and not pinned_exactly(spec, labelled):
                continue
            if self.runtime.gpu and row["variant"] == "cpu":
                continue  # rejected by no-cuda-build anyway; skipping keeps explanations short
            if self.runtime.gpu and not keep and (not row.get("arch") or not row.get("cudnn_major")):
                continue  # its kernel architectures or cuDNN major are not evidenced: never plan a guess for a GPU
            out.append(Choice("torch", f"{version}+{row['variant']}", row, self._torch_family(row),
                              preinstalled=bool(keep)))
        return out

    def _derived_constraints(self) -> dict[str, str]:
        """The user's constraints on packages torch's row decides (torchaudio, torchvision)."""
        return {name: spec for name, spec in self.constraints.items()
                if spec and name in FAMILIES and FAMILIES[name].decided_by == "torch"}

    def _torch_family(self, row: Mapping[str, Any]) -> tuple[Candidate, ...]:
        variant = str(row["variant"])
        label = "" if row.get("pypi_default") else f"+{variant}"
        family = [torch_candidate(row, self.context)]
        if row.get("torchaudio"):
            family.append(torchaudio_candidate(f"{row['torchaudio']}{label}", self.context))
        if row.get("torchvision") and (self.host.package("torchvision") or self.request.workload == "whisperx"
                                       or "torchvision" in self.constraints):
            family.append(torchvision_candidate(f"{row['torchvision']}{label}", self.context))
        return tuple(family)

    # ------------------------------------------------------------------ search

    def solve(self) -> Solution:
        chosen: dict[str, Choice] = {}
        if self._search(0, chosen) is None:
            return self._solution(chosen)
        failure = self.failure()
        raise NoSolution(failure, *explain_failure(failure))

    def failure(self) -> Failure:
        """What the search found out, as data (no reference back to the planner)."""
        return Failure(
            workload=self.request.workload, pathway=self.pathway, gpu=self.runtime.gpu, python=self.python,
            arch=self.host.os.arch, device=self.request.device, rejections=tuple(self.rejections),
            exhausted=self._exhausted(), constraints=dict(self.constraints),
            kept_preinstalled=self.host.platform if self.keeps_preinstalled else None)

    def _exhausted(self) -> Exhausted | None:
        """The first variable, in decision order, that had nothing left."""
        tried: dict[str, list[str]] = {}
        for rejection in self.rejections:
            versions = tried.setdefault(rejection.variable, [])
            if rejection.version not in versions:
                versions.append(rejection.version)
        for variable in self.variables:
            domain = self.domain(variable, {})
            if not domain:
                constraint = self.constraints.get(variable) or None
                if variable == "torch" and self._derived_constraints():
                    # What emptied torch's domain may be a constraint on a package its row decides.
                    paired = ", ".join(f"{n}{s}" for n, s in self._derived_constraints().items())
                    constraint = f"{constraint or ''} with {paired}"
                return Exhausted(variable, (), constraint, empty=True)
            if variable in tried and len(tried[variable]) >= len(domain):
                return Exhausted(variable, tuple(tried[variable]), self.constraints.get(variable) or None)
        return None

    def _search(self, depth: int, chosen: dict[str, Choice]) -> set[str] | None:
        """Conflict-directed backjumping: None on success, else the variables to blame.

        When every value of a variable fails because of choices made for some earlier variables only,
        the variables in between are not retried (their other values cannot help).
        """
        if depth == len(self.variables):
            return None
        variable = self.variables[depth]
        conflict: set[str] = set()
        domain = self.domain(variable, chosen)
        if not domain:
            return set(chosen)  # the domain may depend on any earlier choice
        for choice in domain:
            chosen[variable] = choice
            blamed = self._known_bad(chosen, variable)
            if blamed is None:
                result = self.evaluate(chosen)
                if not result.ok:
                    blamed = self._learn(chosen, variable, result.errors)
            if blamed is not None:
                conflict |= blamed - {variable}
                del chosen[variable]
                continue
            below = self._search(depth + 1, chosen)
            del chosen[variable]
            if below is None:
                chosen[variable] = choice
                for later in self.variables[depth + 1:]:  # keep the workload's order
                    if later in chosen:
                        chosen[later] = chosen.pop(later)
                return None
            if variable not in below:
                return below  # this variable is not to blame: jump over it
            # This value is abandoned because of what failed further down: say so in its decision.
            if self.last_failure:
                self.rejections.append(Rejection(variable, choice.version, tuple(self.last_failure)))
            conflict |= below - {variable}
        return conflict

    def _known_bad(self, chosen: Mapping[str, Choice], variable: str) -> set[str] | None:
        for nogood in self.nogoods:
            if variable in nogood and all(v in chosen and chosen[v].version == ver for v, ver in nogood.items()):
                return set(nogood)
        return None

    def _learn(self, chosen: Mapping[str, Choice], variable: str, errors: list[Finding]) -> set[str]:
        """Record why this choice failed; returns the variables of the learned no-good."""
        self.rejections.append(Rejection(variable, chosen[variable].version, tuple(errors)))
        self.last_failure = errors
        blamed: set[str] = {variable}
        for name in errors[0].culprits:
            owners = self._variables_of(name)
            if owners is None:
                blamed = set(chosen)  # a culprit we cannot place: blame everything (always correct)
                break
            blamed |= owners
        nogood = {v: chosen[v].version for v in blamed if v in chosen}
        self.nogoods.append(nogood)
        return set(nogood)

    def _variables_of(self, name: str) -> set[str] | None:
        """The search variables a culprit depends on (empty for host facts); None if unknown."""
        if name == "glibc" and "image" in self.variables:
            return {"image"}
        if name.startswith(("host:", "request")) or name in HOST_CAPABILITIES or not name:
            return set()
        if name.startswith(("nvidia-", "lib:")):
            # Libraries come from torch's wheels and, under pathway B, the extras ctranslate2 adds.
            return set(LIBRARY_SOURCES) & set(self.variables)
        owner = self._owner(name)
        return {owner} if owner in self.variables else None

    def _owner(self, capability: str) -> str | None:
        """The variable that decides a capability or candidate: its family, or the family that fixes it."""
        family = family_of(capability)
        if family is None:
            return None
        return FAMILIES[family].decided_by or family

    def evaluate(self, chosen: Mapping[str, Choice]) -> CheckResult:
        wheels, env = self.library_wheels(chosen)
        stack = [*self.fixed, *self.kept_torch, *(c for choice in chosen.values() for c in choice.candidates), *wheels]
        return check(stack, self._host_with_env(env), self._settled(set(chosen)), torch_first=self.torch_first)

    def _settled(self, decided: set[str]) -> Callable[[str], bool]:
        """Which capabilities the partial stack has decided; requirements on others wait."""

        def settled(capability: str) -> bool:
            if capability.startswith("lib:"):
                return all(v in decided for v in LIBRARY_SOURCES if v in self.variables)
            if capability == "glibc" and "image" in self.variables:
                return "image" in decided
            owner = self._owner(capability)
            if owner is None:
                # A package outside the workload is the lock step's business: not decided here.
                return not capability.startswith("pkg:")
            if owner in decided:
                return True
            # torch-variant and torchaudio's APIs exist only with torch: without torch in the workload there is
            # nothing to wait for. A package (or the hub keyword) waits for its variable to be decided.
            return not capability.startswith(("pkg:", "hf:")) and owner not in self.variables

        return settled

    def _host_with_env(self, env: Mapping[str, str]) -> Host:
        host = replace(self.host, env={k: v for k, v in self.host.env.items() if k != "LD_LIBRARY_PATH"}) \
            if self.pathway == "B" or self.request.target == "image" else self.host
        return with_library_path(host, env.get("LD_LIBRARY_PATH", ""))

    # ------------------------------------------------------------------ pathway B: libraries from pip

    def library_wheels(self, chosen: Mapping[str, Choice]) -> tuple[list[Candidate], dict[str, str]]:
        """Under pathway B, the nvidia-* wheels ctranslate2 needs beyond torch's, and the loader path."""
        ct2 = chosen.get("ctranslate2")
        if self.pathway != "B" or not self.runtime.gpu or ct2 is None or ct2.row is None:
            return [], {}
        if not ct2_on_gpu(ct2.row, self.host, self.runtime):
            return [], {}  # a ctranslate2 on the CPU (PyPI's aarch64 wheels, or --asr-device cpu) loads no CUDA library
        if "torch" in self.variables and "torch" not in chosen:
            return [], {}
        torch = chosen.get("torch")
        torch_libs = {p.capability[4:]: p for c in (torch.candidates[:1] if torch else self.kept_torch)
                      for p in c.provides if p.capability.startswith("lib:")}
        cuda_major = int(ct2.row.get("cuda_major") or 0)
        needs = {"cublas": cuda_major, "cudnn": int(ct2.row.get("cudnn_major") or 0)}
        wheels: list[Candidate] = []
        dirs: list[str] = []
        for lib, major in needs.items():
            if not major or not cuda_major:
                continue
            have = torch_libs.get(lib)
            if have and have.detail.get("major") == str(major) and have.detail.get("cuda_major") == str(cuda_major):
                dirs.append(f"{SITE}/{pip_lib_dir(lib, have.detail.get('package', ''), cuda_major)}")
                continue
            wheel = pip_library_wheel(lib, major, cuda_major)
            if wheel is None:
                continue
            package, version = wheel
            if have and _same_folder(have.detail.get("package", ""), package, lib, cuda_major):
                # One environment holds one version of a wheel, and nvidia-<lib>-cu11/-cu12 share the
                # site-packages/nvidia/<lib> folder: torch's wheel stays, and the check explains the gap.
                continue
            wheels.append(candidate(package, version, [pip_library(lib, version, major, cuda_major, package)], [],
                                    f"matrices/torch.toml pins {package}=={version}"))
            dirs.append(f"{SITE}/{pip_lib_dir(lib, package, cuda_major)}")
        env = {"LD_LIBRARY_PATH": ":".join(dict.fromkeys(dirs))} if dirs else {}
        return wheels, env

    def _kept_torch(self) -> tuple[Candidate, ...]:
        """A platform's preinstalled torch that a workload without torch keeps (faster-whisper on Kaggle): the
        nvidia-* wheels it pins stay installed, so ctranslate2 uses them as it would a chosen torch's, and no
        second version of a wheel torch pins is planned (pip would replace torch's, or refuse)."""
        installed = self.host.package("torch")
        row = torch_row(installed, None) if self.keeps_preinstalled and installed else None
        return (torch_candidate(row, self.context),) if row else ()

    def _solution(self, chosen: dict[str, Choice]) -> Solution:
        wheels, env = self.library_wheels(chosen)
        result = self.evaluate(chosen)
        return Solution(self.host, self.request, self.python, self.pathway, self.runtime,
                        [*self.fixed, *self.kept_torch], dict(chosen),
                        wheels, env, result, self.rejections, self.notes)


def pinned_exactly(spec: str, version: str) -> bool:
    """Does a constraint pin exactly this version (`==2.5.1`, `===2.5.1`)? PEP 592 lets only that select a
    yanked release."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        specifiers = list(SpecifierSet(spec))
    except InvalidSpecifier:
        return False
    return any(s.operator in ("==", "===") and "*" not in s.version and Version(s.version) == Version(version)
               for s in specifiers)


def _without(candidate_: Candidate, capability: str) -> Candidate:
    return replace(candidate_, provides=tuple(p for p in candidate_.provides if p.capability != capability))


def _same_folder(a: str, b: str, lib: str, cuda_major: int) -> bool:
    """Do two nvidia-* library wheels install into the same folder? (cu11/cu12 share nvidia/<lib>; CUDA 13's
    unsuffixed wheels use nvidia/cu13.) `a` is torch's wheel (its own CUDA major from the name or 13)."""
    def folder(package: str, major: int) -> str:
        suffix = package.rsplit("-cu", 1)[-1] if "-cu" in package else ""
        return pip_lib_dir(lib, package, int(suffix) if suffix.isdigit() else major)
    return bool(a) and folder(a, 13) == folder(b, cuda_major)


def with_library_path(host: Host, dirs: str) -> Host:
    """The host as the planned environment sees it: `dirs` first on LD_LIBRARY_PATH.

    The probe's loader records describe the current environment, not the planned one, so they
    are dropped and the loader search is derived from the planned paths instead.
    """
    if not dirs:
        return replace(host, loader=None)
    existing = host.env.get("LD_LIBRARY_PATH")
    env = {**host.env, "LD_LIBRARY_PATH": f"{dirs}:{existing}" if existing else dirs}
    return replace(host, env=env, loader=None)
