"""The rulebook: matrix rows and host facts become candidates with provides and requires.

Every requirement carries the finding code it raises and the source of the rule. `doctor` builds
candidates for what is installed; `plan` builds them for what it tries. Nothing here decides;
envsolve.resolver.check evaluates and envsolve.resolver.search searches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from envsolve.resolver import matrices
from envsolve.resolver.host import Host, normalize
from envsolve.resolver.model import Candidate, LibraryNeed, Provide, Require

if TYPE_CHECKING:
    from envsolve.resolver.rows import TorchRow

__all__ = ["SITE", "WATCHED_TORCHAUDIO_API", "Context", "Runtime", "arch_rule", "candidate", "compatible_archs",
           "ct2_on_gpu", "driver_rule", "family_rule", "gpu_cc", "host_candidates", "library_rule", "pip_lib_dir",
           "pip_library", "pip_library_wheel", "python_rule", "row_for", "row_pythons", "row_source", "spec_rule",
           "split_local", "torch_row", "torch_rows"]


WATCHED_TORCHAUDIO_API = ("AudioMetaData", "info", "load", "list_audio_backends", "get_audio_backend",
                          "set_audio_backend", "backend", "save", "backend.common", "backend.common.AudioMetaData")
# Where pip puts the NVIDIA libraries, relative to site-packages (the nvidia-* wheels' layout).
PIP_LIB_DIRS = {"cudnn": "nvidia/cudnn/lib", "cublas": "nvidia/cublas/lib", "cudart": "nvidia/cuda_runtime/lib"}


def pip_lib_dir(lib: str, package: str, cuda_major: int) -> str:
    """Where an nvidia-* wheel puts its libraries under site-packages. The -cu11/-cu12 wheels use
    nvidia/<lib>/lib; CUDA 13's unsuffixed ones (nvidia-cublas 13.x) use one nvidia/cu13/lib folder (a probed
    venv: tests/hosts/probed-cpu-container-cuda13-venv.json)."""
    suffixed = package.rsplit("-cu", 1)[-1].isdigit() and "-cu" in package
    return f"nvidia/cu{cuda_major}/lib" if cuda_major >= 13 and not suffixed else PIP_LIB_DIRS[lib]
SITE = "$SITE_PACKAGES"


@dataclass(frozen=True)
class Runtime:
    """What the stack runs on: a GPU or the CPU, and which CTranslate2 compute type (Request.target, by
    contrast, says where it is installed: the host itself or an image)."""

    gpu: bool
    compute_type: str | None = None
    asr_gpu: bool = True  # False: ctranslate2 runs on the CPU by choice (--asr-device cpu) beside a GPU torch


def ct2_on_gpu(row: Mapping[str, Any], host: Host | None, runtime: Runtime) -> bool:
    """Does ctranslate2 run on the GPU: a GPU stack, not put on the CPU by choice, and a CUDA wheel for the machine
    (PyPI's aarch64 ctranslate2 is CPU-only; an unknown architecture is taken to have one)?"""
    arch = host.os.arch if host else None
    return runtime.gpu and runtime.asr_gpu and (arch is None or arch in row.get("cuda_platforms", ()))


@dataclass(frozen=True)
class Context:
    """What every package builder reads besides the version: the host (None: unknown), the runtime, and
    whether a CUDA torch from pip brings the nvidia-* library wheels it pins (pip_libs)."""

    host: Host | None
    runtime: Runtime
    pip_libs: bool = True
    planning: bool = False  # choosing what to install (rules about installability apply), not judging what is


def split_local(version: str) -> tuple[str, str | None]:
    """'2.5.1+cu121' -> ('2.5.1', 'cu121')."""
    base, _, local = version.partition("+")
    return base, local or None


def row_source(row: Mapping[str, Any]) -> str:
    """The evidence a matrix row names (its `source`), which every rule built from the row cites."""
    return str(row.get("source", ""))


def _own(name: str, provides: Iterable[Provide]) -> tuple[Provide, ...]:
    """Stamp each provide with its owner, so findings can name the candidates involved."""
    return tuple(Provide(p.capability, p.version, {**p.detail, "owner": name}) for p in provides)


def pip_library(lib: str, version: str | None, major: int, cuda_major: int, package: str) -> Provide:
    """The library an nvidia-* wheel provides, at the path its layout puts it under site-packages."""
    return Provide(f"lib:{lib}", version, {
        "origin": "pip", "major": str(major), "package": package, "cuda_major": str(cuda_major),
        "path": f"{SITE}/{pip_lib_dir(lib, package, cuda_major)}/lib{lib}.so.{major}"})


def candidate(name: str, version: str, provides: Iterable[Provide], requires: Iterable[Require],
              source: str = "", fixed: bool = False) -> Candidate:
    return Candidate(name, version, _own(name, provides), tuple(requires), fixed, source)


# ---------------------------------------------------------------- host facts as candidates


def host_candidates(host: Host) -> list[Candidate]:
    """The driver, GPUs, OS, Python and libraries of a host, as fixed candidates."""
    out: list[Candidate] = []
    if host.python:
        minor = ".".join(host.python.split(".")[:2])
        out.append(candidate("host:python", host.python, [Provide("python", minor)], [], fixed=True))
    os_provides = []
    if host.os.arch:
        os_provides.append(Provide("arch", host.os.arch))
    if host.os.glibc:
        os_provides.append(Provide("glibc", host.os.glibc))
    if os_provides:
        out.append(candidate("host:os", host.os.distro or "", os_provides, [], fixed=True))
    if host.driver is not None:
        # A driver of unknown version still provides cuda-driver (version None): rules needing the version
        # are then not checked, while "is there a driver at all" is answered.
        provides = [Provide("driver", host.driver.version),
                    Provide("cuda-driver", host.driver.cuda, {"driver": host.driver.version or "unknown"})]
        out.append(candidate("host:driver", host.driver.version or "", provides, [], fixed=True))
    for i, gpu in enumerate(host.gpus or ()):
        cc = gpu.compute_capability or gpu_cc(gpu.name)
        if cc:
            out.append(candidate(f"host:gpu{i}", gpu.name,
                                 [Provide("compute-capability", cc, {"gpu": gpu.name})], [], fixed=True))
    for lib in host.libraries or ():
        detail = {"origin": lib.origin, "path": lib.path or "", "soname": lib.soname or ""}
        if lib.major is not None:
            detail["major"] = str(lib.major)
        name = ffmpeg_component(lib.name) or lib.name
        out.append(candidate(f"host:lib:{lib.path or lib.name}", lib.version or "",
                             [Provide(f"lib:{name}", lib.version, detail)], [], fixed=True))
    if host.libraries is not None:
        # Lets a requirement tell "no such library" (a finding) from "libraries not listed" (unknown).
        out.append(candidate("host:libraries", str(len(host.libraries)), [Provide("libraries-listed")], [],
                             fixed=True))
    ffmpeg = ffmpeg_major(host)
    if ffmpeg:
        out.append(candidate("host:ffmpeg", ffmpeg, [Provide("ffmpeg-libs", ffmpeg)], [], fixed=True))
    return out


def gpu_cc(name: str) -> str | None:
    """Compute capability from the GPU's name; the longest matching name wins (A10 vs A100)."""
    best: tuple[int, str] | None = None
    for row in matrices.load("gpus"):
        for pattern in row.get("match", [row["name"]]):
            if pattern.lower() in name.lower() and (best is None or len(pattern) > best[0]):
                best = (len(pattern), str(row["cc"]))
    return best[1] if best else None


def ffmpeg_component(name: str) -> str | None:
    return name if name in ("avutil", "avcodec", "avformat", "swresample", "swscale", "avfilter",
                            "avdevice") else None


def ffmpeg_major(host: Host) -> str | None:
    """FFmpeg's major release from the libavutil soname the host has (matrices/ffmpeg.toml)."""
    for lib in host.libraries or ():
        if lib.name == "avutil" and lib.major is not None:
            row = matrices.load("ffmpeg").one(avutil_major=lib.major)
            if row:
                return str(row["ffmpeg_major"])
    if host.ffmpeg:
        return host.ffmpeg.split(".")[0]
    return None


# ---------------------------------------------------------------- matrix look-ups


@cache
def torch_rows() -> tuple[TorchRow, ...]:
    return tuple(matrices.load("torch"))


def torch_row(version: str, variant: str | None) -> TorchRow | None:
    """The matrix row of an installed torch; no local label means the PyPI default build."""
    base, local = split_local(version)
    rows = [r for r in torch_rows() if r["torch"] == base]
    if variant or local:
        wanted = variant or local
        return next((r for r in rows if r["variant"] == wanted), None)
    return next((r for r in rows if r.get("pypi_default")), None)


def row_for(matrix: str, version: str, field: str = "version") -> Mapping[str, Any] | None:
    base, _ = split_local(version)
    return matrices.load(matrix).one(**{field: base})


def compatible_archs(archs: Iterable[str], ptx: str | None, cc: str) -> bool:
    """Can a build with SASS for `archs` (and PTX for `ptx`) run on compute capability `cc`?

    SASS for X.y runs on X.z with z >= y (same major); PTX JIT-compiles for any newer device.
    """
    major, minor = (int(x) for x in cc.split("."))
    for arch in archs:
        a_major, a_minor = (int(x) for x in str(arch).split(".")[:2])
        if a_major == major and a_minor <= minor:
            return True
    if ptx:
        p_major, p_minor = (int(x) for x in ptx.split("."))
        return (p_major, p_minor) <= (major, minor)
    return False


def driver_floor_rule(major: int) -> Mapping[str, Any] | None:
    return matrices.load("cuda_driver_floor").one(cuda_major=major)


# ---------------------------------------------------------------- shared requirement builders


def python_rule(name: str, pythons: Iterable[str] | None, source: str) -> list[Require]:
    if not pythons:
        return []
    allowed = tuple(sorted(pythons, key=Version))
    return [Require("python", "python-unsupported", f"{name} has no build for this Python "
                    f"(it has {', '.join(allowed)})", source, allowed=allowed,
                    fix="Use a Python from the list ({have} is not), e.g. `envsolve plan --python "
                    f"{allowed[-1]}`.")]


def driver_rule(name: str, cuda_major: int, cuda: str | None, source: str) -> list[Require]:
    """Minor-version compatibility: a CUDA X.y build needs a driver for CUDA X.0 or newer."""
    floor = driver_floor_rule(cuda_major)
    # Two facts meet here: the build's CUDA (its row) and what that CUDA needs of the driver (the floor).
    both = "; ".join(part for part in (source, row_source(floor) if floor else "") if part)
    rules = [Require("cuda-driver", "driver-too-old",
                     f"{name} is built for CUDA {cuda or cuda_major}; the NVIDIA driver must support CUDA "
                     f"{cuda_major}.x (driver >= {floor['min_driver'] if floor else '?'})",
                     both, spec=f">={cuda_major}.0",
                     fix=f"Upgrade the NVIDIA driver to >= {floor['min_driver'] if floor else '?'} "
                     f"(CUDA {cuda_major}.x), or plan a build for the CUDA the driver has.")]
    if cuda:
        rules.append(Require("cuda-driver", "driver-too-old",
                             f"{name} is built with CUDA {cuda}; an older driver runs it only through "
                             "minor-version compatibility (no PTX JIT for newer code, limited features)",
                             both, spec=f">={cuda}", severity="warning",
                             fix=f"Upgrade the driver to one that supports CUDA {cuda} "
                             "(matrices/cuda_driver.toml lists the driver per toolkit)."))
    return rules


def arch_rule(name: str, archs: Iterable[str] | None, ptx: str | None, host: Host | None,
              source: str, jit_cuda: str | None = None, cuda_major: int | None = None) -> list[Require]:
    """No kernels for a GPU's compute capability -> gpu-arch-unsupported, for every GPU.

    A GPU served only by the PTX (no matching SASS) runs after the driver JIT-compiles it, which
    needs a driver for at least the CUDA release that emitted the PTX (`jit_cuda`).
    """
    if host is None or not host.gpus:
        return []
    if not archs:
        return _cuda_range_rule(name, cuda_major, host, source)
    archs = list(archs)
    ccs = {g.compute_capability or gpu_cc(g.name) for g in host.gpus}
    allowed = tuple(cc for cc in ccs if cc and compatible_archs(archs, ptx, cc))
    rules = [Require("compute-capability", "gpu-arch-unsupported",
                     f"{name} ships kernels for compute capability {', '.join(archs)}"
                     + (f" (+PTX {ptx})" if ptx else ""), source, allowed=allowed, every=True,
                     fix="Pick a build with kernels for compute capability {have} (`envsolve plan` does this), "
                     "e.g. an older CUDA variant for Pascal/Volta or CUDA >= 12.8 for Blackwell.")]
    jitted = sorted(cc for cc in allowed if cc and not compatible_archs(archs, None, cc))
    if jitted and jit_cuda:
        rules.append(Require("cuda-driver", "driver-too-old",
                             f"{name} has no kernels for compute capability {', '.join(jitted)}; the driver must "
                             f"JIT-compile its PTX, which needs a driver for CUDA >= {jit_cuda}", source,
                             spec=f">={jit_cuda}", fix=f"Upgrade the NVIDIA driver to one for CUDA >= {jit_cuda}, "
                             "or pick a build with kernels for this GPU."))
    return rules


def _cuda_range_rule(name: str, cuda_major: int | None, host: Host, source: str) -> list[Require]:
    """No arch list recorded for a build: at least the CUDA major's oldest supported GPU must hold."""
    row = matrices.load("cuda_arch").one(cuda_major=cuda_major) if cuda_major else None
    if row is None:
        return []
    minimum = str(row["min_cc"])
    return [Require("compute-capability", "gpu-arch-unsupported",
                    f"{name} is a CUDA {cuda_major} build, and CUDA {cuda_major} supports compute capability "
                    f">= {minimum} only", row_source(row), spec=f">={minimum}", every=True,
                    fix="Pick a build of an older CUDA major for this GPU (`envsolve plan` does this).")]


def pip_library_wheel(lib: str, major: int, cuda_major: int) -> tuple[str, str] | None:
    """The newest nvidia-* wheel pin any torch build uses for this library, major and CUDA major."""
    best: tuple[Version, str, str] | None = None
    for typed in torch_rows():
        row: Mapping[str, Any] = typed  # fields named from `lib` (cublas_package, cudnn_major)
        # A row that pins no wheel of this library (PyTorch-index builds record only the version) names
        # nothing installable: never turn its absent package name into a pin.
        if row.get("cuda_major") != cuda_major or not row.get(lib) or not row.get(f"{lib}_package"):
            continue
        row_major = int(row.get(f"{lib}_major") or (cuda_major if lib == "cublas" else 0))
        if row_major != major:
            continue
        version = str(row[lib])
        if best is None or Version(version) > best[0]:
            best = (Version(version), str(row.get(f"{lib}_package")), version)
    return (best[1], best[2]) if best else None


def library_rule(name: str, lib: str, major: int, search: str, source: str,
                 min_version: str | None = None, cuda_major: int | None = None, front: str | None = None) -> Require:
    need = LibraryNeed(lib, major, min_version, "torch" if search == "torch" else "ld", name, cuda_major, front)
    if search == "torch":
        fix = (f"Reinstall torch so its own {lib} wheel is used, and remove other {lib} {major} folders from "
               "LD_LIBRARY_PATH (they are searched before torch's RUNPATH).{dirs}")
    else:
        # The wheel torch builds pin for this major, exactly: an unpinned nvidia-cudnn-cu12 is cuDNN 9.
        pinned = pip_library_wheel(lib, major, cuda_major or (major if lib == "cublas" else 12))
        wheel = f'"{pinned[0]}=={pinned[1]}"' if pinned else f'"nvidia-{lib}-cu{cuda_major or 12}=={major}.*"'
        site = "$(python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')"
        fix = (f"Pathway B: export LD_LIBRARY_PATH=\"{site}/{PIP_LIB_DIRS.get(lib, '')}:$LD_LIBRARY_PATH\" after "
               f"pip install {wheel} if no copy is there (when torch pins another version of that wheel, keep "
               f"torch's; when it pins another {lib} major, pick the ctranslate2 that matches torch instead: "
               f"`envsolve plan` does); pathway A: install the system {lib} {major} package.{{dirs}}")
    return Require(f"lib:{lib}", f"{lib}-missing", f"{name} loads lib{lib} major {major}", source, library=need,
                   fix=fix)


def family_rule(name: str, torch_spec: str, variant: str | None, source: str) -> list[Require]:
    rules = [Require("pkg:torch", "torch-family-mismatch", f"{name} is built for torch {torch_spec}", source,
                     spec=torch_spec, fix=f"Install the {name} that belongs to the installed torch, or let "
                     "`envsolve plan` pin the whole family together (torch, torchvision, torchaudio, torchcodec).")]
    if variant:
        rules.append(Require("torch-variant", "torch-family-mismatch",
                             f"{name} is the {variant} build; torch must be the same variant", source,
                             allowed=(variant,), fix=f"Reinstall torch and {name} from the same index "
                             "(all +cuXYZ labels equal)."))
    return rules


def spec_rule(name: str, dependency: str, spec: str | None, source: str,
              code: str = "package-conflict") -> list[Require]:
    if not spec:
        return []
    return [Require(f"pkg:{normalize(dependency)}", code, f"{name} requires {dependency}{spec}", source,
                    spec=spec, absent="fail",
                    fix=f"pip install \"{dependency}{spec}\" (or let `envsolve plan` choose a set that agrees).")]


def row_pythons(row: Mapping[str, Any]) -> list[str] | None:
    """The CPython versions a row's wheels are built for (None: the row does not say)."""
    value = row.get("python")
    # Free-threaded builds (3.14t) are a different ABI from the Python a plan names.
    return [str(v) for v in value if not str(v).endswith("t")] if isinstance(value, list) else None

