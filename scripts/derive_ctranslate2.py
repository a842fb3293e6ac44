"""Derive matrices/ctranslate2.toml from the ctranslate2 wheels on PyPI.

For every release from 3.10 on, the Linux x86_64 manylinux wheel (cp311, else the newest cp3x)
and the Linux aarch64 wheel are downloaded (cached in ~/.cache/envsolve-derive/wheels, sha256
checked) and the bundled libctranslate2 ELF is read with `struct`: DT_NEEDED, the sonames it
dlopens (strings), PT_GNU_STACK flags, GLIBC symbol versions and the .nv_fatbin entries (compiled
compute capabilities, PTX ISA). The CUDA toolkit of each build is not in the ELF; it comes from the
build script at the release tag (CURATED below, cited per row).

    python scripts/derive_ctranslate2.py           # write matrices/ctranslate2.toml
    python scripts/derive_ctranslate2.py --check   # exit 1 if PyPI has drifted from the file
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import shutil
import struct
import sys
import tomllib
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import parse_wheel_filename
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _matrix_io import MATRICES, render_matrix, write_or_check

CACHE = Path.home() / ".cache" / "envsolve-derive"
PYPI = "https://pypi.org/pypi/{}/json"
FILES = "https://files.pythonhosted.org/packages/"
PT_GNU_STACK, PF_X, SHT_DYNAMIC, SHT_VERNEED = 0x6474E551, 1, 6, 0x6FFFFFFE
FATBIN_MAGIC = 0xBA55ED50
_SONAME = re.compile(rb"(?<=\x00)lib(?:cu|nv)[A-Za-z0-9_]*\.so(?:\.[0-9]+)*(?=\x00)")


def pypi_json(project: str) -> dict[str, Any]:
    req = urllib.request.Request(PYPI.format(project), headers={"User-Agent": "envsolve-derive"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        data: dict[str, Any] = json.load(resp)
    return data


def file_url(url: str) -> str:
    """Canonical files.pythonhosted.org address (the JSON may give a relative mirror path)."""
    m = re.search(r"packages/([0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]+/[^/]+)$", url)
    return FILES + m.group(1) if m else url


def cached_download(url: str, filename: str, sha256: str) -> Path:
    """Download once into ~/.cache/envsolve-derive/wheels and verify the PyPI sha256."""
    path = CACHE / "wheels" / filename
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        req = urllib.request.Request(url, headers={"User-Agent": "envsolve-derive"})
        with urllib.request.urlopen(req, timeout=600) as resp, tmp.open("wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
        tmp.replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha256 and digest != sha256:
        raise SystemExit(f"{path}: sha256 {digest} != PyPI {sha256}")
    return path


@dataclass(frozen=True)
class Wheel:
    filename: str
    url: str
    sha256: str
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


def linux_wheels(files: list[dict[str, Any]]) -> list[Wheel]:
    """The CPython manylinux wheels of one release."""
    out: list[Wheel] = []
    for f in files:
        if f["packagetype"] != "bdist_wheel":
            continue
        _, _, _, tags = parse_wheel_filename(f["filename"])
        floors = [g for t in tags if (g := _glibc_floor(t.platform))]
        pys = {t.interpreter for t in tags if re.fullmatch(r"cp3\d+", t.interpreter)}
        if not floors or len(pys) != 1:
            continue
        abi = next(iter(tags)).abi
        glibc = min((g for g, _ in floors), key=Version)
        out.append(
            Wheel(
                f["filename"],
                file_url(f["url"]),
                f["digests"].get("sha256", ""),
                floors[0][1],
                f"3.{pys.pop()[3:]}",
                abi.endswith("t"),
                glibc,
            )
        )
    return out


@dataclass
class ElfInfo:
    name: str  # file name inside the wheel
    base: str  # the same without auditwheel's -<hash> (the original library name)
    soname: str = ""
    needed: list[str] = field(default_factory=list)
    strings: set[str] = field(default_factory=set)  # lib{cu,nv}*.so[.N] strings (dlopen targets)
    execstack: bool = True  # no PT_GNU_STACK means an executable stack
    glibc_versions: list[str] = field(default_factory=list)
    fatbin: list[tuple[int, int, tuple[int, int]]] = field(default_factory=list)
    cudart_static: bool = False
    version_format: bool = False  # has the "%s.%d" soname-versioning format string


def _cstr(b: bytes, off: int) -> str:
    return b[off : b.index(b"\0", off)].decode("ascii", "replace")


def parse_elf(name: str, b: bytes) -> ElfInfo:
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
            info.fatbin = _fatbin(b, off, size)
    info.strings = {m.decode() for m in _SONAME.findall(b)}
    info.cudart_static = b"libcudart_static" in b
    info.version_format = b"\0%s.%d\0" in b
    return info


def _fatbin(b: bytes, off: int, size: int) -> list[tuple[int, int, tuple[int, int]]]:
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


def read_wheel_elves(path: Path) -> list[ElfInfo]:
    """Every bundled lib*.so* in the wheel (libctranslate2 and what auditwheel grafted)."""
    with zipfile.ZipFile(path) as zf:
        members = [n for n in zf.namelist() if re.fullmatch(r"lib[^/]*\.so(\.[\d.]+)?", n.rsplit("/", 1)[-1])]
        return [parse_elf(n.rsplit("/", 1)[-1], zf.read(n)) for n in sorted(members)]


def cudnn_needs(elves: list[ElfInfo]) -> tuple[int, list[str]]:
    """(cuDNN major, sonames that must come from the host); (0, []) when no cuDNN is used."""
    shims = [e for e in elves if e.base.startswith("libcudnn")]
    core = [e for e in elves if e.base.startswith("libctranslate2")]
    names = {s for e in shims + core for s in e.strings | set(e.needed) if s.startswith("libcudnn")}
    majors = {int(m.group(1)) for e in shims if (m := re.search(r"\.so\.(\d+)", e.base))}
    majors |= {int(m.group(1)) for s in names if (m := re.search(r"\.so\.(\d+)", s))}
    if not names and not shims:
        return 0, []
    if len(majors) != 1:
        raise SystemExit(f"cannot tell the cuDNN major from {sorted(names)}")
    major = majors.pop()
    host: set[str] = set()
    for s in names - {e.name for e in elves}:
        if shims and re.fullmatch(r"libcudnn\.so(\.\d+)*", s):
            continue  # the loader itself is bundled
        if s.endswith(".so") and any(e.version_format for e in shims):
            s = f"{s}.{major}"  # the cuDNN 9 loader appends its own version at run time
        host.add(s)
    return major, sorted(host)


NAME = "ctranslate2"
FIRST = Version("3.10")
REPO = "OpenNMT/CTranslate2"
SCRIPT = "python/tools/prepare_build_environment_linux.sh"

# From `git show v<version>:python/tools/prepare_build_environment_linux.sh` in OpenNMT/CTranslate2
# (stored mirror, HEAD 0d8bcd36 = v4.8.1): the x86_64 branch installs `cuda-nvcc-X-Y-<nvcc>` and
# `libcudnnN-devel-<cudnn>`, and configures with -DWITH_CUDNN=<flag> -DCUDA_ARCH_LIST="Common".
# tag -> (commit, nvcc package version, cudnn devel package version, WITH_CUDNN)
_C11 = ("11.2.152", "8.1.1.33", "ON")
_C122_8 = ("12.2.140", "8.9.7.29", "ON")
_C122_9 = ("12.2.140", "9.1.0.70", "ON")
_C124_9 = ("12.4.99", "9.1.0.70", "ON")
_C128 = ("12.8.93", "9.10.2.21", "OFF")
CURATED: dict[str, tuple[str, tuple[str, str, str]]] = {
    "3.10.0": ("27e315a04bf7aa9c271ef0c1dadb8d10fbb68fb1", _C11),
    "3.10.1": ("c2be6d0e3349989d74b8bf07567f6b9018c7a55a", _C11),
    "3.10.2": ("ac7655ca11c4e7812fc7ea133128e9d9f8918339", _C11),
    "3.10.3": ("df3d0dbd842770307f3033819c92c203b81efa4f", _C11),
    "3.11.0": ("eec311f46183b56f49cc4e5cf5c708f884a710b9", _C11),
    "3.12.0": ("57aace531241cc1f2e1e93f5d833d1a8d1f7774a", _C11),
    "3.13.0": ("5ba9b4a6c39e162cc8f2b2667c85df1369dfbaa8", _C11),
    "3.14.0": ("45af5ebcb643f205a6709e0bf6c09157d1ecba52", _C11),
    "3.15.0": ("d4b6f3849ae1bd67d1de0a037be3d7a7833fac6c", _C11),
    "3.15.1": ("267df4f73e28df584fc70435a72a0d8b2a4f2aef", _C11),
    "3.16.0": ("59d223abcc7e636c1c2956e62482bc3299cc7766", _C11),
    "3.16.1": ("317b344992707196d8289bd746c6af323cea3f28", _C11),
    "3.17.0": ("3e51874b4c023f19e6999c32237ec7ebeaecf589", _C11),
    "3.17.1": ("4978339f304035b1f86bcf59cd19aa7e79831744", _C11),
    "3.18.0": ("12a31d28af37186b7b9d758a9cd2307e6a5cf953", _C11),
    "3.19.0": ("b4f2861f1a9de8dda74bd76e11d3a6304dad0ea7", _C11),
    "3.20.0": ("2203ad5c8baf878a2d08e73095421e2ba033c89c", _C11),
    "3.21.0": ("1e37b526d1d5b61b132ff6dc144136d06e00fd7c", _C11),
    "3.22.0": ("d963499e6ed496526e68fb149c908cb2da1f0255", _C11),
    "3.23.0": ("83caf67972751ac9ce41b4fe17e8bf1a42b95307", _C11),
    "3.24.0": ("c95fd4e4f8c775e6a8248fea9f7ab313c170e8dd", _C11),
    "4.0.0": ("61492e00246b5e3818b56fb27d570220c87b6194", _C122_8),
    "4.1.0": ("27092e4f3c8f23534a3ba2b5d2d35b048fa40ddf", _C122_8),
    "4.2.1": ("0527ef7a2988f0b65b2c534168ae2df687ed9dc6", _C122_8),
    "4.3.1": ("59c7dda738892df7a064aa360d0e45a4c3840b07", _C122_8),
    "4.4.0": ("8f4d134b5a71f452a5d0f86fd1fa134a355e2547", _C122_8),
    "4.5.0": ("383d063daf0bf338a22b491864cb2018eb8efd15", _C122_9),
    "4.6.0": ("617405f4b050e994e829d527da6caa0e0030afe7", _C122_9),
    "4.6.1": ("785c7e0d6299ae17dec66a25a9ea52b11219f11e", _C124_9),
    "4.6.2": ("1251f7cbbf6ee92058e8c276dc78a915e4be55dc", _C124_9),
    "4.6.3": ("91d46ec8e21f49ba19f65e79872e0c87c51f4027", _C128),
    "4.7.0": ("3d05d20c7ba58682c0bc56252c0a7d567c6c66da", _C128),
    "4.7.1": ("226c95d94e660c48b11c62e108886b7ef76d589d", _C128),
    "4.7.2": ("9ff9c719e62b98fb8a993c1629833b0ddab447db", _C128),
    "4.8.0": ("54a546cec4262f9770d4674a0bfb4ac3c4f05698", _C128),
    "4.8.1": ("0d8bcd362ac75ef860ef161d6f0efad0ae439ff0", _C128),
}


def _cc(sm: int) -> str:
    return f"{sm // 10}.{sm % 10}"


def _core(elves: list[ElfInfo]) -> ElfInfo:
    cores = [e for e in elves if e.base.startswith("libctranslate2")]
    if len(cores) != 1:
        raise SystemExit(f"expected one libctranslate2 in the wheel, found {[e.name for e in elves]}")
    return cores[0]


def _has_cuda(elves: list[ElfInfo]) -> bool:
    core = _core(elves)
    return bool(core.fatbin or any(s.startswith("libcublas.so") for s in core.strings))


def _gpu_facts(version: str, elves: list[ElfInfo]) -> dict[str, Any]:
    core = _core(elves)
    row: dict[str, Any] = {}
    cublas = sorted(s for s in core.strings | set(core.needed) if s.startswith("libcublas.so."))
    if cublas:
        row["cuda_major"] = int(cublas[-1].split(".so.")[1].split(".")[0])
        row["cublas_soname"] = cublas[-1] if len(cublas) == 1 else None
        if len(cublas) > 1:
            row["cublas_sonames"] = cublas
    cur = CURATED.get(version)
    if cur:
        row["cuda"] = ".".join(cur[1][0].split(".")[:2])
    major, sonames = cudnn_needs(elves)
    row["cudnn_major"] = major
    row["cudnn_sonames"] = sonames or None
    row["execstack"] = core.execstack
    row["bundled"] = sorted(e.base for e in elves if e is not core) or None  # auditwheel-grafted
    row["cudart"] = "static" if core.cudart_static else None
    cudart = sorted(s for s in core.strings | set(core.needed) if s.startswith("libcudart.so"))
    if cudart:
        row["cudart"] = cudart[0]
    bundled = [e.base for e in elves if e is not core]
    row["dlopen"] = (
        sorted(s for s in core.strings - set(core.needed) if not any(b == s or b.startswith(s + ".") for b in bundled))
        or None
    )
    cubins = sorted({sm for kind, sm, _ in core.fatbin if kind == 2})
    ptx = sorted({sm for kind, sm, _ in core.fatbin if kind == 1})
    isa = sorted({f"{ma}.{mi}" for kind, _, (ma, mi) in core.fatbin if kind == 1}, key=Version)
    row["arch"] = [_cc(sm) for sm in cubins] or None
    row["ptx_arch"] = [_cc(sm) for sm in ptx] or None
    row["ptx_isa"] = isa[-1] if isa else None
    return row


def derive(today: str, old: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    data = pypi_json(NAME)
    rows: list[dict[str, Any]] = []
    for vs in sorted(data["releases"], key=Version):
        ver = Version(vs)
        files = [f for f in data["releases"][vs] if not f.get("yanked")]
        if ver < FIRST or ver.is_prerelease or not files:
            continue
        wheels = linux_wheels(files)
        x86 = [w for w in wheels if w.arch == "x86_64"]
        if not x86:
            print(f"{vs}: no Linux x86_64 wheel, skipped", file=sys.stderr)
            continue
        pick = _pick(x86)
        print(f"{vs}: reading {pick.filename}", file=sys.stderr)
        elves = read_wheel_elves(cached_download(pick.url, pick.filename, pick.sha256))
        row: dict[str, Any] = {"version": vs}
        row["released"] = min(f["upload_time"] for f in files)[:10]
        gpu = _gpu_facts(vs, elves) if _has_cuda(elves) else {}
        row.update(gpu)
        row["python"] = sorted({w.python for w in x86 if not w.freethreaded}, key=Version)
        ft = sorted({w.python for w in x86 if w.freethreaded}, key=Version)
        row["python_freethreaded"] = ft or None
        row["glibc_min"] = pick.glibc
        row["glibc_symbols_max"] = _glibc_symbols(elves)
        cuda_plat: list[str] = ["x86_64"] if gpu else []
        cpu_plat: list[str] = [] if gpu else ["x86_64"]
        sources = [f"{pick.url}: ctranslate2.libs/{_core(elves).name} ELF"]
        for arch in sorted({w.arch for w in wheels} - {"x86_64"}):
            other = _pick([w for w in wheels if w.arch == arch])
            print(f"{vs}: reading {other.filename}", file=sys.stderr)
            o_elves = read_wheel_elves(cached_download(other.url, other.filename, other.sha256))
            (cuda_plat if _has_cuda(o_elves) else cpu_plat).append(arch)
            sources.append(f"{other.url}: ctranslate2.libs/{_core(o_elves).name} ELF")
        row["cuda_platforms"] = cuda_plat or None
        row["cpu_platforms"] = cpu_plat or None
        row["note"] = _note(vs, row)
        cur = CURATED.get(vs)
        if cur:
            sources.append(f"https://github.com/{REPO}/blob/{cur[0]}/{SCRIPT} (tag v{vs}): CUDA toolkit")
        row["source"] = "; ".join(sources)
        row["checked"] = (
            f"scripts/derive_ctranslate2.py downloaded the wheels from PyPI on {today} (sha256 "
            "verified) and read DT_NEEDED, dlopen strings, PT_GNU_STACK, GLIBC versions and "
            ".nv_fatbin from the ELF" + ("; CUDA toolkit read from the build script at the tag" if cur else "")
        )
        rows.append(keep_checked(row, old.get(vs)))
    return rows


def _pick(wheels: list[Wheel]) -> Wheel:
    """cp311 if present, else the newest non-free-threaded CPython wheel."""
    regular = [w for w in wheels if not w.freethreaded] or wheels
    for w in regular:
        if w.python == "3.11":
            return w
    return max(regular, key=lambda w: Version(w.python))


def _glibc_symbols(elves: list[ElfInfo]) -> str | None:
    vers = [v for e in elves for v in e.glibc_versions]
    return max(vers, key=Version) if vers else None


def _note(version: str, row: dict[str, Any]) -> str | None:
    parts: list[str] = []
    major = row.get("cudnn_major")
    cur = CURATED.get(version)
    if major == 0:
        off = " (build script: -DWITH_CUDNN=OFF)" if cur and cur[1][2] == "OFF" else ""
        parts.append(f"links and dlopens no cuDNN{off}")
    elif major == 9:
        parts.append(
            "bundled cuDNN 9 loader dlopens its sub-libraries as '<name>.so.%d[.%d[.%d]]' "
            "from its own version, so host cuDNN 9 sub-libraries are needed"
        )
    elif major == 8:
        parts.append("bundled cuDNN 8 loader dlopens the host's libcudnn_*_infer/train.so.8")
    if row.get("execstack"):
        parts.append("PT_GNU_STACK is RWE: glibc >= 2.41 refuses to dlopen it ('cannot enable executable stack')")
    if row.get("cuda_major") and "cuda" not in row and row.get("ptx_isa"):
        parts.append(f"build script for this tag not available; the fatbin's PTX is ISA {row['ptx_isa']}")
    if cur:
        parts.append(f"built with nvcc {cur[1][0]}, cuDNN devel {cur[1][1]}, WITH_CUDNN={cur[1][2]}")
    return "; ".join(parts) or None


def keep_checked(row: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """Keep the committed `checked` when every other fact is unchanged, so --check is stable."""
    if old is None or "checked" not in old:
        return row
    new = {k: v for k, v in row.items() if v is not None and k != "checked"}
    if new == {k: v for k, v in old.items() if k != "checked"}:
        row["checked"] = old["checked"]
    return row


def old_rows(name: str) -> dict[str, dict[str, Any]]:
    """The rows of the committed matrices/<name>.toml by version ({} if there is none)."""
    path = MATRICES / f"{name}.toml"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        return {r["version"]: r for r in tomllib.load(fh).get("rows", [])}


HEADER = """\
generated by envsolve scripts/derive_ctranslate2.py, regenerate with: python scripts/derive_ctranslate2.py
Facts per release read from the Linux wheels on PyPI (libctranslate2 ELF: DT_NEEDED, dlopen strings,
PT_GNU_STACK, GLIBC_* symbol versions, .nv_fatbin cubins/PTX). `cuda` (toolkit of the build) comes from
OpenNMT/CTranslate2 python/tools/prepare_build_environment_linux.sh at each tag (cited per row); absent
where the tag's script was not available. cudnn_major = 0 means the build loads no cuDNN at all.
arch = compute capabilities with cubins in libctranslate2; ptx_arch = those shipped as PTX (JIT)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = ap.parse_args(argv)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    rows = derive(today, old_rows(NAME))
    text = render_matrix(
        NAME,
        "ctranslate2: CUDA, cuDNN, execstack and glibc needs of each PyPI release",
        ["version"],
        "version",
        rows,
        HEADER,
    )
    return write_or_check(NAME, text, args.check)


if __name__ == "__main__":
    raise SystemExit(main())
