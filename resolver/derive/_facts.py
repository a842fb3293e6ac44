"""Facts read from one released file, cached by its sha256: a second run reads nothing it has read before.

A fact is JSON produced by a named, versioned reader (`elf/2`, `torchaudio-api/1`); bumping the version
is how a reader that changed invalidates what it wrote."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Facts"]

T = TypeVar("T")


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
        if path is not None and path.exists():
            value = json.loads(path.read_text(encoding="utf-8"))
            self.reused += 1
        else:
            value = compute()
            self.computed += 1
            if path is not None and sha256:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(value, sort_keys=True), encoding="utf-8")
                tmp.replace(path)
        self._memory[key] = value
        return value  # type: ignore[no-any-return]

    def peek(self, sha256: str, reader: str) -> Any:
        """The fact if it was found before (in this run or cached), else None."""
        key = (sha256, reader)
        if key in self._memory:
            return self._memory[key]
        path = self._path(sha256, reader)
        if path is None or not path.exists():
            return None
        value = json.loads(path.read_text(encoding="utf-8"))
        self.reused += 1
        self._memory[key] = value
        return value

    def _path(self, sha256: str, reader: str) -> Path | None:
        if self.root is None or not sha256:
            return None
        safe = reader.replace("/", "@").replace(os.sep, "_")
        return self.root / sha256[:2] / sha256 / f"{safe}.json"
