"""Decoded audio on disk instead of in memory: what keeps `envsolve run` within a bounded footprint however long
the recording.

faster-whisper and WhisperX hold the whole file as one float32 array (230 MB an hour) and build every stage's
copies on top of it; a 2 h meeting peaked at 1.6 GB before any model ran. Here each resampled frame is appended
to an unlinked temporary file as it is decoded, and the samples come back as a copy-on-write mapping of it: the
pages a stage reads are in memory while it reads them, and `release` hands them back to the kernel once it is
done (MADV_DONTNEED; the file is still there if they are touched again). The file disappears with the mapping.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import mmap
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["Spool", "SpoolError", "trim_heap"]

_ITEM = 4  # bytes per float32 sample


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def trim_heap() -> None:
    """Give the heap a stage freed back to the kernel. glibc keeps freed arenas mapped, so without this the
    resident size creeps up window after window (484 MB against 414 MB for 30 min of tiny.en)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class SpoolError(Exception):
    """The temporary folder cannot hold the decoded audio (full, read-only, over a file size limit)."""


class Spool:
    """An append-only float32 file with a running peak, mapped once writing is done."""

    def __init__(self) -> None:
        # Unlinked at once: nothing is left behind whatever ends the process.
        try:
            self._file = tempfile.TemporaryFile(prefix="envsolve-audio-")  # noqa: SIM115 - lives with the mapping
        except OSError as error:
            raise SpoolError(error.strerror or str(error)) from None
        self.samples = 0
        self.peak = 0.0
        self._map: mmap.mmap | None = None

    def extend(self, frames: Iterable[Any]) -> None:
        """Append PyAV audio frames (float32, mono)."""
        for frame in frames:
            chunk = frame.to_ndarray().reshape(-1)
            if chunk.size:
                self.peak = max(self.peak, float(abs(chunk).max()))
                try:
                    self._file.write(chunk.astype("float32", copy=False).tobytes())
                except OSError as error:  # ENOSPC, EFBIG
                    raise SpoolError(error.strerror or str(error)) from None
                self.samples += chunk.size

    def mapped(self) -> Any:
        """The samples as a writable numpy array backed by the file (copy-on-write: nothing is written back)."""
        import numpy as np

        try:
            self._file.flush()
        except OSError as error:
            raise SpoolError(error.strerror or str(error)) from None
        if self.samples == 0:
            return np.zeros(0, np.float32)
        self._map = mmap.mmap(self._file.fileno(), self.samples * _ITEM, access=mmap.ACCESS_COPY)
        return np.frombuffer(self._map, dtype=np.float32, count=self.samples)

    def release(self, start: int, end: int) -> None:
        """Drop samples [start, end) from this process's resident memory (whole pages inside the range)."""
        if self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            first = -(-start * _ITEM // mmap.PAGESIZE) * mmap.PAGESIZE
            last = min(end, self.samples) * _ITEM // mmap.PAGESIZE * mmap.PAGESIZE
            if last > first:
                self._map.madvise(mmap.MADV_DONTNEED, first, last - first)
        trim_heap()

    @contextlib.contextmanager
    def closing_on_error(self) -> Iterator[None]:
        """Close the file when decoding fails; on success the mapping keeps it alive for the stages."""
        try:
            yield
        except BaseException:
            with contextlib.suppress(OSError):  # closing flushes, and a full disk refuses that too
                self._file.close()
            raise

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()
