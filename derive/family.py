"""torchaudio, torchvision and torchcodec: one row per release, paired with torch from the binaries.

Requires-Dist says which torch a build accepts; the dynamic symbols say which torch it can load. For each
release the native libraries of its Linux x86_64 wheel are read (DT_NEEDED, undefined symbols), and each torch
release its Requires-Dist admits is checked: do the libraries of that torch's PyPI Linux x86_64 wheel export
every torch symbol the build imports? The answer is `torch_abi` (a specifier over the checked releases), with
the releases checked and, for the nearest ones excluded, the symbols they lack."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

from envsolve.derive import _pyast
from envsolve.derive._binary import (
    AbiResult,
    cuda_sonames,
    example,
    symbol_hash,
    torch_abi,
    torch_imports,
    unpack_hashes,
    wheel_elves,
)
from envsolve.derive._common import artifact_fields, index_fields, pick_wheel, requirement
from envsolve.derive._context import DeriveContext
from envsolve.derive._index import Dist
from envsolve.derive._toml import Derived, ordered
from envsolve.derive._wheel import RemoteWheel

__all__ = ["FIRST_TORCH", "Consumer", "consumers", "derive_torchaudio", "derive_torchcodec", "derive_torchvision",
           "torch_lib", "torch_wheels"]

FIRST_TORCH = Version("2.0.0")
FIRST = {"torchaudio": Version("2.0.0"), "torchvision": Version("0.15.0"), "torchcodec": Version("0.dev0")}
CHECKED = "envsolve matrices refresh read this wheel's METADATA and shared objects by HTTP range requests on {}"
ABI_HOW = ("torch_abi: the dynamic symbols its shared objects import, looked up in the libraries (DT_NEEDED closure "
           "in torch/lib) of each checked torch release's PyPI Linux x86_64 wheel (artifacts in torch.toml)")


@dataclass
class Consumer:
    project: str
    version: Version
    files: list[Dist]
    wheel: Dist | None
    meta: Any = None
    requires: Requirement | None = None
    requires_line: str | None = None
    elves: dict[str, dict[str, Any]] = field(default_factory=dict)
    linking: list[str] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)
    libs: list[str] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    present: dict[str, set[str]] = field(default_factory=dict)
    abi: AbiResult | None = None

    @property
    def yanked(self) -> bool:
        return bool(self.files) and all(f.yanked for f in self.files)

    def admits(self, torch: str) -> bool:
        """Requires-Dist and the binaries both admit this torch release (unknown binaries: Requires-Dist only)."""
        spec_ok = self.requires is None or self.requires.specifier.contains(torch, prereleases=True)
        return spec_ok and (self.abi is None or torch in self.abi.admitted)

    def built_for(self) -> str | None:
        """The torch release this build is for: its exact pin, else the newer of its Requires-Dist lower bound and
        its ABI floor (torchaudio 2.11.1: torch>=2.11, ABI >=2.12.0 -> 2.12.0)."""
        specs = list(self.requires.specifier) if self.requires else []
        exact = [s.version for s in specs if s.operator in ("==", "===") and "*" not in s.version]
        if exact:
            return exact[0]
        floors = [Version(s.version) for s in specs if s.operator == ">="]
        if self.abi and self.abi.admitted:
            floors.append(Version(self.abi.admitted[0]))
        if not floors:
            return None
        floor = max(floors)
        return next((t for t in sorted(self.candidates, key=Version) if Version(t) >= floor), None)


def torch_wheels(ctx: DeriveContext) -> dict[str, Dist]:
    """torch release -> its PyPI Linux x86_64 wheel (cp311 where there is one), from 2.0.0 on."""
    def pick() -> dict[str, Dist]:
        out = {}
        for version, files in ctx.releases("torch").items():
            wheel = pick_wheel(files)
            if version >= FIRST_TORCH and wheel is not None and not all(f.yanked for f in files):
                out[str(version)] = wheel
        return out

    return ctx.once("torch-wheels", pick)


def torch_lib(ctx: DeriveContext, release: str, lib: str) -> dict[str, Any] | None:
    """ELF facts (needed, export hashes; arch flags for libtorch_python) of torch/lib/<lib> in that release."""
    dist = torch_wheels(ctx).get(release)
    if dist is None:
        return None
    wheel = ctx.once(f"wheel:{dist.url}", lambda: RemoteWheel(ctx.fetcher, dist))
    member = f"torch/lib/{lib}"
    if member not in wheel.members:
        return None
    extra = "arch/2" if lib == "libtorch_python.so" else ""  # /2: flags not preceded by a NUL count too
    found = wheel_elves(wheel, ctx.facts, ctx.progress, names=[member], exports="hashes", extra=extra)
    return found.get(member)


def torch_closure(ctx: DeriveContext, release: str, libs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The torch libraries `libs` load (DT_NEEDED, transitively, inside torch/lib)."""
    out: dict[str, dict[str, Any]] = {}
    todo = list(libs)
    while todo:
        lib = todo.pop()
        if lib in out:
            continue
        facts = torch_lib(ctx, release, lib)
        if facts is None or "error" in facts:
            continue
        out[lib] = facts
        todo += [n for n in facts["needed"] if n not in out]
    return out


def _consumer(ctx: DeriveContext, project: str, version: Version, files: list[Dist],
              torches: Sequence[str]) -> Consumer:
    c = Consumer(project, version, files, pick_wheel(files))
    if c.wheel is None:
        return c
    c.meta = ctx.metadata(c.wheel)
    c.requires, c.requires_line = requirement(c.meta, "torch")
    wheel = RemoteWheel(ctx.fetcher, c.wheel)
    c.elves = wheel_elves(wheel, ctx.facts, ctx.progress)
    c.linking, c.imports, c.libs = torch_imports(c.elves)
    if c.linking:
        c.candidates = [t for t in torches if c.requires is None or c.requires.specifier.contains(t, prereleases=True)]
    return c


def consumers(ctx: DeriveContext) -> dict[str, list[Consumer]]:
    """Every torchaudio/torchvision/torchcodec release with its binary pairing (computed once per run)."""
    return ctx.once("family", lambda: _consumers(ctx))


def _consumers(ctx: DeriveContext) -> dict[str, list[Consumer]]:
    torches = sorted(torch_wheels(ctx), key=Version)
    out: dict[str, list[Consumer]] = {}
    for project, first in FIRST.items():
        releases = [(v, fs) for v, fs in ctx.releases(project, pre=project == "torchcodec").items() if v >= first]
        ctx.progress.say(f"{project}: {len(releases)} releases")
        out[project] = [_consumer(ctx, project, v, fs, torches) for v, fs in releases]
    everyone = [c for cs in out.values() for c in cs if c.candidates]
    wheels = torch_wheels(ctx)
    # What each build finds in each torch release is a fact of the two files: cached by both sha256s, so a run
    # that has seen them reads no torch library at all.
    for c in everyone:
        for release in c.candidates:
            key = f"abi-present/1:{wheels[release].sha256}"
            found = ctx.facts.peek(c.wheel.sha256 if c.wheel else "", key)
            if found is not None:
                c.present[release] = set(found)
    for n, release in enumerate(torches, 1):
        waiting = [c for c in everyone if release in c.candidates and release not in c.present]
        if not waiting:
            continue
        ctx.progress.say(f"torch {release} ({n}/{len(torches)}): exported symbols, for {len(waiting)} builds")
        groups: dict[tuple[str, ...], list[Consumer]] = {}
        for c in waiting:
            groups.setdefault(tuple(c.libs), []).append(c)
        for libs, group in groups.items():
            closure = torch_closure(ctx, release, libs)
            provided: set[int] = set()
            for facts in closure.values():
                provided |= unpack_hashes(facts["export_hashes"])
            for c in group:
                present = sorted(s for s in c.imports if symbol_hash(s) in provided)
                key = f"abi-present/1:{wheels[release].sha256}"
                def keep(p: list[str] = present) -> list[str]:
                    return p

                c.present[release] = set(ctx.facts.get(c.wheel.sha256 if c.wheel else "", key, keep))
    for c in everyone:
        c.abi = torch_abi(c.imports, c.present)
    return out


def companions(ctx: DeriveContext, project: str) -> dict[str, Consumer]:
    """torch release -> the newest non-yanked release of `project` for it: one built for it (its exact pin, else
    its floor) that its binaries load with, or one that declares an open range (torchaudio 2.11.1: torch>=2.11, "or
    newer, including all future releases") from a floor at or below it, whose binaries load with it too. A build
    pinned exactly, or declaring nothing, is not paired with later torch releases: finding its symbols there does not
    make a C++ ABI stable."""
    out: dict[str, Consumer] = {}
    torches = sorted(torch_wheels(ctx), key=Version)
    for c in consumers(ctx)[project]:
        target = c.built_for()
        if c.wheel is None or c.yanked or target is None:
            continue
        specs = list(c.requires.specifier) if c.requires else []
        open_range = bool(specs) and not any(s.operator in ("==", "===", "<", "<=", "~=") for s in specs)
        later = [t for t in torches if Version(t) > Version(target)] if open_range else []
        for torch in [target, *later]:
            if c.admits(torch) and (torch not in out or out[torch].version < c.version):
                out[torch] = c
    return out


# ---------------------------------------------------------------- shared row parts


def binary_fields(c: Consumer, torches: Mapping[str, Dist]) -> tuple[dict[str, Any], list[str], list[str]]:
    """torch_requires, torch_abi*, cuda_sonames; the evidence lines; notes."""
    row: dict[str, Any] = {}
    evidence = [c.requires_line or f"no Requires-Dist on torch in {c.wheel.filename if c.wheel else '?'} METADATA"]
    notes: list[str] = []
    if c.requires is not None:
        row["torch_requires"] = str(c.requires.specifier) or None
    row["cuda_sonames"] = cuda_sonames(c.elves) if c.elves else None
    if not c.elves:
        return row, evidence, notes
    errors = [f"{n}: {e['error']}" for n, e in c.elves.items() if "error" in e]
    notes += [f"unreadable ELF {e}" for e in errors]
    if not c.linking:
        notes.append("its shared objects link no torch library")
        return row, evidence, notes
    members = ", ".join(n.rsplit("/", 1)[-1] for n in c.linking)
    linked = sorted({x for n in c.linking for x in c.elves[n]["needed"]})
    torch_cuda = [x for x in linked if x in c.libs or x in row["cuda_sonames"]]
    evidence.append(f"DT_NEEDED of {members}: {', '.join(torch_cuda)}")
    abi = c.abi
    if abi is None or not abi.checked:
        notes.append("no torch release on the index is admitted by its Requires-Dist: torch_abi not checked")
        return row, evidence, notes
    row["torch_abi"] = abi.spec
    row["torch_abi_checked"] = abi.checked
    nearest = _nearest_excluded(abi)
    row["torch_abi_missing"] = {r: example(abi.missing[r]) for r in nearest} or None
    row["torch_symbols"] = abi.counted
    for r in nearest:
        wheel = torches[r].filename if r in torches else "?"
        evidence.append(f"torch {r} ({wheel}) lacks {len(abi.missing[r])} of the {abi.counted} torch symbols it "
                        "imports: "
                        f"{', '.join(example(abi.missing[r]))}")
    if not abi.admitted:
        notes.append(f"no checked torch release ({abi.checked[0]}..{abi.checked[-1]}) exports every torch symbol "
                     "it imports")
    return row, evidence, notes


def _nearest_excluded(abi: AbiResult) -> list[str]:
    """The excluded releases next to the admitted range (just below its floor, just above its top)."""
    excluded = sorted(abi.missing, key=Version)
    if not abi.admitted:
        return [min(excluded, key=lambda r: (len(abi.missing[r]), Version(r)))] if excluded else []
    low, high = Version(abi.admitted[0]), Version(abi.admitted[-1])
    below = [r for r in excluded if Version(r) < low]
    above = [r for r in excluded if Version(r) > high]
    inside = [r for r in excluded if low < Version(r) < high]
    return sorted({*below[-1:], *above[:1], *inside}, key=Version)


def finish(row: dict[str, Any], fields: Sequence[str], notes: list[str], evidence: list[str], source: str,
           checked: str) -> dict[str, Any]:
    row["evidence"] = evidence
    row["note"] = "; ".join(n for n in notes if n) or None
    row["source"] = source
    row["checked"] = checked
    return ordered(row, fields)


def _base(c: Consumer, python: bool = True) -> tuple[dict[str, Any], list[str]]:
    facts = index_fields(c.files, python=python)
    notes = [facts.pop("_note")] if "_note" in facts else []
    row: dict[str, Any] = {"version": str(c.version), **facts}
    row["platforms"] = linux_platforms(c)
    if c.meta is not None and c.meta.get("Requires-Python"):
        row["python_requires"] = c.meta["Requires-Python"]
    return row, notes


def linux_platforms(c: Consumer) -> list[str] | None:
    """The machine architectures the release has Linux wheels for (index file names), None when it has none."""
    linux = [f.filename for f in c.files if f.is_wheel and "linux" in f.filename]
    return sorted({a for n in linux for a in ("x86_64", "aarch64") if a in n}) or None


# ---------------------------------------------------------------- torchaudio

TORCHAUDIO_FIELDS = ("version", "released", "yanked", "yanked_reason", "python", "python_requires", "platforms",
                     "torch", "torch_requires", "torch_abi", "torch_abi_checked", "torch_abi_missing", "torch_symbols",
                     "cuda_sonames", "exports", "deprecated", "removed", "artifact", "sha256", "evidence", "note",
                     "source", "checked")


def torchaudio_api(ctx: DeriveContext, dist: Dist) -> dict[str, Any]:
    """What `import torchaudio` exposes of the watched I/O names (ast over the wheel's torchaudio/*.py)."""
    def read() -> dict[str, Any]:
        wheel = RemoteWheel(ctx.fetcher, dist)
        names = [n for n in wheel.names() if n.startswith("torchaudio/") and n.endswith(".py")]
        pkg = _pyast.Package(_pyast.parse_sources(wheel.read_many(names)))
        watched = _pyast.WATCHED
        static = {n for n in watched if pkg.binding("torchaudio", n) is not None}
        mods = [pkg.trees[m] for m in pkg.closure("torchaudio")]
        targets = {_pyast.dotted(t) for tree in mods for n in _walk_assign(tree) for t in n.targets}
        assigned = {n for n in watched if f"torchaudio.{n}" in targets}
        exports = static | assigned
        deprecated = {n for n in exports - {"backend"} if pkg.deprecated("torchaudio", n)}
        if "backend" in exports and pkg.warns_on_access("torchaudio.backend"):
            deprecated.add("backend")
        notes = []
        if assigned - static:
            notes.append(f"{', '.join(sorted(assigned))} are assigned onto the module by backend initialisation")
        load = pkg.binding("torchaudio", "load")
        import ast

        if isinstance(load, ast.FunctionDef) and any("torchcodec" in _pyast.dotted(c) for c in ast.walk(load)):
            notes.append("load()/save() are wrappers over load_with_torchcodec: torchcodec must be installed")
        if "torchaudio.backend.common" in pkg.trees:
            notes.append("torchaudio.backend.common (pyannote 3.0/3.1 import AudioMetaData from it) exists")
        else:
            notes.append("no torchaudio.backend package")
        # Module-precise names under torchaudio.backend (what `from torchaudio.backend.common import X` needs).
        # Public modules only; a name counts when the module binds it or hands it out from a module-level
        # __getattr__ (PEP 562: torchaudio 2.1-2.8's backend.common shim, with a deprecation warning).
        subs = sorted(m.removeprefix("torchaudio.") for m in pkg.trees if m.startswith("torchaudio.backend.")
                      and not any(part.startswith("_") for part in m.split(".")))
        deep = [x for sub in subs for x in (sub, *(f"{sub}.{n}" for n in watched
                                                 if pkg.binding(f"torchaudio.{sub}", n) is not None
                                                 or _lazy_attribute(pkg.trees[f"torchaudio.{sub}"], n)))]
        return {"exports": [n for n in watched if n in exports] + deep,
                "deprecated": [n for n in watched if n in deprecated], "notes": notes}

    return ctx.facts.get(dist.sha256, "torchaudio-api/3", read)


def _lazy_attribute(tree: Any, name: str) -> bool:
    """Does a module-level `def __getattr__(name)` hand out `name` (compared against it, or imported)?"""
    import ast

    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            for inner in ast.walk(node):
                if isinstance(inner, ast.Constant) and inner.value == name:
                    return True
                if isinstance(inner, ast.ImportFrom) and any((a.asname or a.name) == name for a in inner.names):
                    return True
    return False


def _api_order(name: str) -> tuple[int, str]:
    """Top-level watched names in WATCHED order, then the submodule ones by name."""
    return (_pyast.WATCHED.index(name), "") if name in _pyast.WATCHED else (len(_pyast.WATCHED), name)


def _walk_assign(tree: Any) -> list[Any]:
    import ast

    return [n for n in ast.walk(tree) if isinstance(n, ast.Assign)]


def derive_torchaudio(ctx: DeriveContext) -> Derived:
    rows = []
    ever: set[str] = set()
    for c in consumers(ctx)["torchaudio"]:
        if c.wheel is None:
            continue
        row, notes = _base(c)
        if c.requires is not None and [s.operator for s in c.requires.specifier] == ["=="]:
            row["torch"] = next(iter(c.requires.specifier)).version
        if c.requires is None:
            notes.append("METADATA has no Requires-Dist on torch at all")
        binary, evidence, bnotes = binary_fields(c, torch_wheels(ctx))
        row.update(binary)
        api = torchaudio_api(ctx, c.wheel)
        row["exports"], row["deprecated"] = api["exports"], api["deprecated"]
        row["removed"] = [n for n in sorted(ever, key=_api_order) if n not in api["exports"]]
        ever |= set(api["exports"])
        row.update(artifact_fields(c.wheel))
        source = (f"{c.wheel.url}: METADATA Requires-Dist; torchaudio/__init__.py and the modules it imports, "
                  f"parsed with ast; {ABI_HOW}")
        rows.append(finish(row, TORCHAUDIO_FIELDS, notes + bnotes + api["notes"], evidence, source,
                           CHECKED.format(ctx.today)))
    what = (f"Watched: {', '.join(_pyast.WATCHED)}; exports also lists the torchaudio.backend.* modules and the "
            "watched names each binds (backend.common.AudioMetaData). removed = exported by an earlier release "
            "but not this one.\n"
            "torch = the exact Requires-Dist pin; torch_requires = the whole Requires-Dist spec on torch.\n" + ABI_DOC)
    return Derived("torchaudio", "torchaudio: torch pairing (Requires-Dist and binary), CUDA sonames and the I/O API "
                   "surface of `import torchaudio` per release", ["version"], "version", header(what, "torchaudio"),
                   rows)


ABI_DOC = """torch_abi = the checked torch releases (torch_abi_checked: those its Requires-Dist admits) whose PyPI Linux
x86_64 libraries export every torch symbol its shared objects import; torch_abi_missing = for the nearest
releases excluded, symbols they lack (torch_symbols = how many torch symbols it imports). cuda_sonames = CUDA
libraries its shared objects link (DT_NEEDED). Read from the cp311 (else py3/abi3, else newest) Linux x86_64 wheel.
yanked/yanked_reason: PEP 592, from the index; python: CPython X.Y of the Linux x86_64 wheels' tags (absent for
py3-none wheels: python_requires says it); platforms: the machine architectures of its Linux wheels (file names).
artifact/sha256: the wheel read (sha256 as the index lists it)."""


def header(what: str, name: str = "") -> str:
    target = f" {name}" if name else ""
    return (f"generated by envsolve matrices refresh{target}; check with: envsolve matrices verify{target}\n"
            f"{what}\nAbsent field = unknown or not required; a spec of \"\" = required without a version constraint.")


# ---------------------------------------------------------------- torchvision

TORCHVISION_FIELDS = ("version", "released", "yanked", "yanked_reason", "python", "python_requires", "platforms",
                      "torch",
                      "torch_requires", "torch_abi", "torch_abi_checked", "torch_abi_missing", "torch_symbols",
                      "cuda_sonames", "artifact", "sha256", "evidence", "note", "source", "checked")


def derive_torchvision(ctx: DeriveContext) -> Derived:
    rows = []
    for c in consumers(ctx)["torchvision"]:
        if c.wheel is None:
            continue
        row, notes = _base(c)
        if c.requires is not None and [s.operator for s in c.requires.specifier] == ["=="]:
            row["torch"] = next(iter(c.requires.specifier)).version
        binary, evidence, bnotes = binary_fields(c, torch_wheels(ctx))
        row.update(binary)
        row.update(artifact_fields(c.wheel))
        source = f"{c.wheel.url}: METADATA Requires-Dist; {ABI_HOW}"
        rows.append(finish(row, TORCHVISION_FIELDS, notes + bnotes, evidence, source, CHECKED.format(ctx.today)))
    what = "torch = the exact Requires-Dist pin; torch_requires = the whole Requires-Dist spec on torch.\n" + ABI_DOC
    return Derived("torchvision", "torchvision: torch pairing (Requires-Dist and binary) and CUDA sonames per release",
                   ["version"], "version", header(what, "torchvision"), rows)


# ---------------------------------------------------------------- torchcodec

TABLE_ROW = re.compile(r"^\|\s*`(\d+(?:\.\d+)+)`\s*\|\s*`([^`]+)`\s*\|", re.M)
CORE_LIB = re.compile(r"torchcodec/libtorchcodec(_core|_decoder)?(\d+)\.so")
TORCHCODEC_FIELDS = ("version", "released", "yanked", "yanked_reason", "torch", "python_requires", "python",
                     "platforms", "ffmpeg_majors", "cuda", "cuda_major", "torch_abi", "torch_abi_checked",
                     "torch_abi_missing", "torch_symbols", "cuda_sonames", "artifact", "sha256", "evidence", "note",
                     "source", "checked")


def _version_py(ctx: DeriveContext, c: Consumer) -> str:
    def read() -> str:
        wheel = RemoteWheel(ctx.fetcher, c.wheel)  # type: ignore[arg-type]
        name = "torchcodec/version.py"
        return wheel.read(name).decode() if name in wheel.members else ""

    return ctx.facts.get(c.wheel.sha256 if c.wheel else "", "torchcodec-version/1", read)


def derive_torchcodec(ctx: DeriveContext) -> Derived:
    tables: dict[str, dict[str, str]] = {}
    scanned: list[tuple[dict[str, Any], list[str], list[str], str, Consumer]] = []
    for c in consumers(ctx)["torchcodec"]:
        row, notes = _base(c, python=False)
        if c.wheel is None:
            scanned.append((row, ["no Linux wheel on the index (sdist only)"], [], "", c))
            continue
        tables[str(c.version)] = dict(TABLE_ROW.findall(str(c.meta.get_payload())))
        linux = [f.filename for f in c.files if f.is_wheel and "linux" in f.filename]
        tags = {m.group(1) for n in linux if (m := re.search(r"-cp\d+-cp(\d+t?)-", n))}
        row["python"] = [f"{t[0]}.{t[1:]}" for t in sorted(tags, key=lambda t: (int(t.rstrip("t")), t))] or None
        members = RemoteWheel(ctx.fetcher, c.wheel).names() if not c.elves else list(c.elves)
        libs = {int(m.group(2)): n for n in members if (m := CORE_LIB.fullmatch(n))}
        row["ffmpeg_majors"] = [str(k) for k in sorted(libs)]
        needed = c.elves.get(libs[max(libs)], {}).get("needed", []) if libs else []
        cudart = [n for n in needed if n.startswith("libcudart.so.")]
        row["cuda"] = bool(cudart) or any(n.startswith(("libtorch_cuda", "libc10_cuda")) for n in needed)
        row["cuda_major"] = cudart[0].rsplit(".", 1)[1] if cudart else None
        if (local := re.search(r"__version__ = '([^']+)'", _version_py(ctx, c))) and "+" in local.group(1):
            notes.append(f"torchcodec/version.py says {local.group(1)}")
        if row["cuda"]:
            cuda_libs = ", ".join(n for n in needed if "cuda" in n or "nvrtc" in n)
            notes.append(f"the core library links {cuda_libs}: it needs a CUDA build of torch")
        binary, evidence, bnotes = binary_fields(c, torch_wheels(ctx))
        binary.pop("torch_requires", None)
        row.update(binary)
        row.update(artifact_fields(c.wheel))
        lib = libs[max(libs)].rsplit("/", 1)[1] if libs else "?"
        src = (f"{c.wheel.url}: file list (one libtorchcodec*<N>.so per FFmpeg major), ELF DT_NEEDED of {lib}; "
               f"index file names for python/platforms; {ABI_HOW}")
        scanned.append((row, notes + bnotes, evidence, src, c))
    rows = []
    for row, notes, evidence, src, c in scanned:
        v = c.version
        series = {f"{v.major}.{v.minor}", str(v)}
        order = [str(v)] * bool(src) + sorted(tables, key=Version, reverse=True)
        where = next((r for r in order if any(s in series for s in tables[r])), None)
        if where is not None:
            key, row["torch"] = next((s, t) for s, t in tables[where].items() if s in series)
            src += f"; torch from the README table in the {where} wheel's METADATA (`{key}` row)"
            evidence.insert(0, f"README table in torchcodec {where} METADATA: | `{key}` | `{row['torch']}` |")
        elif src:
            notes.append("no README compatibility table names this release; torch left unknown")
        if src:
            rows.append(finish(row, TORCHCODEC_FIELDS, notes, evidence, src, CHECKED.format(ctx.today)))
        else:
            url = ctx.index.project_url("torchcodec")
            rows.append(finish(row, TORCHCODEC_FIELDS, notes, [f"{url}: {len(c.files)} file(s), no wheel"], url,
                               f"envsolve matrices refresh read the index on {ctx.today}"))
    what = ("torch = the pairing the README compatibility table states; ffmpeg_majors: the shipped "
            "libtorchcodec*<N>.so; cuda: DT_NEEDED of the chosen wheel.\n" + ABI_DOC)
    return Derived("torchcodec", "torchcodec: torch pairing (README table and binary), FFmpeg majors, platforms and "
                   "CUDA per release", ["version"], "version", header(what, "torchcodec"), rows)
