"""One cache entry on disk: written atomically with a digest of its body, read back only when it is a regular
file whose digest still matches.

The cache is an optimisation, so anything wrong with an entry (cut short by a full disk, overwritten by hand,
replaced by a folder, a FIFO or a link to /dev/zero) is a miss: the entry is dropped and the fact read again.
What is wrong with the cache as a whole (a read-only or missing folder, a file where the folder should be) is the
user's to fix, and `prepare` says so before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from pathlib import Path

from envsolve.errors import EnvsolveError

__all__ = ["MAX_ENTRY_BYTES", "drop", "prepare", "read", "write"]

MAGIC = b"envsolve-cache/1 "
MAX_ENTRY_BYTES = 256 << 20  # larger than any member the derivation keeps (large ones are streamed, not cached)
_HINT = "Pass --cache-dir with a folder you can write to, or --no-cache."


def prepare(root: Path) -> None:
    """Create the cache folder and prove it writable (root ignores permission bits, so try a real write)."""
    where = f"The derivation cache {root}"
    if root.exists() and not root.is_dir():
        raise EnvsolveError("cache-unusable", f"{where} is not a folder.", hint=_HINT)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise EnvsolveError("cache-unusable", f"{where} cannot be written ({error.strerror or error}).",
                            hint=_HINT) from None


def read(path: Path) -> bytes | None:
    """The body of the entry at `path`, or None (a miss) when it is absent or not sound; an unsound one is dropped."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EACCES):  # a link, a folder, a socket
            drop(path)
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES + len(MAGIC) + 65:
            data = None
        else:
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read(MAX_ENTRY_BYTES + len(MAGIC) + 66)
    except OSError:
        data = None
    finally:
        os.close(fd)
    body = _unwrap(data) if data is not None else None
    if body is None:
        drop(path)
    return body


def _unwrap(data: bytes) -> bytes | None:
    head, newline, body = data.partition(b"\n")
    if not newline or not head.startswith(MAGIC):
        return None
    return body if hashlib.sha256(body).hexdigest().encode() == head[len(MAGIC):] else None


def write(path: Path, body: bytes) -> None:
    """Write the entry atomically; something other than a file in its place is dropped first."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        drop(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
        tmp.replace(path)
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise EnvsolveError("cache-unusable", f"Cannot write the derivation cache entry {path} "
                            f"({error.strerror or error}).", hint=_HINT) from None


def drop(path: Path) -> None:
    """Remove an unsound entry, whatever it is; the next read fetches the fact again."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        pass  # a miss either way; the write that follows reports a cache it cannot use
