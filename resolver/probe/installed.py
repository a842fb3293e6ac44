"""What the running interpreter has installed, read from metadata and files, never by importing.

importlib.metadata lists every distribution on sys.path (so the snapshot can say
`packages_complete`). torch's build is read from its own files: torch/version.py (cuda, hip,
git_version) and the nvidia-cudnn pin in its METADATA. The native consumers the loader
simulation follows are located through the distributions too: ctranslate2's libctranslate2,
torch's libtorch_cuda and torchcodec's libtorchcodec_core*.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement

from envsolve.resolver.host import normalize
from envsolve.resolver.probe.platforms import read_text

__all__ = [
    "Consumer",
    "Installed",
    "TorchBuild",
    "build_versions",
    "native_consumers",
    "parse_torch_pins",
    "parse_torch_version_py",
    "read_installed",
    "torch_build",
    "wheel_lib_owners",
]

_MAX_LIST = 5_000
_ASSIGN = re.compile(r"""^(\w+)\s*(?::[^=\n]*)?=\s*(?:'([^'\n]*)'|"([^"\n]*)"|(None|True|False))\s*$""", re.MULTILINE)


@dataclass(frozen=True)
class TorchBuild:
    """torch as built: the CUDA or ROCm it targets, its commit, and the nvidia wheels it pins."""

    version: str | None
    cuda: str | None
    hip: str | None
    git_version: str | None
    pins: tuple[tuple[str, str], ...] = ()  # (nvidia-cudnn-cu12, 9.1.0.70), ...

    def describe(self) -> str:
        backend = f"CUDA {self.cuda}" if self.cuda else f"ROCm {self.hip}" if self.hip else "CPU only"
        text = f"torch {self.version or '?'} is a {backend} build (torch/version.py"
        text += f", git {self.git_version[:12]})" if self.git_version else ")"
        cudnn = [f"{d}=={v}" for d, v in self.pins if d.startswith("nvidia-cudnn")]
        if cudnn:
            text += f"; its METADATA pins {', '.join(cudnn)}"
        return text


@dataclass(frozen=True)
class Consumer:
    """A native library that loads CUDA/cuDNN/FFmpeg libraries, and what loads it."""

    name: str  # ctranslate2, torch, torchcodec: the consumer names the rulebook uses
    path: str
    loaded_by: tuple[str, ...] = ()  # the objects that load it, nearest first (their RPATH counts)


@dataclass(frozen=True)
class Installed:
    packages: dict[str, str]
    locations: dict[str, str]  # normalized name -> the directory its files are relative to
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------- pure parsers


def parse_torch_version_py(text: str) -> dict[str, str | None]:
    """{'__version__': '2.5.1+cu121', 'cuda': '12.1', 'hip': None, 'git_version': '...'} from
    torch/version.py, read as text (it is never executed)."""
    out: dict[str, str | None] = {}
    for m in _ASSIGN.finditer(text):
        key = m.group(1)
        if key in ("__version__", "cuda", "hip", "git_version", "rocm", "xpu") and key not in out:
            value = m.group(2) if m.group(2) is not None else m.group(3)
            out[key] = value[:100] if value is not None else None
    return out


def parse_torch_pins(requires: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The nvidia-* wheels torch pins exactly ('nvidia-cudnn-cu12==9.1.0.70; ...'), for Linux."""
    pins = []
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        name = normalize(req.name)
        if not name.startswith("nvidia-"):
            continue
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins.append((name, exact[0]))
    return tuple(pins)


# ---------------------------------------------------------------- I/O


def read_installed(path: list[str] | None = None) -> Installed:
    """Every distribution of the running interpreter (first on sys.path wins, as for imports)."""
    packages: dict[str, str] = {}
    locations: dict[str, str] = {}
    notes: list[str] = []
    for dist in metadata.distributions(path=path) if path is not None else metadata.distributions():
        try:
            name = dist.metadata["Name"]
            version = dist.version
        except Exception as e:  # a half-written .dist-info must not stop the probe
            notes.append(f"unreadable distribution metadata at {_where(dist)}: {type(e).__name__}")
            continue
        if not name or not version:
            continue
        key = normalize(name)
        if key not in packages:
            packages[key] = str(version)
            locations[key] = str(dist.locate_file(""))
    return Installed(packages, locations, tuple(notes))


def _where(dist: metadata.Distribution) -> str:
    try:
        return str(dist.locate_file(""))
    except Exception:
        return "?"


def _dist(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except (metadata.PackageNotFoundError, ValueError, OSError):
        return None


def torch_build(installed: Installed) -> TorchBuild | None:
    """torch's build facts from torch/version.py and its METADATA; None when torch is not installed."""
    base = installed.locations.get("torch")
    if base is None:
        return None
    facts = parse_torch_version_py(read_text(os.path.join(base, "torch", "version.py")) or "")
    dist = _dist("torch")
    try:
        requires = (dist.requires or []) if dist is not None else []
    except Exception:
        requires = []
    return TorchBuild(facts.get("__version__") or installed.packages.get("torch"), facts.get("cuda"),
                      facts.get("hip"), facts.get("git_version"), parse_torch_pins(requires))


def build_versions(installed: Installed) -> dict[str, str]:
    """Versions with their build label from the package's own version.py, where metadata has none:
    PyPI's Linux torch 2.11.0 is a CUDA 13.0 build whose metadata says just '2.11.0' while
    torch/version.py says '2.11.0+cu130'. Only a label on the same release is taken."""
    out: dict[str, str] = {}
    for name in ("torch", "torchaudio", "torchvision", "torchcodec"):
        base, version = installed.locations.get(name), installed.packages.get(name)
        if base is None or version is None or "+" in version:
            continue
        full = parse_torch_version_py(read_text(os.path.join(base, name, "version.py")) or "").get("__version__")
        if full and full.startswith(version + "+") and re.fullmatch(r"[0-9A-Za-z.+]{1,64}", full):
            out[name] = full
    return out


def wheel_lib_owners(installed: Installed) -> dict[str, tuple[str, str]]:
    """Library file path -> (nvidia-* wheel, version) that installed it, from the wheels' RECORDs."""
    owners: dict[str, tuple[str, str]] = {}
    for name, version in installed.packages.items():
        if not name.startswith("nvidia-"):
            continue
        dist = _dist(name)
        try:
            files = list(dist.files or []) if dist is not None else []
        except Exception:
            continue
        base = installed.locations.get(name, "")
        for f in files[:_MAX_LIST]:
            text = str(f)
            if ".so" in text and "/lib" in text:
                owners[os.path.normpath(os.path.join(base, text))] = (name, version)
    return owners


def _list(directory: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(directory))[:_MAX_LIST]
    except OSError:
        return []


def native_consumers(installed: Installed, python: str) -> list[Consumer]:
    """The native libraries of ctranslate2, torch and torchcodec that load CUDA/cuDNN/FFmpeg."""
    out: list[Consumer] = []
    base = installed.locations.get("ctranslate2")
    if base:
        pkg = os.path.join(base, "ctranslate2")
        ext = [os.path.join(pkg, n) for n in _list(pkg) if n.startswith("_ext") and n.endswith(".so")]
        for folder in (os.path.join(base, "ctranslate2.libs"), pkg):
            for n in _list(folder):
                if n.startswith("libctranslate2") and ".so" in n:
                    out.append(Consumer("ctranslate2", os.path.join(folder, n), (*ext[:1], python)))
    base = installed.locations.get("torch")
    if base:
        lib = os.path.join(base, "torch", "lib")
        for n in ("libtorch_global_deps.so", "libtorch_cuda.so"):
            if os.path.isfile(os.path.join(lib, n)):
                out.append(Consumer("torch", os.path.join(lib, n), (python,)))
    base = installed.locations.get("torchcodec")
    if base:
        pkg = os.path.join(base, "torchcodec")
        for n in reversed(_list(pkg)):  # torchcodec tries the newest FFmpeg major first
            if re.fullmatch(r"libtorchcodec_core\d+\.so", n):
                out.append(Consumer("torchcodec", os.path.join(pkg, n), (python,)))
    return out
