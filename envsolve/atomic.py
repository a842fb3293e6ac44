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
import time
from collections.abc import Iterator
from glob import escape as glob_escape
from pathlib import Path

from envsolve.errors import EnvsolveError

__all__ = ["output_lock", "write_bytes", "write_text"]

STALE_UNOWNED_S = 3600.0  # a temporary file without a live writer's pid in its name is stale after an hour

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
    """Write `text` as UTF-8 to `path` atomically (write_bytes)."""
    write_bytes(path, text.encode("utf-8"), hint=hint)


def write_bytes(path: Path | str, data: bytes, *, hint: str = DEFAULT_HINT) -> None:
    """Write `data` to `path` atomically, keeping the mode of the file it replaces.

    A new file gets the mode open() would give it (0666 less the umask), not mkstemp's 0600.
    An OSError (no such folder, no permission, disk full) becomes EnvsolveError
    `output-unwritable`, with `hint` saying what the caller's user can do about it.
    """
    path = Path(path)
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    except OSError as error:
        raise _unwritable(str(path), error, hint) from None
    _remove_stale(directory, path.name)
    try:
        # The pid in the name lets a later write tell a dead writer's leftover from a live one's file.
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
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


def _remove_stale(directory: Path, name: str) -> None:
    """Remove temporary files of `name` left by writers that died (SIGKILL, power loss): their pid is gone,
    or, for a name without one, the file is older than STALE_UNOWNED_S."""
    try:
        entries = list(directory.glob(f".{glob_escape(name)}.*.tmp"))
    except OSError:
        return
    for entry in entries:
        middle = entry.name[len(name) + 2:-len(".tmp")]
        pid_text = middle.split(".", 1)[0]
        try:
            if pid_text.isdigit() and "." in middle:
                if _alive(int(pid_text)):
                    continue
            elif time.time() - entry.lstat().st_mtime < STALE_UNOWNED_S:
                continue
            entry.unlink()
        except OSError:
            continue


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


@contextlib.contextmanager
def output_lock(directory: Path | str, name: str) -> Iterator[None]:
    """Hold an exclusive lock on the output `name` in `directory` (fcntl.flock on `.NAME.lock`), waiting while
    another process holds it. Two runs writing into one folder then take turns per output instead of both
    doing the work. The lock file is removed on release, so a finished run leaves none behind."""
    import fcntl

    lock_path = Path(directory) / f".{name}.lock"
    while True:
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise _unwritable(f"the lock {lock_path}", error, DEFAULT_HINT) from None
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            same = os.fstat(descriptor).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False  # the holder removed it as we waited: lock the new one
        if same:
            break
        os.close(descriptor)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)  # while still holding it: a waiter sees the inode change and retries
        os.close(descriptor)


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
