"""Facts read from one released file, cached by its sha256: a second run reads nothing it has read before.

A fact is JSON produced by a named, versioned reader (`elf/2`, `torchaudio-api/1`); bumping the version
is how a reader that changed invalidates what it wrote."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from envsolve.derive import _cachefile

__all__ = ["Facts"]

T = TypeVar("T")
_MISSING = object()
_SHA256 = re.compile("[0-9a-f]{64}")


class Facts:
    def __init__(self, cache: Path | None) -> None:
        self.root = cache / "facts" if cache else None
        self._memory: dict[tuple[str, str], Any] = {}
        self.computed = 0
        self.reused = 0

    def get(self, sha256: str, reader: str, compute: Callable[[], T]) -> T:
        """The fact `reader` found in the file with this sha256, computing it once."""
        key = (sha256, reader)
        if key in self._memory:
            return self._memory[key]  # type: ignore[no-any-return]
        path = self._path(sha256, reader)
        found = self._load(path)
        if found is not _MISSING:
            value = found
            self.reused += 1
        else:
            value = compute()
            self.computed += 1
            if path is not None and sha256:
                _cachefile.write(path, json.dumps(value, sort_keys=True).encode())
        self._memory[key] = value
        return value  # type: ignore[no-any-return]

    def peek(self, sha256: str, reader: str) -> Any:
        """The fact if it was found before (in this run or cached), else None."""
        key = (sha256, reader)
        if key in self._memory:
            return self._memory[key]
        value = self._load(self._path(sha256, reader))
        if value is _MISSING:
            return None
        self.reused += 1
        self._memory[key] = value
        return value

    def _load(self, path: Path | None) -> Any:
        """The cached value, or _MISSING; an entry that is not sound JSON is dropped (read again, not trusted)."""
        body = _cachefile.read(path) if path is not None else None
        if body is None or path is None:
            return _MISSING
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            _cachefile.drop(path)
            return _MISSING

    def _path(self, sha256: str, reader: str) -> Path | None:
        if self.root is None or not _SHA256.fullmatch(sha256):  # the index names it: never a path of its choosing
            return None
        safe = reader.replace("/", "@").replace(os.sep, "_")
        return self.root / sha256[:2] / sha256 / f"{safe}.json"
