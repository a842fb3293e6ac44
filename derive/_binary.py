"""What the native libraries in a wheel say: DT_NEEDED sonames, imported and exported dynamic symbols, and
which torch releases export every symbol a torchaudio/torchvision/torchcodec build imports."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from packaging.version import Version

from envsolve.derive._facts import Facts
from envsolve.derive._http import FetchProgress
from envsolve.derive._wheel import RemoteWheel
from envsolve.resolver.probe.elf import ElfError, ElfFile

__all__ = ["CUDA_SONAME", "TORCH_LIBS", "AbiResult", "cuda_sonames", "symbol_hash", "torch_abi", "wheel_elves"]

READER = "elf/1"
# The CUDA libraries a wheel can need: runtime, cuBLAS, cuDNN and the rest of the toolkit's sonames.
CUDA_SONAME = re.compile(r"lib(?:cudart|cublas|cublasLt|cudnn\w*|nvrtc|nvrtc-builtins|cufft|cufftw|curand|cusparse|"
                         r"cusparseLt|cusolver|nvJitLink|nccl|cupti|nvToolsExt|cufile|nvshmem\w*)\.so(?:\.[0-9]+)*")
TORCH_LIBS = re.compile(r"lib(?:c10|torch|caffe2|shm)\w*\.so")
# Names that belong to torch whichever release is installed: C++ in c10::, at::, torch::, caffe2:: (any mangled
# form) and the C shims (aoti_torch_*, torch_*, the stable ABI).
_TORCH_NAME = re.compile(r"N3c10|N2at|N5torch|N6caffe2|^_ZN?K?3c10|^_ZN?K?2at|^aoti_torch_|^torch_|^THP")
# The C++ standard library's own names (std::string members, __cxxabiv1): an unversioned reference to one binds to
# libstdc++'s default version at run time, so a torch that stops exporting it does not break the build.
_STD_NAME = re.compile(r"^_Z(?:N|NK|T[ISV]|Z?N?K?)?(?:S[tabsiod]|9__gnu_cxx|10__cxxabiv1)|^__cxa_|^__gxx_")
_LARGE = 16 << 20  # members above this are streamed to a temporary file instead of read into memory


def symbol_hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def _pack(values: Iterable[int]) -> str:
    ordered = sorted(set(values))
    return base64.b64encode(struct.pack(f"<{len(ordered)}Q", *ordered)).decode()


def unpack_hashes(text: str) -> set[int]:
    raw = base64.b64decode(text)
    return set(struct.unpack(f"<{len(raw) // 8}Q", raw))


def elf_facts(f: BinaryIO, *, exports: str = "names") -> dict[str, Any]:
    """needed, soname, imports (undefined, not weak, unversioned: what a torch would have to provide),
    exports (defined names, or their hashes for a provider as large as libtorch_cpu.so)."""
    with ElfFile(f) as elf:
        symbols = elf.dynamic_symbols()
        out: dict[str, Any] = {"needed": list(elf.needed), "soname": elf.soname}
    out["imports"] = sorted({s.name for s in symbols if not s.defined and not s.weak and not s.version})
    defined = {s.name for s in symbols if s.defined}
    if exports == "hashes":
        out["export_hashes"] = _pack(symbol_hash(n) for n in defined)
    else:
        out["exports"] = sorted(defined)
    return out


def wheel_elves(wheel: RemoteWheel, facts: Facts, progress: FetchProgress, *, names: Sequence[str] | None = None,
                exports: str = "names", extra: str = "") -> dict[str, dict[str, Any]]:
    """ELF facts of the wheel's shared objects (or `names`), cached by the wheel's sha256."""
    def read() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        wanted = list(names) if names is not None else wheel.elf_names()
        small = [n for n in wanted if wheel.members[n].usize <= _LARGE]
        for name, data in wheel.read_many(small).items():
            out[name] = _safe(io.BytesIO(data), exports, extra)
        for name in (n for n in wanted if n not in small):
            m = wheel.members[name]
            progress.say(f"{wheel.dist.filename}: streaming {name} ({m.csize / 1e6:.0f} MB compressed)")
            with wheel.extracted(name) as fh:
                out[name] = _safe(fh, exports, extra)
        return out

    key = f"{READER}:{exports}:{extra}:{','.join(names) if names is not None else '*'}"
    return facts.get(wheel.dist.sha256, key, read)


def _safe(f: BinaryIO, exports: str, extra: str) -> dict[str, Any]:
    try:
        out = elf_facts(f, exports=exports)
    except ElfError as err:
        return {"error": err.message}
    if extra.startswith("arch"):
        f.seek(0)
        # Not always NUL-preceded: the linker packs some strings back to back (torch 2.9: "...ipc_hsm_70 sm_75").
        flags = re.findall(rb"((?:sm|compute)_\d+(?: (?:sm|compute)_\d+)+)\0", f.read())
        if flags:
            out["arch_flags"] = max(flags, key=len).decode()
    return out


def cuda_sonames(elves: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every CUDA-family soname any of the libraries links (DT_NEEDED), sorted."""
    return sorted({n for e in elves.values() for n in e.get("needed", ()) if CUDA_SONAME.fullmatch(n)})


def torch_imports(elves: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], set[str], list[str]]:
    """(members that link torch, the symbols they import that nothing in the wheel defines, torch libs linked)."""
    own = {s for e in elves.values() for s in e.get("exports", ())}
    linking = sorted(n for n, e in elves.items() if any(TORCH_LIBS.fullmatch(x) for x in e.get("needed", ())))
    imports = {s for n in linking for s in elves[n]["imports"] if s not in own}
    libs = sorted({x for n in linking for x in elves[n]["needed"] if TORCH_LIBS.fullmatch(x)})
    return linking, imports, libs


@dataclass(frozen=True)
class AbiResult:
    admitted: list[str]  # torch releases exporting every torch symbol imported
    checked: list[str]
    missing: dict[str, list[str]]  # excluded release -> missing symbols (all of them, sorted)
    counted: int  # imported symbols that are torch's

    @property
    def spec(self) -> str | None:
        """The admitted releases as a specifier over the checked ones: '>=2.12.0', '>=2.11.0,<2.12.0'."""
        if not self.admitted:
            return None
        order = sorted(self.checked, key=Version)
        first = min(self.admitted, key=Version)
        parts = [f">={first}"]
        above = [v for v in order if Version(v) > Version(first)]
        excluded = [v for v in above if v not in self.admitted]
        if excluded:
            top = max(self.admitted, key=Version)
            gaps = [v for v in excluded if Version(v) < Version(top)]
            after = [v for v in excluded if Version(v) > Version(top)]
            if after:
                parts.append(f"<{min(after, key=Version)}")
            parts += [f"!={v}" for v in gaps]
        return ",".join(parts)


def torch_abi(imports: set[str], present: Mapping[str, set[str]]) -> AbiResult:
    """Which torch releases export every torch symbol in `imports` (`present`: release -> the imported names its
    libraries export). A symbol is torch's when its name is (c10::, at::, torch::, torch_*, aoti_torch_*) or when
    some checked release exports it; the C library's, Python's (dlopen, PyObject_*) and the C++ standard library's
(std::string members libstdc++ also defines) are not."""
    somewhere = set().union(*present.values()) if present else set()
    counted = {s for s in imports if _TORCH_NAME.search(s) or (s in somewhere and not _STD_NAME.search(s))}
    missing = {r: sorted(counted - p) for r, p in present.items()}
    admitted = [r for r, m in missing.items() if not m]
    return AbiResult(sorted(admitted, key=Version), sorted(present, key=Version),
                     {r: m for r, m in missing.items() if m}, len(counted))


def example(symbols: Sequence[str], n: int = 3) -> list[str]:
    """A short, stable sample of symbol names for a row: C names first, then the shortest."""
    return sorted(symbols, key=lambda s: (s.startswith("_Z"), len(s), s))[:n]
