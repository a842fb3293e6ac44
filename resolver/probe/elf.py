"""A small read-only ELF reader: just what the loader simulation needs.

Modelled on pypa/packaging's ``_elffile.py``: struct-based, one error type, 32/64-bit and both byte
orders. It reads the header, the program headers, the dynamic section (DT_NEEDED, DT_SONAME,
DT_RPATH, DT_RUNPATH, DT_FLAGS_1) and the dynamic symbol table (defined and undefined names with their
GNU symbol versions), because a torchaudio built against a newer torch imports names an older torch does
not export. The sonames a binary dlopens by name (ctranslate2 and cuDNN do) are strings in it, found by
loader.dlopen_names without parsing.

The symbol table is found through the dynamic section (DT_SYMTAB, DT_STRTAB, DT_GNU_HASH or DT_HASH for
its length, DT_VERSYM/DT_VERNEED/DT_VERDEF), as the loader finds it, so a stripped file works and the
section headers at the end of the file are only a fallback for the symbol count.

Every read is bounded: a table is capped before it is read and strings are read one at a time, so
a 2 GB libtorch_cuda.so or a corrupt file costs at most a few megabytes and never hangs.
Spec: https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html
"""

from __future__ import annotations

import errno
import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from envsolve.errors import EnvsolveError

__all__ = [
    "EM_386",
    "EM_AARCH64",
    "EM_X86_64",
    "ET_DYN",
    "ET_EXEC",
    "ElfError",
    "ElfFile",
    "ElfHeader",
    "Symbol",
    "is_soname_like",
    "read_header",
    "soname_of",
]

ET_EXEC, ET_DYN = 2, 3
EM_386, EM_X86_64, EM_AARCH64 = 3, 62, 183
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_GNU_STACK = 1, 2, 3, 0x6474E551
PF_X = 1
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
DT_FLAGS_1 = 0x6FFFFFFB
DF_1_NODEFLIB = 0x800
DT_HASH, DT_SYMTAB, DT_SYMENT = 4, 6, 11
DT_GNU_HASH, DT_VERSYM, DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = (
    0x6FFFFEF5, 0x6FFFFFF0, 0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF,
)
SHT_DYNSYM = 11
SHN_UNDEF = 0
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
VERSYM_HIDDEN = 0x8000

# Caps that no real object comes near; they keep corrupt input cheap.
_MAX_TABLE = 4 << 20  # program header, section header and dynamic tables
_MAX_STRING = 4096  # one dynamic string (a soname, an RPATH)
_MAX_INTERP = 4096
_MAX_SYMBOLS = 4_000_000  # libtorch_cpu.so has about 200,000
_MAX_STRTAB = 512 << 20  # the whole dynamic string table is read at once for the symbol table
_MAX_VERSIONS = 65_536

# (class, data) -> (header tail, program header, section header, dynamic entry) formats
_FORMATS = {
    (1, 1): ("<HHIIIIIHHHHHH", "<IIIIIIII", "<IIIIIIIIII", "<iI"),
    (1, 2): (">HHIIIIIHHHHHH", ">IIIIIIII", ">IIIIIIIIII", ">iI"),
    (2, 1): ("<HHIQQQIHHHHHH", "<IIQQQQQQ", "<IIQQQQIIQQ", "<qQ"),
    (2, 2): (">HHIQQQIHHHHHH", ">IIQQQQQQ", ">IIQQQQIIQQ", ">qQ"),
}
_SONAME = re.compile(rb"lib[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*?\.so(?:\.[0-9]+)*")


class ElfError(EnvsolveError):
    """The file is not an ELF object this reader can make sense of."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__("elf-invalid", message, context=f"file: {path}" if path else None)


def is_soname_like(name: str) -> bool:
    """True for names such as ``libcudnn_ops.so.9`` or ``libfoo.so``."""
    return _SONAME.fullmatch(os.fsencode(name)) is not None


@dataclass(frozen=True)
class ElfHeader:
    """The fields of the ELF header that decide whether the loader accepts a file."""

    elf_class: int  # 1 = 32-bit, 2 = 64-bit
    data: int  # 1 = little-endian, 2 = big-endian
    osabi: int
    e_type: int
    machine: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shentsize: int
    shnum: int
    shstrndx: int

    @property
    def bits(self) -> int:
        return 32 if self.elf_class == 1 else 64

    @property
    def byteorder(self) -> str:
        return "little" if self.data == 1 else "big"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for binary reading, refusing anything but a regular file.

    A named pipe called libcublas.so.12 on LD_LIBRARY_PATH would block a plain open() forever, and a
    character device would read without end: open non-blocking, check with fstat, then read normally.
    Raises OSError (ENXIO-style "not a regular file") for the rest.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.ENXIO,
                          "Is a directory" if stat.S_ISDIR(mode) else "not a regular file", os.fspath(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_header(f: BinaryIO) -> ElfHeader:
    """Parse the ELF header at the start of ``f``; raise ElfError when it is not one."""
    f.seek(0)
    ident = f.read(16)
    if len(ident) < 16 or ident[:4] != b"\x7fELF":
        raise ElfError(f"invalid ELF header (magic {ident[:4]!r})")
    key = (ident[4], ident[5])
    if key not in _FORMATS:
        raise ElfError(f"unknown ELF class {ident[4]} or byte order {ident[5]}")
    fmt = _FORMATS[key][0]
    raw = f.read(struct.calcsize(fmt))
    if len(raw) < struct.calcsize(fmt):
        raise ElfError("file too short for an ELF header")
    e_type, machine, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack(fmt, raw)
    return ElfHeader(
        ident[4],
        ident[5],
        ident[7],
        e_type,
        machine,
        phoff,
        phentsize,
        phnum,
        shoff,
        shentsize,
        shnum,
        shstrndx,
    )


@dataclass(frozen=True)
class Symbol:
    """One dynamic symbol: defined here (exported) or undefined (imported from another object)."""

    name: str
    defined: bool
    binding: int  # STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE (10)
    type: int  # STT_FUNC = 2, STT_OBJECT = 1, ...
    version: str | None = None  # GLIBC_2.2.5: from DT_VERNEED (undefined) or DT_VERDEF (defined)
    version_file: str | None = None  # the object DT_VERNEED names for that version (libc.so.6)
    hidden: bool = False  # a non-default version (name@VER rather than name@@VER)

    @property
    def weak(self) -> bool:
        return self.binding == STB_WEAK


@dataclass(frozen=True)
class _Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


class ElfFile:
    """A parsed ELF object. Construct from an open binary file, or use ``ElfFile.open(path)``.

    Every fact is read at construction.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._owned = False
        try:
            self._size = f.seek(0, os.SEEK_END)
            self.header = read_header(f)
            self._segments = self._read_segments()
            self.interpreter = self._read_interp()
            self._read_dynamic()
        except (struct.error, OverflowError, ValueError) as e:
            # struct, seek on huge offsets and decoding can fail on corrupt input; one error type out.
            raise ElfError(f"corrupt ELF file: {e}") from e
        except OSError as e:
            raise ElfError(f"cannot read ELF file: {e}") from e

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ElfFile:
        """Open and parse ``path``; use as a context manager so the file is closed."""
        try:
            f = open_regular(path)
        except OSError as e:
            raise ElfError(f"cannot open: {e.strerror}", path=os.fspath(path)) from e
        try:
            elf = cls(f)
        except ElfError as e:
            f.close()
            e.context = f"file: {os.fspath(path)}"
            raise
        elf._owned = True
        return elf

    def close(self) -> None:
        if self._owned:
            self._f.close()

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- public facts ------------------------------------------------------------------------

    @property
    def elf_class(self) -> int:
        return self.header.elf_class

    @property
    def machine(self) -> int:
        return self.header.machine

    @property
    def e_type(self) -> int:
        return self.header.e_type

    @property
    def executable_stack(self) -> bool | None:
        """PF_X on PT_GNU_STACK. None without PT_GNU_STACK: the loader then uses the arch
        default, which is an executable stack on x86. glibc 2.41 refuses to dlopen such objects."""
        for seg in self._segments:
            if seg.type == PT_GNU_STACK:
                return bool(seg.flags & PF_X)
        return None

    @property
    def nodeflib(self) -> bool:
        """DF_1_NODEFLIB (``-z nodeflib``): the loader skips ld.so.cache and the default dirs."""
        return bool(self.flags_1 & DF_1_NODEFLIB)

    def dynamic_symbols(self) -> tuple[Symbol, ...]:
        """The global and weak symbols of the dynamic symbol table, in table order (nm -D).

        Reads through the dynamic section, as the loader does; () for an object without one.
        """
        try:
            return self._read_symbols()
        except (struct.error, OverflowError, ValueError, UnicodeDecodeError) as e:
            raise ElfError(f"corrupt ELF file: {e}") from e
        except OSError as e:
            raise ElfError(f"cannot read ELF file: {e}") from e

    # -- reading -----------------------------------------------------------------------------

    def _read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset > self._size:
            raise ElfError(f"offset {offset:#x} outside the file")
        self._f.seek(offset)
        return self._f.read(min(size, self._size - offset))

    def _table(self, offset: int, entsize: int, count: int, fmt: str) -> list[tuple[int, ...]]:
        need = struct.calcsize(fmt)
        if count == 0 or offset == 0:
            return []
        if entsize < need:
            raise ElfError(f"table entry size {entsize} smaller than {need}")
        if entsize * count > _MAX_TABLE:
            raise ElfError(f"table of {count} entries is too large")
        raw = self._read_at(offset, entsize * count)
        if len(raw) < entsize * count:
            raise ElfError("table runs past the end of the file")
        return [struct.unpack_from(fmt, raw, i * entsize) for i in range(count)]

    def _read_segments(self) -> list[_Segment]:
        h = self.header
        fmt = _FORMATS[(h.elf_class, h.data)][1]
        rows = self._table(h.phoff, h.phentsize, h.phnum, fmt)
        if h.elf_class == 1:  # 32-bit keeps p_flags near the end
            return [_Segment(r[0], r[6], r[1], r[2], r[4]) for r in rows]
        return [_Segment(r[0], r[1], r[2], r[3], r[5]) for r in rows]

    def _read_interp(self) -> str | None:
        for seg in self._segments:
            if seg.type == PT_INTERP:
                raw = self._read_at(seg.offset, min(seg.filesz, _MAX_INTERP))
                return os.fsdecode(raw.split(b"\0", 1)[0])
        return None

    def _vaddr_to_offset(self, vaddr: int) -> int:
        for seg in self._segments:
            if seg.type == PT_LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return vaddr - seg.vaddr + seg.offset
        raise ElfError(f"address {vaddr:#x} is in no PT_LOAD segment")

    def _read_dynamic(self) -> None:
        self.needed: tuple[str, ...] = ()
        self.soname: str | None = None
        self.rpath: str | None = None
        self.runpath: str | None = None
        self.flags_1 = 0
        self._dyn: dict[int, int] = {}
        dyn = next((s for s in self._segments if s.type == PT_DYNAMIC), None)
        if dyn is None:  # static executable or object file
            return
        fmt = _FORMATS[(self.header.elf_class, self.header.data)][3]
        entsize = struct.calcsize(fmt)
        count = min(dyn.filesz, _MAX_TABLE) // entsize
        rows = self._table(dyn.offset, entsize, count, fmt) if count else []
        strtab, strsz = None, None
        refs: list[tuple[int, int]] = []
        for tag, val in rows:
            if tag == DT_NULL:
                break
            self._dyn.setdefault(tag, val)
            if tag == DT_STRTAB:
                strtab = val
            elif tag == DT_STRSZ:
                strsz = val
            elif tag == DT_FLAGS_1:
                self.flags_1 = val
            elif tag in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH):
                refs.append((tag, val))
        if not refs:
            return
        if strtab is None:
            raise ElfError("dynamic section names strings but has no DT_STRTAB")
        base = self._vaddr_to_offset(strtab)
        needed: list[str] = []
        for tag, index in refs:
            if strsz is not None and index >= strsz:
                raise ElfError(f"string index {index} past DT_STRSZ {strsz}")
            text = self._string(base + index)
            if tag == DT_NEEDED:
                needed.append(text)
            elif tag == DT_SONAME:
                self.soname = text
            elif tag == DT_RPATH:
                self.rpath = text
            else:
                self.runpath = text
        self.needed = tuple(needed)

    def _read_symbols(self) -> tuple[Symbol, ...]:
        dyn = self._dyn
        if DT_SYMTAB not in dyn or DT_STRTAB not in dyn:
            return ()
        h = self.header
        e = "<" if h.data == 1 else ">"
        sym_fmt = e + ("IBBHQQ" if h.elf_class == 2 else "IIIBBH")
        entsize = dyn.get(DT_SYMENT) or struct.calcsize(sym_fmt)
        if entsize < struct.calcsize(sym_fmt):
            raise ElfError(f"symbol entry size {entsize} too small")
        count = self._symbol_count(e)
        if count > _MAX_SYMBOLS:
            raise ElfError(f"{count} dynamic symbols is more than any real object has")
        strsz = dyn.get(DT_STRSZ)
        if strsz is None or strsz > _MAX_STRTAB:
            raise ElfError("dynamic string table size missing or too large")
        strings = self._read_at(self._vaddr_to_offset(dyn[DT_STRTAB]), strsz)
        raw = self._read_at(self._vaddr_to_offset(dyn[DT_SYMTAB]), entsize * count)
        if len(raw) < entsize * count:
            raise ElfError("symbol table runs past the end of the file")
        versym = b""
        if DT_VERSYM in dyn:
            versym = self._read_at(self._vaddr_to_offset(dyn[DT_VERSYM]), 2 * count)
        versions = self._versions(e, strings)

        def text(index: int) -> str:
            if index >= len(strings):
                raise ElfError(f"symbol name index {index} past DT_STRSZ")
            end = strings.find(b"\0", index)
            return os.fsdecode(strings[index : end if end >= 0 else len(strings)])

        out: list[Symbol] = []
        for i in range(1, count):
            fields = struct.unpack_from(sym_fmt, raw, i * entsize)
            if h.elf_class == 2:
                name, info, shndx = fields[0], fields[1], fields[3]
            else:
                name, info, shndx = fields[0], fields[3], fields[5]
            binding, kind = info >> 4, info & 0xF
            if binding == STB_LOCAL or name == 0:
                continue
            ver_index, hidden = 0, False
            if len(versym) >= 2 * (i + 1):
                (raw_ver,) = struct.unpack_from(e + "H", versym, 2 * i)
                ver_index, hidden = raw_ver & 0x7FFF, bool(raw_ver & VERSYM_HIDDEN)
            version, file = versions.get(ver_index, (None, None)) if ver_index > 1 else (None, None)
            out.append(Symbol(text(name), shndx != SHN_UNDEF, binding, kind, version, file, hidden))
        return tuple(out)

    def _symbol_count(self, e: str) -> int:
        """Entries in the dynamic symbol table: from DT_HASH, else DT_GNU_HASH, else the section headers."""
        dyn = self._dyn
        if DT_HASH in dyn:
            _, nchain = struct.unpack(e + "II", self._read_at(self._vaddr_to_offset(dyn[DT_HASH]), 8))
            return int(nchain)
        if DT_GNU_HASH in dyn:
            base = self._vaddr_to_offset(dyn[DT_GNU_HASH])
            nbuckets, symoffset, bloom_size, _ = struct.unpack(e + "IIII", self._read_at(base, 16))
            word = 8 if self.header.elf_class == 2 else 4
            if nbuckets * 4 > _MAX_TABLE or bloom_size * word > _MAX_TABLE:
                raise ElfError("GNU hash table too large")
            at = base + 16 + bloom_size * word
            raw = self._read_at(at, nbuckets * 4)
            if len(raw) < nbuckets * 4:
                raise ElfError("GNU hash buckets run past the end of the file")
            buckets = struct.unpack(e + f"{nbuckets}I", raw)
            last = max(buckets, default=0)
            if last < symoffset:
                return int(symoffset)
            chain_at = at + nbuckets * 4 + (last - symoffset) * 4
            while last - symoffset < _MAX_SYMBOLS:
                (value,) = struct.unpack(e + "I", self._read_at(chain_at, 4))
                if value & 1:
                    return int(last + 1)
                last += 1
                chain_at += 4
            raise ElfError("GNU hash chain does not end")
        h = self.header
        fmt = _FORMATS[(h.elf_class, h.data)][2]
        for row in self._table(h.shoff, h.shentsize, h.shnum, fmt) if h.shoff and h.shnum else []:
            if row[1] == SHT_DYNSYM and row[9]:
                return int(row[5] // row[9])
        raise ElfError("cannot tell how many dynamic symbols there are (no hash table, no .dynsym header)")

    def _versions(self, e: str, strings: bytes) -> dict[int, tuple[str, str | None]]:
        """Version index -> (version name, the file that defines it for DT_VERNEED entries)."""

        def text(index: int) -> str:
            end = strings.find(b"\0", index)
            return os.fsdecode(strings[index : end if end >= 0 else len(strings)])

        out: dict[int, tuple[str, str | None]] = {}
        dyn = self._dyn
        if DT_VERNEED in dyn:
            at = self._vaddr_to_offset(dyn[DT_VERNEED])
            for _ in range(min(dyn.get(DT_VERNEEDNUM, 0), _MAX_VERSIONS)):
                _, cnt, file, aux, nxt = struct.unpack(e + "HHIII", self._read_at(at, 16))
                va = at + aux
                for _ in range(min(cnt, _MAX_VERSIONS)):
                    _, _, other, name, vnext = struct.unpack(e + "IHHII", self._read_at(va, 16))
                    out[other & 0x7FFF] = (text(name), text(file))
                    if not vnext:
                        break
                    va += vnext
                if not nxt:
                    break
                at += nxt
        if DT_VERDEF in dyn:
            at = self._vaddr_to_offset(dyn[DT_VERDEF])
            for _ in range(min(dyn.get(DT_VERDEFNUM, 0), _MAX_VERSIONS)):
                _, flags, ndx, cnt, _, aux, nxt = struct.unpack(e + "HHHHIII", self._read_at(at, 20))
                if cnt and not flags & 1:  # VER_FLG_BASE names the file itself, not a version
                    (name,) = struct.unpack(e + "I", self._read_at(at + aux, 4))
                    out[ndx & 0x7FFF] = (text(name), None)
                if not nxt:
                    break
                at += nxt
        return out

    def _string(self, offset: int) -> str:
        raw = self._read_at(offset, _MAX_STRING)
        end = raw.find(b"\0")
        if end < 0:
            raise ElfError(f"unterminated string at {offset:#x}")
        return os.fsdecode(raw[:end])


def soname_of(path: str | Path) -> str | None:
    """DT_SONAME of ``path``, or None when it has none or is not readable ELF."""
    try:
        with ElfFile.open(path) as elf:
            return elf.soname
    except ElfError:
        return None
