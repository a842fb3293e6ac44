"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The bytes go to a temporary file in the target's directory (so the rename cannot cross file
systems), are fsynced, and replace the target in one `os.replace`; then the directory is fsynced
so that the rename itself survives a crash. A failure at any point, a KeyboardInterrupt included,
removes the temporary file and leaves the target as it was. That is what lets a batch resume by
trusting every output that exists, and a snapshot be written where another process reads it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from envsolve.errors import EnvsolveError

__all__ = ["write_text"]

DEFAULT_HINT = "Choose a folder you can write to, or free space on that disk."


def _current_umask() -> int:
    # os.umask can only be read by setting it; done once at import, before any worker threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _unwritable(what: str, error: OSError, hint: str) -> EnvsolveError:
    return EnvsolveError("output-unwritable", f"Cannot write {what}: {error.strerror or error}.", hint=hint)


def write_text(path: Path | str, text: str, *, hint: str = DEFAULT_HINT) -> None:
    """Write `text` as UTF-8 to `path` atomically, keeping the mode of the file it replaces.

    A new file gets the mode open() would give it (0666 less the umask), not mkstemp's 0600.
    An OSError (no such folder, no permission, disk full) becomes EnvsolveError
    `output-unwritable`, with `hint` saying what the caller's user can do about it.
    """
    path = Path(path)
    directory = path.parent
    data = text.encode("utf-8")
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    except OSError as error:
        raise _unwritable(str(path), error, hint) from None
    try:
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _unwritable(f"into {directory}", error, hint) from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _unwritable(str(path), error, hint) from None
        raise
    try:
        _sync_directory(directory)
    except OSError as error:
        raise _unwritable(str(path), error, hint) from None


def _sync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk. POSIX only; file systems
    # that cannot sync a directory say EINVAL, and the file itself is already complete there.
    if os.name != "posix":
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
    finally:
        os.close(handle)
