"""The check direction: evaluate every requirement of a set of candidates.

`doctor` calls this on what is installed; the planner calls it on partial stacks while it
searches, so a plan is exactly a stack that `doctor` passes.
"""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envsolve.resolver.host import Host
from envsolve.resolver.loadorder import TORCH_LOADED, LoaderView
from envsolve.resolver.model import Candidate, Finding, LibraryNeed, Provide, Require

__all__ = ["CheckResult", "check", "satisfies"]


@dataclass
class CheckResult:
    findings: list[Finding] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # requirements that could not be decided

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def satisfies(version: str | None, spec: str) -> bool:
    """Does a version meet a PEP 440 specifier? Unknown or unparsable versions do not."""
    if version is None:
        return False
    try:
        return Version(version) in SpecifierSet(spec, prereleases=True)
    except (InvalidVersion, InvalidSpecifier):
        return False


def _older(version: str | None, minimum: str) -> bool:
    try:
        return version is not None and Version(version) < Version(minimum)
    except InvalidVersion:
        return False


def check(
    candidates: Sequence[Candidate],
    host: Host | None = None,
    settled: Callable[[str], bool] | None = None,
    *,
    torch_first: bool = False,
) -> CheckResult:
    """Every unmet requirement among `candidates`, as findings.

    `settled(capability)` says whether every possible provider of a capability is already in
    the set; requirements on unsettled capabilities are skipped (the planner's partial stacks).
    `torch_first`: the workload's process imports torch before ctranslate2 loads its libraries.
    """
    index: dict[str, list[tuple[Candidate, Provide]]] = defaultdict(list)
    for candidate in candidates:
        for provide in candidate.provides:
            index[provide.capability].append((candidate, provide))
    view = LoaderView.of(host, torch_first=torch_first)
    result = CheckResult()
    for candidate in candidates:
        for require in candidate.requires:
            if settled is not None and not settled(require.capability):
                continue
            # A consumer may bring its own library (torch's nvidia-* pins); nothing else satisfies itself.
            providers = [p for c, p in index.get(require.capability, [])
                         if c is not candidate or require.library is not None]
            gate_open = require.gate is None or bool(index.get(require.gate))
            finding = _evaluate(candidate, require, providers, view, result, index, gate_open)
            if finding is not None:
                result.findings.append(finding)
    return result


def _evaluate(
    candidate: Candidate,
    require: Require,
    providers: list[Provide],
    view: LoaderView,
    result: CheckResult,
    index: Mapping[str, list[tuple[Candidate, Provide]]],
    gate_open: bool = True,
) -> Finding | None:
    def finding(message: str, evidence: Iterable[str], code: str | None = None,
                culprits: Iterable[str] = (), **fix: str) -> Finding:
        return Finding(
            code=code or require.code,
            severity=require.severity,
            subject=candidate.label,
            message=message,
            evidence=tuple(evidence),
            fix=require.fix.format_map(_Blank(fix)),
            source=require.source,
            culprits=(candidate.name, *culprits),
        )

    owners = [p.detail.get("owner", "") for p in providers]
    if require.forbid:
        if providers:
            return finding(require.why, [p.describe() for p in providers], culprits=owners)
        return None
    if require.library is not None:
        loaded = [p for _, p in index.get(f"{TORCH_LOADED}{require.library.name}", [])]
        return _evaluate_library(require, require.library, providers, view, result, finding, loaded)
    if not providers:
        if require.absent == "fail" and gate_open:
            return finding(require.why, [_absence(require.capability)], culprits=[require.capability])
        result.unknown.append(f"{candidate.label}: {require.why} (unknown: no {require.capability} known)")
        return None
    good = [p for p in providers if _meets(p, require)]
    if not good or (require.every and len(good) < len(providers)):
        bad = [p for p in providers if p not in good]
        if (require.spec is not None or require.allowed is not None) and any(p.version is None for p in bad):
            # Installed, version unknown: the rule needs the version, so it was not checked.
            unknown = ", ".join(p.describe() for p in bad if p.version is None)
            result.unknown.append(f"{candidate.label}: {require.why} (unknown: {unknown})")
            return None
        return finding(require.why, [f"found {p.describe()}" for p in bad], culprits=owners,
                       have=", ".join(p.version or "?" for p in bad))
    return None


def _absence(capability: str) -> str:
    """How a missing capability reads to a user."""
    kind, _, name = capability.partition(":")
    if kind == "pkg":
        return f"{name} is not in the stack"
    if kind == "api":
        return f"{name} does not exist in the installed release"
    return {"cuda-driver": "no NVIDIA driver answers on this host",
            "ffmpeg-libs": "no FFmpeg shared libraries (libavutil) were found",
            "hf:use_auth_token": "the installed huggingface_hub does not accept use_auth_token"}.get(
        capability, f"nothing provides {capability}")


def _meets(provide: Provide, require: Require) -> bool:
    if require.spec is not None and not satisfies(provide.version, require.spec):
        return False
    return require.allowed is None or provide.version in require.allowed


def _evaluate_library(
    require: Require,
    need: LibraryNeed,
    providers: list[Provide],
    view: LoaderView,
    result: CheckResult,
    finding: Callable[..., Finding],
    torch_loads: Sequence[Provide] = (),
) -> Finding | None:
    base = require.code.removesuffix("-missing")
    # Whoever could provide this library shares the blame, even when nothing provides it yet.
    owners = [p.detail.get("owner", "") for p in providers] + [require.capability]
    finding = functools.partial(finding, culprits=owners)
    same_major = [p for p in providers if _major(p) == need.major and _same_cuda(p, need)]
    others = [p for p in providers if _major(p) != need.major]
    label = f"{need.name} {need.major}" + (f" (>= {need.min_version})" if need.min_version else "")
    link = view.probed(need)
    searched: list[str] = []
    if link is not None:
        picked = next((p for p in same_major if p.detail.get("path") == link.resolved), None)
        order = [(picked, f"the loader ({link.via or 'probed'})")] if picked else []
        if link.resolved and not picked:
            return None  # the loader found a copy we have no record of; trust the probe
        searched = [f"{need.consumer} asks for {link.needs} ({link.how}): the loader tried "
                    + (", ".join(link.searched[:12]) or "nothing") + (" ..." if len(link.searched) > 12 else "")]
    else:
        order = view.order(same_major, need, torch_loads)
    if not providers:
        if view.complete:
            # The list is every copy the host has (the probe searched where the loader would): absence
            # is known, and it is the most common failure of all ("libcublas.so.12 is not found").
            return finding(f"{need.consumer} loads {label}, and no copy exists on this host.",
                           [f"no {need.name} library of any major found", *(searched or [view.places(need)])])
        result.unknown.append(f"{need.consumer}: needs {label}; no {need.name} libraries known on this host")
        return None
    if not order and view.torch_pick(same_major, need, torch_loads) is not None:
        pass  # only torch's copy is reachable, and only by luck of order: cudnn-load-order, below
    elif not order:
        if same_major:
            return finding(
                f"{need.consumer} loads {label}; a copy exists but the loader will not find it for {need.consumer}.",
                [f"present but not searched: {p.describe()}" for p in same_major] + searched
                + [f"LD_LIBRARY_PATH={':'.join(view.ld_library_path) or '(empty)'}"],
                code=f"{base}-not-on-loader-path",
                dirs=_where(same_major),
            )
        other_cuda = [p for p in providers if _major(p) == need.major and not _same_cuda(p, need)]
        if other_cuda:
            # A copy of the major exists, built for another CUDA: saying "no copy exists" would send the user
            # looking for one, when the clash is the CUDA build (and, from pip, the one folder both wheels use).
            built = sorted({str(p.detail.get("cuda_major")) for p in other_cuda})
            return finding(
                f"{need.consumer} is a CUDA {need.cuda_major} build and loads {label} built for CUDA "
                f"{need.cuda_major}; the {need.name} {need.major} here is built for CUDA {', '.join(built)}.",
                [f"other CUDA build: {p.describe()} (CUDA {p.detail.get('cuda_major')})" for p in other_cuda]
                + _pip_clash(need, other_cuda) + searched,
            )
        clash = _pip_clash(need, others)
        return finding(
            f"{need.consumer} loads {label}, and no copy of major {need.major} exists"
            + (f" in this environment (pip has one, but not beside this torch's {need.name} wheel)." if clash else "."),
            ([f"other major: {p.describe()}" for p in others] or [f"no {need.name} library found"]) + clash + searched,
        )
    order_dependent = _load_order(need, same_major, order, view, torch_loads)
    if order_dependent is not None:
        return finding(*order_dependent, code="cudnn-load-order")
    picked, why = order[0]
    mixed = _mixed_cudnn(need, same_major, order, view)
    if mixed is not None:
        shim, subs = mixed
        return finding(
            f"{need.consumer} loads the cuDNN {need.major} shim {shim.describe()} through its RPATH, but the shim's "
            f"sub-libraries come from {subs.describe()} (LD_LIBRARY_PATH is searched before the shim's "
            "RUNPATH=$ORIGIN): two cuDNN versions in one process fail with CUDNN_STATUS_VERSION_MISMATCH.",
            [f"shim (libcudnn.so.{need.major}) via torch's RPATH: {shim.describe()}",
             f"sub-libraries via LD_LIBRARY_PATH: {subs.describe()}",
             f"LD_LIBRARY_PATH={':'.join(view.ld_library_path) or '(empty)'}"],
            code=f"{base}-shadowed",
            dirs=f" The other copy is in {os.path.dirname(subs.detail.get('path', ''))}.",
        )
    if need.min_version and _older(picked.version, need.min_version):
        newer = [p for p in same_major if p is not picked and not _older(p.version, need.min_version)]
        code = f"{base}-shadowed" if newer else f"{base}-too-old"
        return finding(
            f"{need.consumer} needs {label}, but the loader picks {picked.describe()} first (via {why}).",
            [f"picked first: {picked.describe()} via {why}"]
            + [f"also present: {p.describe()}" for p in same_major if p is not picked],
            code=code,
            dirs=_where(newer),
        )
    return None


def _load_order(need: LibraryNeed, same_major: list[Provide], order: list[tuple[Provide, str]],
                view: LoaderView, torch_loads: Sequence[Provide]) -> tuple[str, list[str]] | None:
    """A consumer with its own cuDNN front in a process that imports torch first: (message, evidence) when what its
    front's dlopen of the sub-libraries returns depends on whether torch ran a cuDNN operation before it."""
    torch = view.torch_pick(same_major, need, torch_loads)
    if torch is None or need.front is None:  # torch_pick answers only for a consumer with its own front
        return None
    theirs, how = torch
    front = (f"{need.consumer}'s own cuDNN {need.front} front (grafted into its wheel under a renamed SONAME) dlopens "
             f"libcudnn_cnn.so.{need.front}, .{'.'.join(need.front.split('.')[:2])}, .{need.major} through the "
             "ordinary search (LD_LIBRARY_PATH, the ld.so cache, the default directories)")
    evidence = [f"torch's front libcudnn.so.{need.major} is loaded at import; its sub-libraries come from "
                f"{theirs.describe()} ({how}) at torch's first cuDNN call",
                f"LD_LIBRARY_PATH={':'.join(view.ld_library_path) or '(empty)'}",
                "ctranslate2 wheel ELF: libctranslate2 DT_NEEDED libcudnn-<hash>.so.<front>; the front's strings "
                "name libcudnn_{adv,cnn,graph,ops}.so, no copy of them beside it (matrices/ctranslate2.toml bundled)"]
    if not order:
        return (f"{front}, which finds no cuDNN {need.major} sub-libraries: only torch's copy exists "
                f"({theirs.describe()}), and it is returned only if torch already ran a cuDNN operation in this "
                "process (its libcudnn_cnn.so.9 is then loaded under that SONAME). Transcribing before diarizing "
                "fails with 'Unable to load any of {libcudnn_cnn.so.9.1.0, ...}'.", evidence)
    mine, mine_how = order[0]
    if mine is theirs or (mine.version and mine.version == theirs.version):
        return None
    return (f"{front}, which finds {mine.describe()} ({mine_how}), while torch's front takes its sub-libraries from "
            f"{theirs.describe()}: two cuDNN builds in one process, and which sub-library ctranslate2 gets depends on "
            "whether torch ran a cuDNN operation first.",
            [f"ctranslate2's search picks {mine.describe()} via {mine_how}", *evidence])


def _pip_clash(need: LibraryNeed, providers: Iterable[Provide]) -> list[str]:
    """Why pip's wheel for this need cannot join the environment: nvidia-<lib>-cu11 and -cu12 install into the
    same site-packages/nvidia/<lib> folder, so one environment holds one of them (torch's)."""
    from envsolve.resolver.rulebook import pip_library_wheel

    cuda = need.cuda_major or (need.major if need.name == "cublas" else None)
    wheel = pip_library_wheel(need.name, need.major, cuda) if cuda in (11, 12) else None
    if wheel is None:
        return []
    for p in providers:
        package = str(p.detail.get("package", ""))
        if p.detail.get("origin") != "pip" or not package.endswith(("-cu11", "-cu12")):
            continue
        if package == wheel[0]:
            return [f"pip's {wheel[0]}=={wheel[1]} would supply {need.name} {need.major}, but torch pins "
                    f"{package}=={p.version or '?'}, and one environment holds one version of a wheel"]
        return [f"pip's {wheel[0]}=={wheel[1]} would supply {need.name} {need.major}, but it installs into the "
                f"same site-packages/nvidia/{need.name} folder as {package} {p.version or ''}, which torch pins; "
                "one environment holds one of them"]
    return []


def _where(providers: Iterable[Provide]) -> str:
    """' The copies are in DIR[:DIR].' for a fix, or nothing."""
    dirs = sorted({os.path.dirname(p.detail.get("path", "")) for p in providers} - {""})
    return f" The copies are in {':'.join(dirs)}." if dirs else ""


def _mixed_cudnn(need: LibraryNeed, same_major: list[Provide], order: list[tuple[Provide, str]],
                 view: LoaderView) -> tuple[Provide, Provide] | None:
    """torch's cuDNN shim from its wheel, its sub-libraries from another copy: (shim, sub-library copy)."""
    if need.name != "cudnn" or need.search != "torch" or not order:
        return None
    shim = next((p for p in same_major if p.detail.get("origin") == "pip"), None)
    subs, how = order[0]
    if shim is None or subs is shim or how != "LD_LIBRARY_PATH":
        return None
    if not (shim.version and subs.version) or shim.version == subs.version:
        return None  # the same release in two folders is harmless; unknown versions are not evidence
    return shim, subs


def _same_cuda(provide: Provide, need: LibraryNeed) -> bool:
    built_for = provide.detail.get("cuda_major")
    return need.cuda_major is None or not built_for or int(built_for) == need.cuda_major


def _major(provide: Provide) -> int | None:
    if provide.detail.get("major"):
        return int(provide.detail["major"])
    if provide.version:
        try:
            return int(provide.version.split(".")[0])
        except ValueError:
            return None
    return None


class _Blank(dict[str, str]):
    """format_map helper: unknown placeholders render as empty instead of raising."""

    def __missing__(self, key: str) -> str:
        return ""
