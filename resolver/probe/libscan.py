"""CUDA, cuDNN and FFmpeg libraries on disk: where they are, which version, and the evidence.

The directories looked at are the ones the loader or a wheel would use, never the whole disk:
LD_LIBRARY_PATH, the directories the ld.so cache names, the default directories, CUDA toolkits
(/usr/local/cuda*, CUDA_HOME), pip's site-packages/nvidia/*/lib and torch/lib, and conda prefixes.
Each directory is listed once, with a cap on entries; unreadable directories and broken symlinks
become notes. Versions come from the best evidence at hand, recorded with the library:
cudnn_version.h, a CUDA toolkit's version.json, the real file name (libcudnn.so.9.1.0), or the
nvidia-* wheel that owns the directory.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from envsolve.resolver.host import Library, Toolkit
from envsolve.resolver.probe.elf import soname_of
from envsolve.resolver.probe.ldcache import LdCache
from envsolve.resolver.probe.loader import DEFAULT_DIRS, split_search_path
from envsolve.resolver.probe.platforms import read_text

__all__ = [
    "LibraryFile",
    "Scan",
    "classify",
    "cuda_toolkit_dirs",
    "origin_of",
    "parse_cuda_version_json",
    "parse_cuda_version_txt",
    "parse_cudnn_version_h",
    "scan_libraries",
]

MAX_DIR_ENTRIES = 20_000
MAX_LLP_DIRS = 512  # LD_LIBRARY_PATH directories listed for the inventory (the loader simulation sees all)
MAX_DIRS = 2_000
EXTRA_DIRS = ("/usr/local/lib", "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu")
# cuDNN 8 and 9 split into sub-libraries (libcudnn_ops_infer.so.8, libcudnn_cnn.so.9, ...); they
# are listed under "cudnn" with their own soname. cuBLASLt ships with and is versioned as cuBLAS.
_FAMILY = {"cudnn": "cudnn", "cublas": "cublas", "cublasLt": "cublas", "cudart": "cudart", "nccl": "nccl",
           "avutil": "avutil", "avcodec": "avcodec", "avformat": "avformat", "avfilter": "avfilter",
           "avdevice": "avdevice", "swresample": "swresample", "swscale": "swscale"}
_FILE = re.compile(r"^lib(cudnn(?:_[a-z_]{1,40})?|cublasLt|cublas|cudart|nccl|av(?:util|codec|format|filter|device)"
                   r"|sw(?:resample|scale))\.so\.(\d{1,4})((?:\.\d{1,6}){0,4})$")
# version.json keys of a CUDA toolkit for each library family
_TOOLKIT_KEYS = {"cublas": "libcublas", "cudart": "cuda_cudart", "nccl": "libnccl"}


@dataclass(frozen=True)
class LibraryFile:
    """A file name that is one of ours: libcudnn_ops.so.9.1.0 -> cudnn, libcudnn_ops.so.9, 9, 9.1.0."""

    family: str
    soname: str
    major: int
    version: str | None  # the numbers after .so. when the file name carries more than the major


def classify(name: str) -> LibraryFile | None:
    """Parse a library file name; None for anything that is not a versioned file of a known family."""
    m = _FILE.match(name)
    if not m:
        return None
    stem = m.group(1)
    family = "cudnn" if stem.startswith("cudnn") else _FAMILY[stem]
    major = int(m.group(2))
    tail = m.group(3)
    return LibraryFile(family, f"lib{stem}.so.{major}", major, f"{major}{tail}" if tail.count(".") >= 1 else None)


def parse_cudnn_version_h(text: str) -> str | None:
    """'#define CUDNN_MAJOR 9' / MINOR / PATCHLEVEL -> '9.1.0' (cudnn_version.h, or cudnn.h for cuDNN 7)."""
    parts = []
    for key in ("CUDNN_MAJOR", "CUDNN_MINOR", "CUDNN_PATCHLEVEL"):
        m = re.search(rf"^[ \t]*#[ \t]*define[ \t]+{key}[ \t]+(\d{{1,6}})\b", text, re.MULTILINE)
        if not m:
            return None
        parts.append(str(int(m.group(1))))
    return ".".join(parts)


def parse_cuda_version_json(text: str) -> tuple[str | None, dict[str, str]]:
    """(CUDA version, {component: version}) from a toolkit's version.json (CUDA 11.1+)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None, {}
    if not isinstance(data, dict):
        return None, {}
    components = {}
    for key, value in data.items():
        if isinstance(key, str) and isinstance(value, dict) and isinstance(value.get("version"), str):
            version = value["version"].strip()
            if re.fullmatch(r"\d+(\.\d+){0,4}", version):
                components[key] = version
    return components.get("cuda"), components


def parse_cuda_version_txt(text: str) -> str | None:
    """'CUDA Version 11.8.0' (version.txt of CUDA 11.0 and older) -> '11.8.0'."""
    m = re.search(r"CUDA Version\s+(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


def origin_of(directory: str, site_dirs: Sequence[str], conda_prefixes: Sequence[str]) -> str:
    """pip for a directory inside site-packages, conda inside a conda prefix, else system."""
    def inside(parent: str) -> bool:
        parent = parent.rstrip("/")
        return bool(parent) and (directory == parent or directory.startswith(parent + "/"))

    if any(inside(s) for s in site_dirs) or "/site-packages/" in directory or "/dist-packages/" in directory:
        return "pip"
    if any(inside(p) for p in conda_prefixes):
        return "conda"
    return "system"


@dataclass
class Scan:
    """The libraries and toolkits found, and what could not be read."""

    libraries: list[Library] = field(default_factory=list)
    toolkits: list[Toolkit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- I/O


def cuda_toolkit_dirs(env: Mapping[str, str], root: str = "/") -> list[str]:
    """/usr/local/cuda, /usr/local/cuda-X.Y and CUDA_HOME / CUDA_PATH, as spelled, deduplicated by target."""
    found: list[str] = []
    base = os.path.join(root, "usr/local")
    try:
        # cuda-X.Y before the cuda link, so a toolkit is named by its versioned directory.
        names = sorted((e.name for e in os.scandir(base) if e.name == "cuda" or e.name.startswith("cuda-")),
                       key=lambda n: (n == "cuda", n))
    except OSError:
        names = []
    candidates = [os.path.join(base, n) for n in names[:64]]
    candidates += [env[k] for k in ("CUDA_HOME", "CUDA_PATH") if env.get(k, "").startswith("/")]
    seen: set[str] = set()
    for path in candidates:
        real = os.path.realpath(path)
        if real not in seen and os.path.isdir(path):
            seen.add(real)
            found.append(path.rstrip("/") or "/")
    return found


def _toolkit(path: str) -> tuple[Toolkit | None, dict[str, str], str | None]:
    text = read_text(os.path.join(path, "version.json"))
    if text:
        version, components = parse_cuda_version_json(text)
        if version:
            return Toolkit(version, path), components, f"{path}/version.json"
    text = read_text(os.path.join(path, "version.txt"))
    version = parse_cuda_version_txt(text) if text else None
    if version:
        return Toolkit(version, path), {}, f"{path}/version.txt"
    m = re.search(r"cuda-(\d+\.\d+)$", os.path.realpath(path))
    if m:
        return Toolkit(m.group(1), path), {}, f"the directory name {os.path.realpath(path)}"
    return None, {}, None


def _list(directory: str, scan: Scan) -> list[str] | None:
    try:
        with os.scandir(directory) as it:
            names = []
            for entry in it:
                names.append(entry.name)
                if len(names) >= MAX_DIR_ENTRIES:
                    scan.notes.append(f"{directory} has more than {MAX_DIR_ENTRIES} entries; listed that many")
                    break
            return names
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as e:
        scan.notes.append(f"cannot list {directory}: {e.strerror or e}")
        return None


def _header_version(directory: str, major: int) -> tuple[str | None, str | None]:
    """cudnn_version.h beside the libraries (../include), or Debian's per-major alternative."""
    up = os.path.dirname(directory)
    candidates = [f"{up}/include/cudnn_version.h", f"{up}/include/cudnn_version_v{major}.h",
                  f"{os.path.dirname(up)}/include/cudnn_version.h",
                  f"{os.path.dirname(up)}/include/x86_64-linux-gnu/cudnn_version_v{major}.h",
                  f"{os.path.dirname(up)}/include/aarch64-linux-gnu/cudnn_version_v{major}.h"]
    for header in candidates:
        text = read_text(header)
        version = parse_cudnn_version_h(text) if text else None
        if version and version.split(".")[0] == str(major):
            return version, header
    return None, None


def _scan_dir(directory: str, origin: str, scan: Scan, seen: set[str],
              owners: Mapping[str, tuple[str, str]], toolkit_versions: Mapping[str, str],
              toolkit_source: str | None) -> None:
    names = _list(directory, scan)
    if not names:
        return
    groups: dict[str, list[tuple[str, LibraryFile]]] = {}
    for name in names:
        info = classify(name)
        if info is not None:
            groups.setdefault(info.soname, []).append((name, info))
    header: dict[int, tuple[str | None, str | None]] = {}
    for soname, files in sorted(groups.items()):
        names_here = {n for n, _ in files}
        # The loader opens the soname link; a directory with only the full-version file gets that file.
        chosen = soname if soname in names_here else max(names_here, key=len)
        path = f"{directory}/{chosen}"
        real = os.path.realpath(path)
        if not os.path.exists(path):
            scan.notes.append(f"broken symlink {path} -> {real}")
            continue
        if real in seen:
            continue
        if not os.path.isfile(path):
            scan.notes.append(f"{path} is not a file")
            continue
        seen.add(real)
        info = files[0][1]
        version, evidence = _version(directory, path, real, info, owners, toolkit_versions, toolkit_source, header)
        elf_soname = soname_of(path)
        if elf_soname is None:
            evidence += "; not readable as ELF"
        scan.libraries.append(Library(info.family, version, elf_soname or soname, path, origin, evidence))


def _version(directory: str, path: str, real: str, info: LibraryFile,
             owners: Mapping[str, tuple[str, str]], toolkit_versions: Mapping[str, str],
             toolkit_source: str | None, header: dict[int, tuple[str | None, str | None]]) -> tuple[str | None, str]:
    if info.family == "cudnn":
        if info.major not in header:
            header[info.major] = _header_version(directory, info.major)
        version, source = header[info.major]
        if version:
            return version, f"version from {source}"
    real_info = classify(os.path.basename(real))
    if real_info is not None and real_info.version and real_info.major == info.major:
        return real_info.version, f"version from the file name {os.path.basename(real)}"
    key = _TOOLKIT_KEYS.get(info.family)
    if key and key in toolkit_versions and toolkit_versions[key].split(".")[0] == str(info.major):
        return toolkit_versions[key], f"version from {toolkit_source} ({key})"
    owner = owners.get(path) or owners.get(real) or owners.get(directory)
    if owner and owner[1].split(".")[0] == str(info.major):
        return owner[1], f"version of the wheel {owner[0]} {owner[1]} that installed {directory}"
    return None, f"version unknown; major {info.major} from the soname"


def _pip_dirs(site_dirs: Iterable[str], scan: Scan) -> list[str]:
    out = []
    for site in site_dirs:
        nvidia = os.path.join(site, "nvidia")
        # The nvidia-* wheels are namespace packages without __init__: list the folder, never import.
        for name in sorted(_list(nvidia, scan) or [])[:200]:
            for sub in ("lib", "lib64"):
                out.append(os.path.join(nvidia, name, sub))
        out.append(os.path.join(site, "torch", "lib"))
    return out


def scan_libraries(
    *,
    env: Mapping[str, str],
    ld_cache: LdCache,
    site_dirs: Sequence[str] = (),
    conda_prefixes: Sequence[str] = (),
    owners: Mapping[str, tuple[str, str]] | None = None,
    default_dirs: Sequence[str] = DEFAULT_DIRS + EXTRA_DIRS,
    root: str = "/",
) -> Scan:
    """Every cuDNN/cuBLAS/cudart/NCCL/FFmpeg library in the places the loader and pip use.

    `owners` maps a library file (or directory) to the wheel (name, version) that installed it. A file
    reachable under two names is listed once, by the first name met, in the loader's order:
    LD_LIBRARY_PATH, the ld.so cache, the default directories, then toolkits, pip and conda.
    """
    scan = Scan()
    owners = owners or {}
    llp = [d for d in split_search_path(env.get("LD_LIBRARY_PATH", "")) if d.startswith("/")]
    if len(llp) > MAX_LLP_DIRS:
        scan.notes.append(f"LD_LIBRARY_PATH has {len(llp)} directories; the library inventory lists the first "
                          f"{MAX_LLP_DIRS} (the loader simulation follows all of them)")
        llp = llp[:MAX_LLP_DIRS]
    cache_dirs = [os.path.dirname(e.path) for e in ld_cache.entries if classify(os.path.basename(e.soname))]
    toolkits: list[tuple[str, dict[str, str], str | None]] = []
    toolkit_lib_dirs: dict[str, str] = {}
    for path in cuda_toolkit_dirs(env, root):
        toolkit, components, source = _toolkit(path)
        if toolkit is not None:
            scan.toolkits.append(toolkit)
        toolkits.append((path, components, source))
        for sub in ("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"):
            toolkit_lib_dirs[os.path.join(path, sub)] = path
    prefixes = [p for p in conda_prefixes if p]
    ordered = [*llp, *cache_dirs, *default_dirs, *toolkit_lib_dirs, *_pip_dirs(site_dirs, scan),
               *(os.path.join(p, "lib") for p in prefixes)]
    seen_dirs: set[str] = set()
    seen_files: set[str] = set()
    toolkit_real = {os.path.realpath(d): t for d, t in toolkit_lib_dirs.items()}
    components_of = {path: (components, source) for path, components, source in toolkits}
    for directory in ordered:
        directory = directory.rstrip("/") or "/"
        if directory in seen_dirs or len(seen_dirs) >= MAX_DIRS:
            continue
        seen_dirs.add(directory)
        if not os.path.isdir(directory):
            continue
        toolkit_path = toolkit_lib_dirs.get(directory) or toolkit_real.get(os.path.realpath(directory))
        components, source = components_of.get(toolkit_path, ({}, None)) if toolkit_path else ({}, None)
        _scan_dir(directory, origin_of(directory, site_dirs, prefixes), scan, seen_files, owners, components,
                  source)
    return scan
