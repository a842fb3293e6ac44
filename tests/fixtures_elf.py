"""Build real shared objects with gcc for the ELF, ld.so.cache and loader tests.

Each fake library exports `which()` returning a tag, so a test can also ask the library that the
real loader picked who it is. The consumer, libctranslate2-fake.so, links one cuDNN (DT_NEEDED) and
dlopens cuBLAS by name from its own code, as ctranslate2 does, so its RUNPATH governs both.
`probe_real_loader` runs a fresh Python under a chosen LD_LIBRARY_PATH and reports the link map
(the names glibc recorded, unnormalised) and the LD_DEBUG=libs search trace.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HAVE_GCC = shutil.which("gcc") is not None

_LIB_SOURCE = 'const char *which(void) { return "%s"; }\n'
_CONSUMER_SOURCE = r"""
#include <dlfcn.h>
#include <stddef.h>
extern const char *which(void);
/* The soname lives in .rodata, a string loader.dlopen_names finds. */
static const char dlopen_name[] = "%s";
const char *linked_which(void) { return which(); }
int load_dlopen(void) { return dlopen(dlopen_name, RTLD_NOW) != NULL; }
"""


def gcc_shared(out: Path, source: str, *args: str) -> Path:
    """Compile `source` into the shared object `out` with extra gcc/linker `args`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_name(out.name + ".c")
    src.write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src), *args], check=True)
    src.unlink()
    return out


def fake_lib(out: Path, soname: str, tag: str, *args: str) -> Path:
    """A library with DT_SONAME `soname` whose which() returns `tag`."""
    return gcc_shared(out, _LIB_SOURCE % tag, f"-Wl,-soname,{soname}", *args)


def consumer(
    out: Path,
    *,
    link_dir: Path,
    needed: str,
    dlopen_name: str = "libcublas.so.12",
    runpath: str | None = None,
    rpath: str | None = None,
    extra: tuple[str, ...] = (),
) -> Path:
    """A fake libctranslate2: DT_NEEDED on `needed` (found in `link_dir` at build time only)."""
    args = [f"-Wl,-soname,{out.name}", f"-L{link_dir}", "-Wl,--no-as-needed", f"-l:{needed}", "-ldl"]
    if runpath is not None:
        args += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{runpath}"]
    if rpath is not None:
        args += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{rpath}"]
    return gcc_shared(out, _CONSUMER_SOURCE % dlopen_name, *args, *extra)


@dataclass(frozen=True)
class Tree:
    """A site-packages-like layout with system, pip and LD_LIBRARY_PATH copies of cuDNN/cuBLAS."""

    root: Path
    system: Path  # stands in for /usr/lib/x86_64-linux-gnu
    pip_cudnn: Path  # site-packages/nvidia/cudnn/lib
    pip_cublas: Path  # site-packages/nvidia/cublas/lib
    llp: Path  # a directory a user put in LD_LIBRARY_PATH
    ct2: Path  # site-packages/ctranslate2


def build_tree(root: Path) -> Tree:
    """Fake libraries in several places; consumers are built per test."""
    site = root / "site-packages"
    tree = Tree(
        root,
        root / "sys",
        site / "nvidia/cudnn/lib",
        site / "nvidia/cublas/lib",
        root / "llp",
        site / "ctranslate2",
    )
    fake_lib(tree.system / "libcudnn.so.8", "libcudnn.so.8", "cudnn8-system")
    fake_lib(tree.system / "libcudnn.so.9", "libcudnn.so.9", "cudnn9.1-system")
    fake_lib(tree.pip_cudnn / "libcudnn.so.9", "libcudnn.so.9", "cudnn9.8-pip")
    fake_lib(tree.llp / "libcudnn.so.9", "libcudnn.so.9", "cudnn9.0-llp")
    fake_lib(tree.system / "libcublas.so.12", "libcublas.so.12", "cublas12-system")
    fake_lib(tree.pip_cublas / "libcublas.so.12", "libcublas.so.12", "cublas12-pip")
    tree.ct2.mkdir(parents=True, exist_ok=True)
    return tree


@dataclass(frozen=True)
class RealLoad:
    """What the real loader did in a fresh process."""

    ok: bool
    error: str | None
    link_map: tuple[str, ...]  # l_name of every loaded object, in load order
    tried: dict[str, list[str]]  # soname -> files tried (LD_DEBUG=libs), first lookup only
    tags: dict[str, str]  # which() of the consumer's linked library

    def loaded(self, basename: str) -> str | None:
        """The link-map name of the last loaded object whose file is called `basename`."""
        return next((n for n in reversed(self.link_map) if os.path.basename(n) == basename), None)


_PROBE = r"""
import ctypes, json, sys
consumer, do_dlopen, preload = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
out = {"ok": True, "error": None, "tags": {}}
class LinkMap(ctypes.Structure):
    pass
LinkMap._fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p), ("l_ld", ctypes.c_void_p),
                    ("l_next", ctypes.POINTER(LinkMap)), ("l_prev", ctypes.POINTER(LinkMap))]
try:
    for p in preload:
        ctypes.CDLL(p)
    lib = ctypes.CDLL(consumer)
    lib.linked_which.restype = ctypes.c_char_p
    out["tags"]["linked"] = lib.linked_which().decode()
    if do_dlopen and not lib.load_dlopen():
        out["ok"], out["error"] = False, "dlopen failed"
except OSError as e:
    out["ok"], out["error"] = False, str(e)
# glibc's dlopen handle is the object's struct link_map; walk the whole chain from it.
head = ctypes.cast(ctypes.CDLL(None)._handle, ctypes.POINTER(LinkMap))
names, node = [], head
while node:
    names.append((node.contents.l_name or b"").decode())
    node = node.contents.l_next
out["link_map"] = names
print("@@" + json.dumps(out))
"""
_HWCAP_DIRS = {"glibc-hwcaps", "tls", "x86_64", "haswell", "avx512_1", "xeon_phi"}


def probe_real_loader(
    consumer_path: Path | str,
    *,
    ld_library_path: str | None,
    dlopen: bool = False,
    preload: tuple[str, ...] = (),
    cwd: Path | None = None,
) -> RealLoad:
    """Load `consumer_path` with ctypes in a fresh interpreter and report what glibc did."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    env["LD_DEBUG"] = "libs"
    if ld_library_path is not None:
        env["LD_LIBRARY_PATH"] = ld_library_path
    argv = [sys.executable, "-c", _PROBE, str(consumer_path), "1" if dlopen else "0", *preload]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd=cwd)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("@@"))
    data = json.loads(line[2:])
    return RealLoad(data["ok"], data["error"], tuple(data["link_map"]), _parse_ld_debug(proc.stderr), data["tags"])


def _parse_ld_debug(text: str) -> dict[str, list[str]]:
    """soname -> files tried, from LD_DEBUG=libs, without hwcap subdirectory probes."""
    tried: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.split(":", 1)[1].strip() if ":" in raw else ""
        if line.startswith("find library="):
            name = line.removeprefix("find library=").split(" ", 1)[0]
            current = [] if name not in tried else None
            if current is not None:
                tried[name] = current
        elif line.startswith("trying file=") and current is not None:
            path = line.removeprefix("trying file=")
            if not _HWCAP_DIRS & set(Path(path).parent.parts):
                current.append(path)
        elif not line:
            current = None
    return tried


def patch_bytes(path: Path, offset: int, value: bytes) -> Path:
    """Overwrite bytes in a copy-on-purpose fixture (wrong class, wrong machine...)."""
    data = bytearray(path.read_bytes())
    data[offset : offset + len(value)] = value
    path.write_bytes(bytes(data))
    return path


def json_dump(obj: object) -> str:  # handy when a comparison fails
    return json.dumps(obj, indent=1, default=str)


def synth_elf(
    *,
    bits: int = 64,
    byteorder: str = "little",
    machine: int = 62,
    needed: tuple[str, ...] = (),
    soname: str | None = None,
    rpath: str | None = None,
    runpath: str | None = None,
    rodata: bytes = b"",
    stack_flags: int | None = 6,
) -> bytes:
    """A minimal ET_DYN with one read-only PT_LOAD, PT_DYNAMIC and optional PT_GNU_STACK, for the
    byte orders and classes gcc here cannot produce. No section headers, like an sstrip'd file."""
    e = "<" if byteorder == "little" else ">"
    ehsize, phsize, dynsize = (64, 56, 16) if bits == 64 else (52, 32, 8)
    strtab = b"\0"
    refs: list[tuple[int, int]] = []
    for tag, value in [(1, n) for n in needed] + [(14, soname), (15, rpath), (29, runpath)]:
        if value is not None:
            refs.append((tag, len(strtab)))
            strtab += value.encode() + b"\0"
    phnum = 3 if stack_flags is not None else 2
    str_off = ehsize + phsize * phnum
    ro_off = str_off + len(strtab)
    dyn_off = (ro_off + len(rodata) + 7) & ~7
    dyn = [*refs, (5, str_off), (10, len(strtab)), (0, 0)]
    size = dyn_off + dynsize * len(dyn)
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if byteorder == "little" else 2, 1, 0]) + bytes(8)
    if bits == 64:
        head = struct.pack(e + "HHIQQQIHHHHHH", 3, machine, 1, 0, ehsize, 0, 0, ehsize, phsize, phnum, 64, 0, 0)
        ph = struct.pack(e + "IIQQQQQQ", 1, 4, 0, 0, 0, size, size, 0x1000)
        ph += struct.pack(e + "IIQQQQQQ", 2, 4, dyn_off, dyn_off, dyn_off, size - dyn_off, size - dyn_off, 8)
        if stack_flags is not None:
            ph += struct.pack(e + "IIQQQQQQ", 0x6474E551, stack_flags, 0, 0, 0, 0, 0, 16)
        body = b"".join(struct.pack(e + "qQ", t, v) for t, v in dyn)
    else:
        head = struct.pack(e + "HHIIIIIHHHHHH", 3, machine, 1, 0, ehsize, 0, 0, ehsize, phsize, phnum, 40, 0, 0)
        ph = struct.pack(e + "IIIIIIII", 1, 0, 0, 0, size, size, 4, 0x1000)
        ph += struct.pack(e + "IIIIIIII", 2, dyn_off, dyn_off, dyn_off, size - dyn_off, size - dyn_off, 4, 4)
        if stack_flags is not None:
            ph += struct.pack(e + "IIIIIIII", 0x6474E551, 0, 0, 0, 0, 0, stack_flags, 16)
        body = b"".join(struct.pack(e + "iI", t, v) for t, v in dyn)
    out = ident + head + ph + strtab + rodata
    return out + bytes(dyn_off - len(out)) + body


def set_flags_1(path: Path, extra: int) -> Path:
    """OR `extra` into DT_FLAGS_1 of a 64-bit little-endian object built with `-z now` (which
    gives it a DT_FLAGS_1 entry). GNU ld ignores `-z nodeflib` for shared objects, but glibc
    honours DF_1_NODEFLIB wherever it finds it, so tests set it by hand."""
    data = bytearray(path.read_bytes())
    phoff, phentsize, phnum = struct.unpack_from("<Q", data, 32)[0], *struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type != 2:
            continue
        for at in range(p_offset, p_offset + p_filesz, 16):
            tag, value = struct.unpack_from("<qQ", data, at)
            if tag == 0x6FFFFFFB:
                struct.pack_into("<qQ", data, at, tag, value | extra)
                path.write_bytes(bytes(data))
                return path
    raise ValueError(f"{path} has no DT_FLAGS_1; build it with -Wl,-z,now")
