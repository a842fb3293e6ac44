"""Read /etc/ld.so.cache the way glibc's loader does, and parse `ldconfig -p` text.

Layouts follow glibc's sysdeps/generic/dl-cache.h and elf/cache.c:
- old "ld.so-1.7.0": 16-byte header, 12-byte entries {flags, key, value}; string offsets count
  from the end of the entry table.
- new "glibc-ld.so.cache1.1": 48-byte header {magic, nlibs, len_strings, flags (byte order),
  extension_offset}, 24-byte entries {flags, key, value, osversion, hwcap}; string offsets count
  from the start of the new header. glibc 2.2 to 2.31 wrote the new table after an old one
  (aligned to 8), glibc 2.32+ writes the new one alone.
- the extension block (glibc 2.33+) names the generator and the glibc-hwcaps subdirectories.

`parse_ld_so_cache` is pure; `read_ld_so_cache` does the I/O and never raises: a missing or broken
cache gives an empty result and a reason, as a probe must.
"""

from __future__ import annotations

import os
import re
import struct
import sys
from dataclasses import dataclass, field

from envsolve.resolver.probe.elf import open_regular

__all__ = [
    "CacheEntry",
    "LdCache",
    "cache_flags_for",
    "parse_ld_so_cache",
    "parse_ldconfig_p",
    "read_ld_so_cache",
]

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
_EXT_MAGIC = 0xEAA42174
_EXT_GENERATOR, _EXT_HWCAPS = 0, 1
_HWCAP_EXTENSION = 1 << 62
_MAX_CACHE = 256 << 20  # a real cache is well under 1 MB; this bounds corrupt input
_MAX_STRING = 4096

FLAG_TYPE_MASK, FLAG_REQUIRED_MASK = 0x00FF, 0xFF00
_TYPES = {0: "libc4", 1: "ELF", 2: "libc5", 3: "libc6"}
# What `ldconfig -p` prints for the required-ABI byte (glibc elf/ldconfig.c print_entry).
_ABIS = {
    0x0100: "64bit", 0x0200: "IA-64", 0x0300: "x86-64", 0x0400: "64bit", 0x0500: "64bit",
    0x0600: "N32", 0x0700: "64bit", 0x0800: "x32", 0x0900: "hard-float", 0x0A00: "AArch64",
    0x0B00: "soft-float", 0x0C00: "nan2008", 0x0D00: "N32,nan2008", 0x0E00: "64bit,nan2008",
    0x0F00: "soft-float", 0x1000: "double-float", 0x1100: "soft-float", 0x1200: "double-float",
}  # fmt: skip
# (ELF class, e_machine) -> the one flags value the loader accepts (sysdeps/.../dl-cache.h).
_LOADER_FLAGS = {(2, 62): 0x0303, (1, 62): 0x0803, (2, 183): 0x0A03, (2, 21): 0x0503, (2, 22): 0x0403}
_LDCONFIG_LINE = re.compile(r"^\s+(?P<key>\S+) \((?P<attrs>[^)]*)\) => (?P<value>.*)$")


@dataclass(frozen=True)
class CacheEntry:
    """One cache row: a soname, the file it maps to, and the ABI flags that gate its use."""

    soname: str
    path: str
    flags: int
    osversion: int = 0
    hwcap: int = 0
    hwcaps_subdir: str | None = None  # e.g. "x86-64-v3" for a glibc-hwcaps entry

    @property
    def kind(self) -> str:
        return _TYPES.get(self.flags & FLAG_TYPE_MASK, "unknown")

    @property
    def abi(self) -> str | None:
        required = self.flags & FLAG_REQUIRED_MASK
        return _ABIS.get(required, str(required)) if required else None


@dataclass(frozen=True)
class LdCache:
    """A parsed cache. Empty with a `reason` when it could not be read."""

    entries: tuple[CacheEntry, ...] = ()
    format: str | None = None  # "old", "new" or "old+new"
    generator: str | None = None
    reason: str | None = None
    _index: dict[str, tuple[CacheEntry, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, list[CacheEntry]] = {}
        for entry in self.entries:
            index.setdefault(entry.soname, []).append(entry)
        self._index.update({k: tuple(v) for k, v in index.items()})

    def lookup(self, soname: str, flags: int | None = None, hwcaps: tuple[str, ...] = ()) -> CacheEntry | None:
        """The entry the loader would take for `soname`, or None.

        `flags` is the value from `cache_flags_for` (None accepts 1 or 3, glibc's generic check).
        A glibc-hwcaps entry wins only when its subdirectory is in `hwcaps` (priority order);
        otherwise the first plain entry in cache order wins, as in glibc's search_cache.
        """
        candidates = [e for e in self._index.get(soname, ()) if _flags_ok(e.flags, flags)]
        for subdir in hwcaps:
            for entry in candidates:
                if entry.hwcaps_subdir == subdir:
                    return entry
        return next((e for e in candidates if e.hwcaps_subdir is None), None)


def cache_flags_for(elf_class: int, machine: int) -> int | None:
    """The entry flags the loader for this ABI accepts; None means the generic 1-or-3 rule."""
    return _LOADER_FLAGS.get((elf_class, machine))


def _flags_ok(entry_flags: int, wanted: int | None) -> bool:
    if wanted is None:
        return entry_flags in (1, 3)
    return entry_flags == wanted


class _Corrupt(Exception):
    pass


def parse_ld_so_cache(data: bytes) -> LdCache:
    """Parse the bytes of an ld.so.cache. Corrupt input gives an empty LdCache with a reason.

    Old-format files, and new ones written before glibc recorded the byte order, are read in this
    machine's byte order, as its loader reads them.
    """
    if len(data) > _MAX_CACHE:
        return LdCache(reason=f"cache is {len(data)} bytes, more than any real one")
    try:
        return _parse(data, "<" if sys.byteorder == "little" else ">")
    except (_Corrupt, struct.error, UnicodeError) as e:
        return LdCache(reason=f"corrupt ld.so.cache: {e}")


def _parse(data: bytes, order: str) -> LdCache:
    if data.startswith(NEW_MAGIC):
        return _parse_new(data, 0, order, "new")
    if not data.startswith(OLD_MAGIC):
        raise _Corrupt(f"unknown magic {data[:20]!r}")
    (nlibs,) = struct.unpack_from(order + "I", data, 12)
    table_end = 16 + 12 * nlibs
    if table_end > len(data):
        raise _Corrupt(f"{nlibs} old entries do not fit in {len(data)} bytes")
    new_at = (table_end + 7) & ~7
    if data[new_at : new_at + len(NEW_MAGIC)] == NEW_MAGIC:
        # glibc prefers the new table when both are present.
        return _parse_new(data, new_at, order, "old+new")
    entries = []
    for i in range(nlibs):
        flags, key, value = struct.unpack_from(order + "iII", data, 16 + 12 * i)
        entries.append(CacheEntry(_cstr(data, table_end + key), _cstr(data, table_end + value), flags))
    return LdCache(tuple(entries), "old")


def _parse_new(data: bytes, base: int, order: str, fmt: str) -> LdCache:
    if len(data) < base + 48:
        raise _Corrupt("truncated header")
    endian = data[base + 28]
    if endian in (2, 3):  # cache_file_new_flags_endian_little / _big
        order = "<" if endian == 2 else ">"
    elif endian == 1:
        raise _Corrupt("header marks the byte order invalid")
    nlibs, _len_strings = struct.unpack_from(order + "II", data, base + 20)
    (ext_offset,) = struct.unpack_from(order + "I", data, base + 32)
    if base + 48 + 24 * nlibs > len(data):
        raise _Corrupt(f"{nlibs} entries do not fit in {len(data)} bytes")
    generator, subdirs = _parse_extensions(data, base, ext_offset, order)
    entries = []
    for i in range(nlibs):
        flags, key, value, osversion, hwcap = struct.unpack_from(order + "iIIIQ", data, base + 48 + 24 * i)
        subdir = None
        if hwcap >> 32 == _HWCAP_EXTENSION >> 32:
            index = hwcap & 0xFFFFFFFF
            if index >= len(subdirs):
                raise _Corrupt(f"hwcaps index {index} out of range")
            subdir = subdirs[index]
        entries.append(CacheEntry(_cstr(data, base + key), _cstr(data, base + value), flags, osversion, hwcap, subdir))
    return LdCache(tuple(entries), fmt, generator)


def _parse_extensions(data: bytes, base: int, offset: int, order: str) -> tuple[str | None, list[str]]:
    """The generator string and the glibc-hwcaps subdirectory names, when present."""
    # Unlike string offsets, the extension and section offsets count from the start of the file
    # (they differ in the old+new layout, where the new header is not at 0).
    if offset == 0 or offset + 8 > len(data):
        return None, []
    magic, count = struct.unpack_from(order + "II", data, offset)
    if magic != _EXT_MAGIC:
        return None, []
    generator, subdirs = None, []
    for i in range(min(count, 64)):
        tag, _flags, off, size = struct.unpack_from(order + "IIII", data, offset + 8 + 16 * i)
        if off + size > len(data):
            raise _Corrupt(f"extension section {tag} runs past the end")
        if tag == _EXT_GENERATOR:
            generator = data[off : off + size].decode("utf-8", "replace")
        elif tag == _EXT_HWCAPS:
            for j in range(min(size // 4, 1024)):
                (string_at,) = struct.unpack_from(order + "I", data, off + 4 * j)
                subdirs.append(_cstr(data, base + string_at))
    return generator, subdirs


def _cstr(data: bytes, offset: int) -> str:
    if not 0 <= offset < len(data):
        raise _Corrupt(f"string offset {offset} outside the file")
    end = data.find(b"\0", offset, offset + _MAX_STRING)
    if end < 0:
        raise _Corrupt(f"unterminated string at {offset}")
    return os.fsdecode(data[offset:end])


def read_ld_so_cache(path: str = "/etc/ld.so.cache") -> LdCache:
    """Read and parse the cache; a missing or unreadable file gives an empty LdCache and a reason."""
    try:
        with open_regular(path) as f:
            data = f.read(_MAX_CACHE + 1)
    except OSError as e:
        # Alpine/musl, distroless images and some minimal containers have no cache at all.
        return LdCache(reason=f"cannot read {path}: {e.strerror or e}")
    return parse_ld_so_cache(data)


def parse_ldconfig_p(text: str) -> LdCache:
    """Parse `ldconfig -p` output into entries with the same flags a binary parse gives."""
    entries = []
    generator = None
    for line in text.splitlines():
        if line.startswith("Cache generated by: "):
            generator = line.removeprefix("Cache generated by: ")
            continue
        m = _LDCONFIG_LINE.match(line)
        if not m:
            continue
        attrs = [a.strip() for a in m["attrs"].split(",")]
        flags = {v: k for k, v in _TYPES.items()}.get(attrs[0], 0)
        subdir = None
        for attr in attrs[1:]:
            if attr.startswith("hwcap:"):
                value = attr.removeprefix("hwcap:").strip()
                subdir = value.strip('"') if value.startswith('"') else None
            elif not attr.startswith("OS ABI:"):
                # Several ABIs print the same word ("64bit"); take the first code that prints it.
                code = next((k for k, v in _ABIS.items() if v == attr), None)
                flags |= code if code is not None else int(attr) if attr.isdigit() else 0
        entries.append(CacheEntry(m["key"], m["value"], flags, hwcaps_subdir=subdir))
    return LdCache(tuple(entries), "ldconfig-p", generator)
