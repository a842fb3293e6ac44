"""Simulate where glibc's dynamic loader finds a library, without loading anything.

The order is glibc's `_dl_map_object` (elf/dl-load.c):
1. a name containing "/" is a path (dynamic string tokens expanded, relative to the cwd);
2. an object already loaded whose DT_SONAME (or load path) equals the name;
3. DT_RPATH of the requesting object, then of the objects that loaded it, up to the executable,
   but only when the requesting object has no DT_RUNPATH (an object with both keeps only RUNPATH);
4. LD_LIBRARY_PATH (split on ':' and ';', an empty entry is the cwd);
5. DT_RUNPATH of the requesting object only;
6. /etc/ld.so.cache, then 7. the default directories; both skipped for a `-z nodeflib` object.
In every directory a file of the wrong ELF class or machine is passed over, but a file that is
not ELF at all (a linker script, a truncated download) stops the search with an error, as in
glibc's open_verify. glibc-hwcaps and legacy hwcap subdirectories are not modelled.

`consumer_links` applies `resolve` to what one consumer asks for: its DT_NEEDED entries, then the
CUDA/cuDNN/FFmpeg sonames written in the binary (`dlopen_names`), which it may dlopen.
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from envsolve.resolver.host import LoaderLink
from envsolve.resolver.probe.elf import ET_DYN, ET_EXEC, ElfError, ElfFile, is_soname_like, open_regular, read_header
from envsolve.resolver.probe.ldcache import LdCache, cache_flags_for

__all__ = [
    "DEFAULT_DIRS",
    "DLOPEN_SCAN_LIMIT",
    "REPORTED_PREFIXES",
    "Resolution",
    "consumer_links",
    "dlopen_names",
    "resolve",
    "split_search_path",
]

DEFAULT_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)
# The sonames a consumer's links record, and the ones followed when a binary names them only as
# strings it will dlopen. Other DT_NEEDED entries (libc, libtorch) are resolved, as they bring in
# files, but not recorded.
REPORTED_PREFIXES = (
    "libcudnn", "libcublas", "libcudart", "libcufft", "libcurand", "libcusparse", "libcusolver",
    "libnccl", "libnvrtc", "libnvJitLink", "libcuda.", "libnvidia-ml", "libav", "libsw",
)  # fmt: skip
MAX_SEARCHED = 40  # files tried kept per link; a 10,000-entry LD_LIBRARY_PATH must not bloat snapshots
DLOPEN_SCAN_LIMIT = 1 << 30  # bytes of a consumer scanned for the sonames it dlopens
# What $LIB and $PLATFORM expand to: Debian's multiarch values for x86_64.
_LIB, _PLATFORM = "lib/x86_64-linux-gnu", "x86_64"
_DST = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")
# Errors after which glibc's open_path moves on to the next directory (dl-load.c: ENOENT, EACCES;
# ENOTDIR when a path element is a file; ELOOP for a symlink loop behaves like ENOENT there too).
_SKIP_ERRNOS = {errno.ENOENT, errno.EACCES, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG}


@dataclass(frozen=True)
class Resolution:
    """Where a soname resolves for one consumer, how, and every file tried on the way."""

    soname: str
    resolved: str | None
    via: str | None  # rpath, ld_library_path, runpath, ld.so.cache, default, already-loaded, path
    searched: tuple[str, ...] = ()
    error: str | None = None  # a fatal error the real loader would raise (e.g. invalid ELF header)


@dataclass(frozen=True)
class _Target:
    """What a candidate file must match: the requesting object's ELF identity."""

    elf_class: int
    data: int
    machine: int


def split_search_path(value: str, separators: str = ":") -> list[str]:
    """Split a search path as glibc's fillin_rpath does: empty entries mean the current directory
    ("."), trailing slashes are dropped, duplicates after the first are skipped."""
    parts = re.split("[" + re.escape(separators) + "]", value)
    out: list[str] = []
    seen: set[str] = set()
    for part in parts:
        d = part or "."
        while len(d) > 1 and d.endswith("/"):
            d = d[:-1]
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _expand(entry: str, origin: str | None) -> str | None:
    """Substitute $ORIGIN/$LIB/$PLATFORM; None when $ORIGIN is unknown (glibc drops the entry)."""
    values = {"ORIGIN": origin, "LIB": _LIB, "PLATFORM": _PLATFORM}
    names = [m.group(1) or m.group(2) for m in _DST.finditer(entry)]
    if any(values[n] is None for n in names):
        return None
    return _DST.sub(lambda m: values[m.group(1) or m.group(2)] or "", entry)


def _origin(path: str, cwd: str) -> str:
    # glibc takes the directory of the name the object was opened by, without resolving symlinks
    # or "..": $ORIGIN of a symlinked library is the symlink's directory (dl-object.c).
    full = path if path.startswith("/") else os.path.join(cwd, path)
    head = full.rsplit("/", 1)[0]
    return head or "/"


class _Search:
    """One lookup: collects tried files and the first fatal error."""

    def __init__(self, soname: str, target: _Target) -> None:
        self.soname = soname
        self.target = target
        self.searched: list[str] = []
        self.error: str | None = None

    def try_file(self, path: str) -> bool:
        """True when the loader would take `path`; sets `error` when it would give up instead."""
        self.searched.append(path)
        try:
            # Non-blocking: glibc would block for ever opening a FIFO of that name; the probe must not.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno in _SKIP_ERRNOS:
                return False
            self.error = f"{path}: cannot open shared object file: {e.strerror}"
            return False
        try:
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(fd)
                if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                    self.error = (f"{path}: cannot read file data: not a regular file (glibc's loader would block "
                                  "or fail on it)")
                    return False
                os.set_blocking(fd, True)
                # glibc first reads one ELF header of its own class; fewer bytes is fatal.
                if len(f.read(64 if self.target.elf_class == 2 else 52)) < (64 if self.target.elf_class == 2 else 52):
                    self.error = f"{path}: file too short"
                    return False
                header = read_header(f)
        except ElfError as e:
            self.error = f"{path}: {e.message}"
            return False
        except OSError as e:  # EISDIR: open(2) on a directory works, read(2) fails; fatal in glibc
            self.error = f"{path}: cannot read file data: {e.strerror}"
            return False
        if (header.elf_class == self.target.elf_class and header.phnum
                and header.phoff + header.phnum * header.phentsize > info.st_size):
            # open_verify reads the program headers next; a truncated file cannot give them (dl-load.c).
            self.error = f"{path}: cannot read file data"
            return False
        if header.elf_class != self.target.elf_class or header.machine != self.target.machine:
            return False
        if header.data != self.target.data:
            self.error = f"{path}: ELF file data encoding not {'little' if self.target.data == 1 else 'big'}-endian"
            return False
        if header.e_type not in (ET_DYN, ET_EXEC):
            self.error = f"{path}: only ET_DYN and ET_EXEC can be loaded"
            return False
        return True

    def in_dirs(self, dirs: Iterable[str]) -> str | None:
        for d in dirs:
            path = (d if d.endswith("/") else d + "/") + self.soname
            if self.try_file(path):
                return path
            if self.error:
                return None
        return None

    def result(self, resolved: str | None, via: str | None) -> Resolution:
        return Resolution(self.soname, resolved, via, tuple(self.searched), self.error)


def resolve(
    consumer_path: str,
    soname: str,
    *,
    env_ld_library_path: str | None,
    ld_cache: LdCache,
    default_dirs: Sequence[str] = DEFAULT_DIRS,
    loaded: Sequence[str] = (),
    loader_chain: Sequence[str] = (),
    cwd: str | None = None,
) -> Resolution:
    """Where glibc would find `soname` when `consumer_path` asks for it (DT_NEEDED or dlopen).

    `loaded`: paths already in the process; `loader_chain`: the objects that loaded the consumer,
    nearest first, ending with the executable (their DT_RPATH counts too). Raises ElfError when the
    consumer itself cannot be read.
    """
    cwd = cwd if cwd is not None else os.getcwd()
    with ElfFile.open(consumer_path) as consumer:
        target = _Target(consumer.elf_class, consumer.header.data, consumer.machine)
        runpath, rpath, nodeflib = consumer.runpath, consumer.rpath, consumer.nodeflib
    search = _Search(soname, target)
    origin = _origin(consumer_path, cwd)

    if "/" in soname:
        path = _expand(soname, origin)
        if path is None:
            return search.result(None, None)
        path = path if path.startswith("/") else os.path.join(cwd, path)
        found = search.try_file(path)
        return search.result(path if found else None, "path" if found else None)

    hit = _already_loaded(soname, loaded)
    if hit is not None:
        return search.result(hit, "already-loaded")

    def dirs(value: str, owner: str | None, seps: str = ":") -> list[str]:
        owner_origin = _origin(owner, cwd) if owner is not None else None
        out = [_expand(d, owner_origin) for d in split_search_path(value, seps)]
        return [d for d in out if d is not None]

    if runpath is None:
        # The requesting object's RPATH, then its loaders' (an object with RUNPATH has no RPATH).
        chain = [(consumer_path, rpath)] + [(p, _rpath_of(p)) for p in loader_chain]
        for owner, value in chain:
            if value is not None:
                found_at = search.in_dirs(dirs(value, owner))
                if found_at or search.error:
                    return search.result(found_at, "rpath" if found_at else None)

    if env_ld_library_path:
        exe = loader_chain[-1] if loader_chain else None
        found_at = search.in_dirs(dirs(env_ld_library_path, exe, ":;"))
        if found_at or search.error:
            return search.result(found_at, "ld_library_path" if found_at else None)

    if runpath is not None:
        found_at = search.in_dirs(dirs(runpath, consumer_path))
        if found_at or search.error:
            return search.result(found_at, "runpath" if found_at else None)

    if nodeflib:
        return search.result(None, None)

    entry = ld_cache.lookup(soname, cache_flags_for(target.elf_class, target.machine))
    if entry is not None:
        # The loader still verifies the cached file; a wrong-class one falls through to the dirs.
        if search.try_file(entry.path):
            return search.result(entry.path, "ld.so.cache")
        if search.error:
            return search.result(None, None)

    found_at = search.in_dirs(default_dirs)
    return search.result(found_at, "default" if found_at else None)


def _rpath_of(path: str) -> str | None:
    try:
        with ElfFile.open(path) as elf:
            return None if elf.runpath is not None else elf.rpath
    except ElfError:
        return None


def _already_loaded(soname: str, loaded: Sequence[str]) -> str | None:
    # glibc matches the name an object was opened by, or its DT_SONAME; a file loaded by path
    # without a DT_SONAME does not satisfy a later request by bare name.
    for path in loaded:
        if path == soname:
            return path
        try:
            with ElfFile.open(path) as elf:
                if elf.soname == soname:
                    return path
        except ElfError:
            continue
    return None


def consumer_links(
    path: str,
    name: str,
    *,
    env_ld_library_path: str | None,
    ld_cache: LdCache,
    loaded: Sequence[str] = (),
    loader_chain: Sequence[str] = (),
    default_dirs: Sequence[str] = DEFAULT_DIRS,
    scan_limit: int = DLOPEN_SCAN_LIMIT,
) -> tuple[list[LoaderLink], list[str]]:
    """The links of the consumer at `path` (named `name` in them), and every file it brings in.

    Each DT_NEEDED soname is resolved and the file found counts as loaded; only REPORTED_PREFIXES
    sonames become links. Then the sonames in its first `scan_limit` bytes (`dlopen_names`) are
    resolved as dlopen calls, which come after the DT_NEEDED libraries are in. scan_limit=0 skips
    the scan (torch links its CUDA libraries and dlopens only the driver's). Raises ElfError when
    `path` cannot be read.
    """
    with ElfFile.open(path) as elf:
        needed = elf.needed
    strings = dlopen_names(path, scan_limit) if scan_limit > 0 else ()
    links: list[LoaderLink] = []
    now_loaded = list(loaded)

    def run(soname: str, already: Sequence[str]) -> Resolution:
        return resolve(path, soname, env_ld_library_path=env_ld_library_path, ld_cache=ld_cache,
                       default_dirs=default_dirs, loaded=already, loader_chain=loader_chain)

    for soname in needed:
        res = run(soname, loaded)
        if res.resolved:
            now_loaded.append(res.resolved)
        if soname.startswith(REPORTED_PREFIXES):
            links.append(_link(name, res, "needed"))
    for soname in strings:
        if soname not in needed and soname != os.path.basename(path):
            links.append(_link(name, run(soname, now_loaded), "dlopen"))
    return links, now_loaded


# A REPORTED_PREFIXES soname anywhere in the bytes; the literal "lib" first keeps the scan a fast search.
_DLOPEN = re.compile(rb"lib(?=" + b"|".join(re.escape(p.removeprefix("lib").encode()) for p in REPORTED_PREFIXES)
                     + rb")[A-Za-z0-9_.+\-]{0,200}?\.so(?:\.[0-9]+)*")
_NAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-")


def dlopen_names(path: str, limit: int = DLOPEN_SCAN_LIMIT) -> tuple[str, ...]:
    """The REPORTED_PREFIXES sonames written anywhere in the first `limit` bytes of `path`, in first-seen
    order; () when it cannot be read. A name glued to more name characters (libcudnn.so.9x) is not one.

    A binary that dlopens a library by name holds the name as a string (ctranslate2 and cuDNN do).
    One C-level regex over a memory map finds them in ctranslate2's 80 MB library in 60 ms, where
    tokenising its read-only sections in Python took 1 s (20 s for torch's).
    """
    found: dict[str, None] = {}
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return ()
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                for match in _DLOPEN.finditer(m, 0, min(size, limit)):
                    start, end = match.span()
                    if (start and m[start - 1] in _NAME_BYTES) or (end < size and m[end] in _NAME_BYTES):
                        continue
                    name = match.group().decode("ascii")
                    if is_soname_like(name):
                        found.setdefault(name)
    except (OSError, ValueError):
        return ()
    return tuple(found)


def _link(name: str, res: Resolution, how: str) -> LoaderLink:
    searched = res.searched
    if len(searched) > MAX_SEARCHED:
        searched = (*searched[: MAX_SEARCHED - 1], f"... {len(searched) - MAX_SEARCHED + 1} more files tried",
                    searched[-1])
    via = res.via if res.resolved else (f"error: {res.error}" if res.error else None)
    return LoaderLink(name, res.soname, res.resolved, via, how, searched)
