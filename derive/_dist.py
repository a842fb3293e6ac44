"""One file of a release on a package index (`Dist`), apart from the index that lists it (_index.py) and the
ranged reader of wheels (_wheel.py), which both use it: neither needs to import the other for it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

__all__ = ["Dist"]


@dataclass(frozen=True)
class Dist:
    """One file of a release on the index."""

    project: str
    filename: str
    url: str
    sha256: str
    size: int | None
    upload_time: str | None
    yanked: bool
    yanked_reason: str | None
    requires_python: str | None
    metadata: bool | None  # PEP 658/714: the index serves <url>.metadata (None: the index does not say)

    @cached_property
    def version(self) -> Version | None:
        try:
            if self.is_wheel:
                return parse_wheel_filename(self.filename)[1]
            return parse_sdist_filename(self.filename)[1]
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            return None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith((".tar.gz", ".zip")) and not self.is_wheel

    @cached_property
    def tags(self) -> frozenset[Tag]:
        return parse_wheel_filename(self.filename)[3] if self.is_wheel else frozenset()

    def linux(self, machine: str) -> bool:
        """A manylinux/linux wheel for `machine` (x86_64, aarch64)."""
        return any("linux" in t.platform and t.platform.endswith(machine) for t in self.tags)

    @property
    def uploaded(self) -> str | None:
        return self.upload_time[:10] if self.upload_time else None
