"""ctranslate2.toml from the ctranslate2 wheels on the index.

For every release from 3.10 on, the bundled libraries (libctranslate2 and what auditwheel grafted) of the Linux
x86_64 wheel (cp311, else the newest CPython) and of the other Linux wheels' architectures are read: DT_NEEDED,
the lib{cu,nv}* sonames it dlopens (strings), PT_GNU_STACK, GLIBC symbol versions and the .nv_fatbin entries
(compiled compute capabilities, PTX ISA). Each library is streamed out of the wheel by range requests into a
temporary file that is deleted after reading. The CUDA toolkit of each build is not in the ELF: `cuda`, `build`
and `build_source` are curated by hand from the build script at the release tag, and refresh keeps them."""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from packaging.version import Version

from envsolve.derive._common import artifact_fields, yanked_fields
from envsolve.derive._context import DeriveContext
from envsolve.derive._index import Dist
from envsolve.derive._toml import Derived, ordered
from envsolve.derive._wheel import RemoteWheel
from envsolve.derive.family import header

__all__ = ["derive_ctranslate2"]

NAME = "ctranslate2"
FIRST = Version("3.10")
READER = "ctranslate2-elf/1"
PT_GNU_STACK, PF_X, SHT_DYNAMIC, SHT_VERNEED = 0x6474E551, 1, 6, 0x6FFFFFFE
FATBIN_MAGIC = 0xBA55ED50
_SONAME = re.compile(rb"(?<=\x00)lib(?:cu|nv)[A-Za-z0-9_]*\.so(?:\.[0-9]+)*(?=\x00)")
_LIB = re.compile(r"lib[^/]*\.so(\.[\d.]+)?")
CURATED_FIELDS = ("cuda", "build", "build_source")
FIELDS = ("version", "released", "yanked", "yanked_reason", "cuda_major", "cublas_soname", "cublas_sonames", "cuda",
          "cudnn_major", "cudnn_sonames", "execstack", "bundled", "cudart", "dlopen", "arch", "ptx_arch", "ptx_isa",
          "python", "python_freethreaded", "glibc_min", "glibc_symbols_max", "cuda_platforms", "cpu_platforms",
          "build", "build_source", "artifact", "sha256", "evidence", "note", "source", "checked")


@dataclass
class ElfInfo:
    name: str  # file name inside the wheel
    base: str  # the same without auditwheel's -<hash> (the original library name)
    soname: str = ""
    needed: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)  # lib{cu,nv}*.so[.N] strings (dlopen targets)
    execstack: bool = True  # no PT_GNU_STACK means an executable stack
    glibc_versions: list[str] = field(default_factory=list)
    fatbin: list[list[Any]] = field(default_factory=list)  # [kind 1=PTX/2=cubin, sm, [major, minor]]
    cudart_static: bool = False
    version_format: bool = False  # has the "%s.%d" soname-versioning format string


def _cstr(b: Any, off: int) -> str:
    return bytes(b[off : b.find(b"\0", off)]).decode("ascii", "replace")


def parse_elf(name: str, b: Any) -> ElfInfo:
    """ElfInfo of a little-endian ELF64 object held in `b` (bytes or an mmap)."""
    if b[:4] != b"\x7fELF" or b[4] != 2 or b[5] != 1:
        raise ValueError(f"{name}: not a little-endian ELF64 file")
    info = ElfInfo(name, re.sub(r"-[0-9a-f]{8}(?=\.so)", "", name))
    phoff, shoff = struct.unpack_from("<QQ", b, 0x20)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", b, 0x36)
    for i in range(phnum):
        p_type, p_flags = struct.unpack_from("<II", b, phoff + i * phentsize)
        if p_type == PT_GNU_STACK:
            info.execstack = bool(p_flags & PF_X)
    secs = [struct.unpack_from("<IIQQQQIIQQ", b, shoff + i * shentsize) for i in range(shnum)]
    names_off = secs[shstrndx][4]
    for sh_name, sh_type, _, _, off, size, link, info_n, _, _ in secs:
        strtab = secs[link][4] if link < len(secs) else 0
        if sh_type == SHT_DYNAMIC:
            for j in range(0, size, 16):
                tag, val = struct.unpack_from("<qQ", b, off + j)
                if tag == 1:
                    info.needed.append(_cstr(b, strtab + val))
                elif tag == 14:
                    info.soname = _cstr(b, strtab + val)
        elif sh_type == SHT_VERNEED:
            vn = off
            for _ in range(info_n):
                _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", b, vn)
                va = vn + aux
                for _ in range(cnt):
                    _, _, _, vna_name, vna_next = struct.unpack_from("<IHHII", b, va)
                    ver = _cstr(b, strtab + vna_name)
                    if ver.startswith("GLIBC_") and re.fullmatch(r"[\d.]+", ver[6:]):
                        info.glibc_versions.append(ver[6:])
                    va += vna_next
                vn += nxt
        elif _cstr(b, names_off + sh_name) == ".nv_fatbin":
            info.fatbin = [[k, sm, list(v)] for k, sm, v in _fatbin(b, off, size)]
    info.strings = sorted({m.decode() for m in _SONAME.findall(b)})
    info.cudart_static = b.find(b"libcudart_static") >= 0
    info.version_format = b.find(b"\0%s.%d\0") >= 0
    return info


def _fatbin(b: Any, off: int, size: int) -> list[tuple[int, int, tuple[int, int]]]:
    """(kind 1=PTX/2=cubin, sm, (major, minor)) of every .nv_fatbin entry, deduplicated."""
    out: set[tuple[int, int, tuple[int, int]]] = set()
    p, end = off, off + size
    while p + 16 <= end:
        magic, _, hsize, fsize = struct.unpack_from("<IHHQ", b, p)
        if magic != FATBIN_MAGIC:
            p += 8
            continue
        q, stop = p + hsize, p + hsize + fsize
        while q + 32 <= stop:
            kind, _, ehs, esz, _, _, minor, major, sm = struct.unpack_from("<HHIQIIHHI", b, q)
            if ehs == 0:
                break
            out.add((kind, sm, (major, minor)))
            q += ehs + esz
        p = stop
    return sorted(out)


def wheel_elves(ctx: DeriveContext, dist: Dist) -> list[ElfInfo]:
    """Every bundled lib*.so* in the wheel, read once per wheel sha256."""
    def read() -> list[dict[str, Any]]:
        wheel = RemoteWheel(ctx.fetcher, dist)
        names = sorted(n for n in wheel.names() if _LIB.fullmatch(n.rsplit("/", 1)[-1]))
        out = []
        for n in names:
            ctx.progress.say(f"{dist.filename}: reading {n} ({wheel.members[n].csize / 1e6:.0f} MB compressed)")
            with wheel.extracted(n) as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                out.append(asdict(parse_elf(n.rsplit("/", 1)[-1], data)))
        return out

    return [ElfInfo(**e) for e in ctx.facts.get(dist.sha256, READER, read)]


def cudnn_needs(elves: list[ElfInfo]) -> tuple[int, list[str]]:
    """(cuDNN major, sonames that must come from the host); (0, []) when no cuDNN is used."""
    shims = [e for e in elves if e.base.startswith("libcudnn")]
    core = [e for e in elves if e.base.startswith("libctranslate2")]
    names = {s for e in shims + core for s in set(e.strings) | set(e.needed) if s.startswith("libcudnn")}
    majors = {int(m.group(1)) for e in shims if (m := re.search(r"\.so\.(\d+)", e.base))}
    majors |= {int(m.group(1)) for s in names if (m := re.search(r"\.so\.(\d+)", s))}
    if not names and not shims:
        return 0, []
    if len(majors) != 1:
        raise ValueError(f"cannot tell the cuDNN major from {sorted(names)}")
    major = majors.pop()
    host: set[str] = set()
    for s in names - {e.name for e in elves}:
        if shims and re.fullmatch(r"libcudnn\.so(\.\d+)*", s):
            continue  # the loader itself is bundled
        if s.endswith(".so") and any(e.version_format for e in shims):
            s = f"{s}.{major}"  # the cuDNN 9 loader appends its own version at run time
        host.add(s)
    return major, sorted(host)


def _cc(sm: int) -> str:
    return f"{sm // 10}.{sm % 10}"


def _core(elves: list[ElfInfo]) -> ElfInfo:
    cores = [e for e in elves if e.base.startswith("libctranslate2")]
    if len(cores) != 1:
        raise ValueError(f"expected one libctranslate2 in the wheel, found {[e.name for e in elves]}")
    return cores[0]


def _has_cuda(elves: list[ElfInfo]) -> bool:
    core = _core(elves)
    return bool(core.fatbin or any(s.startswith("libcublas.so") for s in core.strings))


def _gpu_facts(elves: list[ElfInfo]) -> dict[str, Any]:
    core = _core(elves)
    strings = set(core.strings)
    row: dict[str, Any] = {}
    cublas = sorted(s for s in strings | set(core.needed) if s.startswith("libcublas.so."))
    if cublas:
        row["cuda_major"] = int(cublas[-1].split(".so.")[1].split(".")[0])
        row["cublas_soname"] = cublas[-1] if len(cublas) == 1 else None
        if len(cublas) > 1:
            row["cublas_sonames"] = cublas
    major, sonames = cudnn_needs(elves)
    row["cudnn_major"] = major
    row["cudnn_sonames"] = sonames or None
    row["execstack"] = core.execstack
    row["bundled"] = sorted(e.base for e in elves if e is not core) or None  # auditwheel-grafted
    row["cudart"] = "static" if core.cudart_static else None
    cudart = sorted(s for s in strings | set(core.needed) if s.startswith("libcudart.so"))
    if cudart:
        row["cudart"] = cudart[0]
    bundled = [e.base for e in elves if e is not core]
    row["dlopen"] = sorted(s for s in strings - set(core.needed)
                           if not any(b == s or b.startswith(s + ".") for b in bundled)) or None
    cubins = sorted({sm for kind, sm, _ in core.fatbin if kind == 2})
    ptx = sorted({sm for kind, sm, _ in core.fatbin if kind == 1})
    isa = sorted({f"{ma}.{mi}" for kind, _, (ma, mi) in core.fatbin if kind == 1}, key=Version)
    row["arch"] = [_cc(sm) for sm in cubins] or None
    row["ptx_arch"] = [_cc(sm) for sm in ptx] or None
    row["ptx_isa"] = isa[-1] if isa else None
    return row


@dataclass(frozen=True)
class _Wheel:
    dist: Dist
    arch: str
    python: str
    freethreaded: bool
    glibc: str


def _glibc_floor(platform: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if m:
        return f"{m.group(1)}.{m.group(2)}", m.group(3)
    legacy = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}
    m = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", platform)
    return (legacy[m.group(1)], m.group(2)) if m else None


def linux_wheels(files: list[Dist]) -> list[_Wheel]:
    out = []
    for f in files:
        if not f.is_wheel:
            continue
        floors = [g for t in f.tags if (g := _glibc_floor(t.platform))]
        pys = {t.interpreter for t in f.tags if re.fullmatch(r"cp3\d+", t.interpreter)}
        if not floors or len(pys) != 1:
            continue
        abi = next(iter(f.tags)).abi
        out.append(_Wheel(f, floors[0][1], f"3.{pys.pop()[3:]}", abi.endswith("t"),
                          min((g for g, _ in floors), key=Version)))
    return out


def _pick(wheels: list[_Wheel]) -> _Wheel:
    regular = [w for w in wheels if not w.freethreaded] or wheels
    return next((w for w in regular if w.python == "3.11"), None) or max(regular, key=lambda w: Version(w.python))


def _note(row: Mapping[str, Any]) -> str | None:
    parts: list[str] = []
    major = row.get("cudnn_major")
    if major == 0:
        parts.append("links and dlopens no cuDNN")
    elif major == 9:
        parts.append("bundled cuDNN 9 loader dlopens its sub-libraries as '<name>.so.%d[.%d[.%d]]' from its own "
                     "version, so host cuDNN 9 sub-libraries are needed")
    elif major == 8:
        parts.append("bundled cuDNN 8 loader dlopens the host's libcudnn_*_infer/train.so.8")
    if row.get("execstack"):
        parts.append("PT_GNU_STACK is RWE: glibc >= 2.41 refuses to dlopen it ('cannot enable executable stack')")
    if row.get("cuda_major") and not row.get("cuda") and row.get("ptx_isa"):
        parts.append(f"build script for this tag not curated; the fatbin's PTX is ISA {row['ptx_isa']}")
    return "; ".join(parts) or None


def derive_ctranslate2(ctx: DeriveContext) -> Derived:
    committed = ctx.committed(NAME)
    old = {str(r["version"]): r for r in committed.rows} if committed else {}
    rows = []
    for version, all_files in ctx.releases(NAME).items():
        if version < FIRST:
            continue
        wheels = linux_wheels(all_files)
        x86 = [w for w in wheels if w.arch == "x86_64"]
        if not x86:
            ctx.progress.say(f"ctranslate2 {version}: no Linux x86_64 wheel, skipped")
            continue
        pick = _pick(x86)
        elves = wheel_elves(ctx, pick.dist)
        row: dict[str, Any] = {"version": str(version), "released": min(f.uploaded or "9" for f in all_files)}
        facts = yanked_fields(all_files)
        notes = [facts.pop("_note")] if "_note" in facts else []
        row.update(facts)
        gpu = _gpu_facts(elves) if _has_cuda(elves) else {}
        row.update(gpu)
        for name in CURATED_FIELDS:
            row[name] = old.get(str(version), {}).get(name)
        row["python"] = sorted({w.python for w in x86 if not w.freethreaded}, key=Version)
        row["python_freethreaded"] = sorted({w.python for w in x86 if w.freethreaded}, key=Version) or None
        row["glibc_min"] = pick.glibc
        versions = [v for e in elves for v in e.glibc_versions]
        row["glibc_symbols_max"] = max(versions, key=Version) if versions else None
        cuda_plat: list[str] = ["x86_64"] if gpu else []
        cpu_plat: list[str] = [] if gpu else ["x86_64"]
        core = _core(elves)
        sources = [f"{pick.dist.url}: ctranslate2.libs/{core.name} ELF"]
        for arch in sorted({w.arch for w in wheels} - {"x86_64"}):
            other = _pick([w for w in wheels if w.arch == arch])
            o_elves = wheel_elves(ctx, other.dist)
            (cuda_plat if _has_cuda(o_elves) else cpu_plat).append(arch)
            sources.append(f"{other.dist.url}: ctranslate2.libs/{_core(o_elves).name} ELF")
        row["cuda_platforms"] = cuda_plat or None
        row["cpu_platforms"] = cpu_plat or None
        row.update(artifact_fields(pick.dist))
        evidence = [f"{core.name} DT_NEEDED: {', '.join(core.needed)}"]
        if row.get("dlopen"):
            evidence.append(f"{core.name} dlopen strings: {', '.join(row['dlopen'])}")
        if gpu:
            evidence.append(f"{core.name} PT_GNU_STACK {'RWE' if core.execstack else 'RW'}")
        row["evidence"] = evidence
        row["note"] = "; ".join([*notes, *filter(None, [_note(row)])]) or None
        if row.get("build_source"):
            sources.append(str(row["build_source"]))
        row["source"] = "; ".join(sources)
        row["checked"] = (f"envsolve matrices refresh streamed the wheels' bundled libraries from the index on "
                          f"{ctx.today} and read DT_NEEDED, dlopen strings, PT_GNU_STACK, GLIBC versions and "
                          ".nv_fatbin from the ELF" + ("; CUDA toolkit curated from the build script at the tag"
                                                       if row.get("build") else ""))
        rows.append(ordered(row, FIELDS))
    what = """Facts per release read from the Linux wheels on the index (libctranslate2 ELF: DT_NEEDED, dlopen strings,
PT_GNU_STACK, GLIBC_* symbol versions, .nv_fatbin cubins/PTX). cuda (toolkit of the build), build and build_source are
curated by hand from OpenNMT/CTranslate2 python/tools/prepare_build_environment_linux.sh at each tag; refresh keeps
them, and they are absent where the tag's script was not read. cudnn_major = 0 means the build loads no cuDNN.
arch = compute capabilities with cubins in libctranslate2; ptx_arch = those shipped as PTX (JIT).
yanked/yanked_reason: PEP 592, from the index. artifact/sha256: the x86_64 wheel read (sha256 as the index lists it)."""
    return Derived(NAME, "ctranslate2: CUDA, cuDNN, execstack and glibc needs of each release", ["version"], "version",
                   header(what, NAME), rows, curated_fields=CURATED_FIELDS)
