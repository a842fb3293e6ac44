"""A wheel on the index read without downloading it: the zip's central directory by a ranged read of its
tail, then only the members asked for. A large compressed member is streamed through zlib into a temporary
file that is deleted when the caller is done with it."""

from __future__ import annotations

import contextlib
import re
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from envsolve.derive._dist import Dist
from envsolve.derive._http import Fetcher

__all__ = ["Member", "RemoteWheel", "WheelError"]

_TAIL = 65536 + 22
_LOCAL_SLACK = 1024  # room for a local header's name and extra field, read with the data
_EOCD, _EOCD64, _LOC64 = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"
_ELF_NAME = re.compile(r"(?:^|/)[^/]+\.so(?:\.[0-9]+)*$")


class WheelError(Exception):
    """The file is not a zip this reader understands."""


@dataclass(frozen=True)
class Member:
    name: str
    method: int  # 0 stored, 8 deflated
    csize: int
    usize: int
    offset: int  # of the local file header


class RemoteWheel:
    """The members of a wheel (or any zip) on the index, read by HTTP range requests."""

    def __init__(self, fetcher: Fetcher, dist: Dist) -> None:
        self.fetcher = fetcher
        self.dist = dist
        self._members: dict[str, Member] | None = None

    @property
    def members(self) -> dict[str, Member]:
        if self._members is None:
            self._members = self._central_directory()
        return self._members

    def names(self) -> list[str]:
        return list(self.members)

    def elf_names(self) -> list[str]:
        """Members named like shared objects (lib*.so, *.cpython-*.so, libfoo.so.1)."""
        return [n for n in self.members if _ELF_NAME.search(n)]

    def read(self, name: str) -> bytes:
        return self.read_many([name])[name]

    def read_many(self, names: Iterable[str]) -> dict[str, bytes]:
        """Several members; neighbours are fetched in one request (and cached: released files never change)."""
        wanted = sorted((self.members[n] for n in names), key=lambda m: m.offset)
        out: dict[str, bytes] = {}
        group: list[Member] = []
        for m in wanted:
            if group and m.offset - _end(group[-1]) > 256 * 1024:
                out.update(self._read_group(group))
                group = []
            group.append(m)
        if group:
            out.update(self._read_group(group))
        return out

    def metadata_bytes(self) -> bytes:
        names = [n for n in self.members if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(names) != 1:
            raise WheelError(f"{self.dist.filename}: {len(names)} .dist-info/METADATA files")
        return self.read(names[0])

    @contextlib.contextmanager
    def extracted(self, name: str) -> Iterator[BinaryIO]:
        """A large member decompressed into a temporary file (deleted on exit); the download is not kept."""
        m = self.members[name]
        head = self.fetcher.span(self.dist.url, m.offset, m.offset + 30, keep=False)
        start = m.offset + _data_start(head)
        with tempfile.TemporaryFile(prefix="envsolve-member-") as out:
            inflate = zlib.decompressobj(-15) if m.method == 8 else None
            for chunk in self.fetcher.stream(self.dist.url, start, start + m.csize):
                out.write(inflate.decompress(chunk) if inflate else chunk)
            if inflate:
                out.write(inflate.flush())
            if out.tell() != m.usize:
                raise WheelError(f"{self.dist.filename}:{name}: {out.tell()} bytes after inflating, not {m.usize}")
            out.seek(0)
            yield out

    # -- internals ------------------------------------------------------------------------------

    def _size(self) -> int:
        return self.dist.size if self.dist.size else self.fetcher.size(self.dist.url)

    def _central_directory(self) -> dict[str, Member]:
        size = self._size()
        tail_start = max(0, size - _TAIL)
        tail = self.fetcher.span(self.dist.url, tail_start, size)
        at = tail.rfind(_EOCD)
        if at < 0:
            raise WheelError(f"{self.dist.filename}: no end of central directory record")
        count, cd_size, cd_offset = struct.unpack_from("<HII", tail, at + 10)
        loc = tail.rfind(_LOC64, 0, at)
        if loc >= 0 and (cd_offset == 0xFFFFFFFF or count == 0xFFFF or cd_size == 0xFFFFFFFF):
            (eocd64_at,) = struct.unpack_from("<Q", tail, loc + 8)
            record = self.fetcher.span(self.dist.url, eocd64_at, eocd64_at + 56)
            if record[:4] != _EOCD64:
                raise WheelError(f"{self.dist.filename}: bad zip64 end record")
            count, cd_size, cd_offset = struct.unpack_from("<QQQ", record, 32)
        if cd_offset >= tail_start:
            cd = tail[cd_offset - tail_start : cd_offset - tail_start + cd_size]
        else:
            cd = self.fetcher.span(self.dist.url, cd_offset, cd_offset + cd_size)
        return _parse_cd(cd, self.dist.filename)

    def _read_group(self, group: list[Member]) -> dict[str, bytes]:
        base = group[0].offset
        # Members are not kept in the HTTP cache: what is read from them is (Facts, by the wheel's sha256).
        blob = self.fetcher.span(self.dist.url, base, _end(group[-1]) + _LOCAL_SLACK, keep=False)
        out = {}
        for m in group:
            local = blob[m.offset - base :]
            start = _data_start(local)
            raw = local[start : start + m.csize]
            if len(raw) < m.csize:  # a huge extra field: read exactly
                raw = self.fetcher.span(self.dist.url, m.offset + start, m.offset + start + m.csize, keep=False)
            data = zlib.decompress(raw, -15) if m.method == 8 else raw
            if m.method not in (0, 8):
                raise WheelError(f"{self.dist.filename}:{m.name}: compression method {m.method}")
            out[m.name] = data
        return out


def _end(m: Member) -> int:
    return m.offset + 30 + len(m.name.encode()) + m.csize


def _data_start(local: bytes) -> int:
    if local[:4] != b"PK\x03\x04":
        raise WheelError("bad local file header")
    name_len, extra_len = struct.unpack_from("<HH", local, 26)
    return 30 + int(name_len) + int(extra_len)


def _parse_cd(cd: bytes, filename: str) -> dict[str, Member]:
    out: dict[str, Member] = {}
    pos = 0
    while cd[pos : pos + 4] == b"PK\x01\x02":
        (method,) = struct.unpack_from("<H", cd, pos + 10)
        csize, usize, nlen, xlen, clen = struct.unpack_from("<IIHHH", cd, pos + 20)
        (offset,) = struct.unpack_from("<I", cd, pos + 42)
        name = cd[pos + 46 : pos + 46 + nlen].decode("utf-8", "replace")
        extra = cd[pos + 46 + nlen : pos + 46 + nlen + xlen]
        if 0xFFFFFFFF in (csize, usize, offset):
            usize, csize, offset = _zip64_extra(extra, usize, csize, offset)
        out[name] = Member(name, method, csize, usize, offset)
        pos += 46 + nlen + xlen + clen
    if not out:
        raise WheelError(f"{filename}: empty or unreadable central directory")
    return out


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            values = list(struct.unpack_from(f"<{size // 8}Q", extra, pos + 4))
            if usize == 0xFFFFFFFF:
                usize = values.pop(0)
            if csize == 0xFFFFFFFF:
                csize = values.pop(0)
            if offset == 0xFFFFFFFF:
                offset = values.pop(0)
            break
        pos += 4 + size
    return usize, csize, offset
