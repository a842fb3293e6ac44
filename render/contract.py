"""The typed contract templates bind to: a plan, checked field by field against its grammar.

A plan arrives as JSON (a file from `envsolve plan --json`, or the planner's own output), which a user may
have edited or an attacker written. `Contract.from_plan` is the one door into rendering: every value is
checked (render/grammar.py) and typed here, so templates see dataclasses of safe values and never a raw dict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from envsolve.errors import EnvsolveError
from envsolve.render.cloud import gpu_model
from envsolve.render.grammar import checked
from envsolve.render.selfwheel import EnvsolveSource
from envsolve.resolver import matrices
from envsolve.resolver.families import FAMILIES
from envsolve.resolver.plan import PYPI, SCHEMA
from envsolve.resolver.python_source import python_source
from envsolve.resolver.request import WORKLOADS
from envsolve.resolver.rulebook import gpu_cc

__all__ = ["PYPI", "Contract", "Package", "Route", "Target"]

ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
# The packages a platform's preinstalled torch comes with: torch and the families its build decides.
TORCH_FAMILY = ("torch", *sorted(name for name, family in FAMILIES.items() if family.decided_by == "torch"))


@dataclass(frozen=True)
class Package:
    name: str
    version: str  # exact (exact=True) or a specifier for the lock step to settle
    index: str
    exact: bool

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}" if self.exact else f"{self.name}{self.version}"

    @property
    def from_pypi(self) -> bool:
        return self.index == PYPI


@dataclass(frozen=True)
class Route:
    """Where one native consumer finds one library (the plan's libraries[])."""

    consumer: str
    library: str
    origin: str
    package: str
    path: str


@dataclass(frozen=True)
class Target:
    arch: str
    platform: str
    gpu_model: str  # a row name of matrices/gpus.toml ("L4"), never the raw name; empty: none, or unknown
    compute_capability: str  # the smallest GPU's; empty: unknown
    gpu_memory_mib: int  # the smallest GPU's; 0: unknown
    driver_cuda: str
    keeps_preinstalled: bool


@dataclass(frozen=True)
class Contract:
    plan_sha256: str
    workload: str
    pathway: str
    device: str
    devices: tuple[tuple[str, str], ...]
    python: str
    packages: tuple[Package, ...]
    source_builds: tuple[Package, ...]
    routes: tuple[Route, ...]
    library_path: tuple[str, ...]  # LD_LIBRARY_PATH entries the plan adds, $SITE_PACKAGES unexpanded
    env: tuple[tuple[str, str], ...]  # every other variable, sorted
    base_image: str
    compute_type: str
    target: Target
    python_source: str = "image"  # image, distribution or uv (resolver/python_source.py)
    envsolve_spec: str = "envsolve"  # what pip installs where the rendered folder is not at hand
    envsolve_wheel: str = ""  # envsolve's wheel in the rendered folder (render/selfwheel.py), which files install
    regenerate: tuple[str, ...] = field(default=())  # the words after `envsolve` that render this folder, less -o
    plan_source: tuple[str, ...] = field(default=())  # where the plan comes from: --plan FILE, or the plan flags
    folder: str = ""  # -o when it is relative (CI runs from the same folder); empty: not known

    @property
    def from_plan_file(self) -> bool:
        return "--plan" in self.plan_source

    # --- views the templates use --------------------------------------------------------------------
    @property
    def gpu(self) -> bool:
        return self.device == "cuda"

    @property
    def extra_indexes(self) -> tuple[str, ...]:
        return tuple(sorted({p.index for p in self.packages if not p.from_pypi}))

    @property
    def preinstalled(self) -> tuple[Package, ...]:
        """The platform's torch family when the plan keeps it (Colab, Kaggle): not installed again there."""
        return tuple(p for p in self.packages if self.target.keeps_preinstalled and p.name in TORCH_FAMILY)

    @property
    def to_install_on_platform(self) -> tuple[Package, ...]:
        kept = set(self.preinstalled)
        return tuple(p for p in self.packages if p not in kept)

    @property
    def decodes_with_torchcodec(self) -> bool:
        """pyannote.audio 4.x decodes files through torchcodec, which loads the system's FFmpeg libraries."""
        return any(p.name == "torchcodec" for p in self.packages)

    @property
    def doctor_device(self) -> str:
        return "cuda" if self.gpu else "cpu"

    # --- construction -------------------------------------------------------------------------------
    @classmethod
    def from_plan(cls, plan: Mapping[str, Any], *, envsolve: EnvsolveSource | None = None,
                  regenerate: Sequence[str] = (), plan_source: Sequence[str] = (), folder: str = "") -> Contract:
        if not isinstance(plan, Mapping) or plan.get("schema") != SCHEMA:
            schema = plan.get("schema") if isinstance(plan, Mapping) else None
            raise EnvsolveError("render-bad-plan", f"The plan's schema is {schema!r}, not {SCHEMA!r}.",
                                hint="Write the plan with `envsolve plan --json > plan.json` from this envsolve.")
        digest = hashlib.sha256(json.dumps(plan, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        packages = tuple(_package(p, f"packages[{i}]") for i, p in enumerate(_list(plan, "packages")))
        if not packages:
            raise EnvsolveError("render-bad-plan", "The plan has no packages.", hint="Regenerate it: envsolve plan.")
        builds = tuple(Package(checked("package", _get(b, "package", f"source_builds[{i}]"),
                                     f"source_builds[{i}].package"),
                               checked("version", _get(b, "version", f"source_builds[{i}]"),
                                     f"source_builds[{i}].version"), PYPI, True)
                       for i, b in enumerate(_list(plan, "source_builds", required=False)))
        routes = tuple(_route(r, f"libraries[{i}]") for i, r in enumerate(_list(plan, "libraries", required=False)))
        env, library_path = _environment(plan.get("env", {}))
        devices = plan.get("devices", {})
        if not isinstance(devices, Mapping):
            raise _bad("devices", devices, "an object of component: cuda or cpu")
        return cls(
            plan_sha256=digest,
            workload=_one_of(plan, "workload", tuple(WORKLOADS)),
            pathway=_one_of(plan, "pathway", ("A", "B")),
            device=_one_of(plan, "device", ("cuda", "cpu")),
            devices=tuple(sorted((checked("word", k, "devices key"), _one_of(devices, k, ("cuda", "cpu"), "devices."))
                                 for k in devices)),
            python=checked("python", plan.get("python"), "python"),
            packages=packages, source_builds=builds, routes=routes, library_path=library_path, env=env,
            base_image=checked("image", plan["base_image"], "base_image") if plan.get("base_image") else "",
            python_source=_python_source(plan),
            compute_type=_one_of(plan, "compute_type",
                                 tuple(str(r["compute_type"]) for r in matrices.load("compute_types"))),
            target=_target(plan.get("target", {}), plan),
            envsolve_spec=checked("envsolve-spec", (envsolve or EnvsolveSource()).pip_argument, "--envsolve-spec"),
            envsolve_wheel=checked("wheel", envsolve.wheel, "--envsolve-spec") if envsolve and envsolve.wheel else "",
            regenerate=tuple(checked("argument", a, "the regenerate command", hint=REGENERATE_HINT)
                             for a in regenerate),
            plan_source=tuple(checked("argument", a, "the plan's source", hint=REGENERATE_HINT) for a in plan_source),
            folder=checked("path", folder, "-o") if folder else "",
        )


REGENERATE_HINT = ("The command's words are written into every file's header: rename the plan or snapshot file (or "
                   "give the value) using only letters, digits, spaces and . / : = , < > ! ~ + @ - _.")


def _python_source(plan: Mapping[str, Any]) -> str:
    """The plan's python_source kind; a plan written before it existed gets the same rule applied now."""
    source = plan.get("python_source")
    if source is None:
        image, python = plan.get("base_image") or "", plan.get("python")
        source = python_source(str(image), str(python)) if isinstance(python, str) else {}
    if not isinstance(source, Mapping):
        raise _bad("python_source", source, "an object")
    return _one_of(source, "kind", ("image", "distribution", "uv"), "python_source.") if source else "image"


def _bad(name: str, value: object, what: str) -> EnvsolveError:
    return EnvsolveError("render-bad-value", f"{name} is {repr(value)[:80]}, which is not {what}.",
                         hint="Regenerate the plan with `envsolve plan --json` (do not edit it by hand).")


def _get(obj: object, key: str, where: str) -> object:
    if not isinstance(obj, Mapping):
        raise _bad(where, obj, "an object")
    return obj.get(key)


def _list(plan: Mapping[str, Any], key: str, *, required: bool = True) -> list[Any]:
    value = plan.get(key, None if required else [])
    if not isinstance(value, list):
        raise _bad(key, value, "a list")
    return value


def _one_of(obj: Mapping[str, Any], key: str, choices: Sequence[str], prefix: str = "") -> str:
    value = obj.get(key)
    if value not in choices:
        raise _bad(f"{prefix}{key}", value, "one of " + ", ".join(choices))
    return str(value)


def _package(item: object, where: str) -> Package:
    exact = _get(item, "exact", where)
    if not isinstance(exact, bool):
        raise _bad(f"{where}.exact", exact, "true or false")
    name = checked("package", _get(item, "name", where), f"{where}.name")
    version = checked("version" if exact else "specifier", _get(item, "version", where), f"{where}.version")
    index = checked("url", _get(item, "index", where), f"{where}.index")
    return Package(name, version, index, exact)


def _route(item: object, where: str) -> Route:
    def word(key: str, grammar: str = "word") -> str:
        value = _get(item, key, where)
        return checked(grammar, value, f"{where}.{key}") if value else ""

    return Route(word("consumer"), checked("word", str(_get(item, "library", where)).replace(" ", "-"),
                                         f"{where}.library"),
                 word("from"), word("package", "package"), word("path", "path"))


def _environment(env: object) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The plan's variables, and LD_LIBRARY_PATH as entries: each template appends the inherited value its
    own way, never with an empty entry (an empty LD_LIBRARY_PATH entry means the current folder)."""
    if not isinstance(env, Mapping):
        raise _bad("env", env, "an object of NAME: value")
    out: list[tuple[str, str]] = []
    library_path: tuple[str, ...] = ()
    for name, value in env.items():
        checked("env-name", name, "env key")
        if not isinstance(value, str):
            raise _bad(f"env.{name}", value, "a string")
        if name == "LD_LIBRARY_PATH":
            entries = [e for e in value.split(":") if e not in ("", "${LD_LIBRARY_PATH}", "$LD_LIBRARY_PATH")]
            library_path = tuple(checked("path", e, "env.LD_LIBRARY_PATH entry") for e in entries)
        else:
            out.append((name, checked("env-value", value, f"env.{name}")))
    return tuple(sorted(out)), library_path


def _target(target: object, plan: Mapping[str, Any]) -> Target:
    if not isinstance(target, Mapping):
        raise _bad("target", target, "an object")
    arch = ARCHES.get(str(target.get("arch") or "x86_64"))
    if arch is None:
        raise _bad("target.arch", target.get("arch"), "x86_64 or aarch64")
    platform = target.get("platform") or ""
    if platform:
        checked("word", platform, "target.platform")
    gpus = target.get("gpus") or []
    if not isinstance(gpus, list) or not all(isinstance(g, str) for g in gpus):
        raise _bad("target.gpus", gpus, "a list of GPU names")
    # The raw GPU name never reaches a file: only the matrix row it matches.
    model = next((m for m in (gpu_model(g) for g in gpus) if m), "")
    cc = target.get("compute_capability") or next((c for c in (gpu_cc(g) for g in gpus) if c), "")
    if cc:
        checked("version", cc, "target.compute_capability")
    memory = target.get("gpu_memory_mib") or 0
    if not isinstance(memory, int) or isinstance(memory, bool) or memory < 0:
        raise _bad("target.gpu_memory_mib", memory, "a whole number of MiB")
    driver_cuda = target.get("driver_cuda") or ""
    if driver_cuda:
        checked("version", driver_cuda, "target.driver_cuda")
    keeps = target.get("keeps_preinstalled", False)
    if not isinstance(keeps, bool):
        raise _bad("target.keeps_preinstalled", keeps, "true or false")
    gpu = plan.get("device") == "cuda"
    return Target(arch, str(platform), model if gpu else "", str(cc) if gpu else "", memory if gpu else 0,
                  str(driver_cuda), keeps)
