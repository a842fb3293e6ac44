"""What every deriver gets: the index, the HTTP fetcher, the facts cache, progress, today's date and the
committed matrices (for curated fields and for `checked` stamps)."""

from __future__ import annotations

import datetime as dt
import email.parser
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

from envsolve.derive._facts import Facts
from envsolve.derive._http import Fetcher, FetchProgress
from envsolve.derive._index import Dist, Index
from envsolve.derive._toml import load_dir
from envsolve.resolver.matrices import Matrix

__all__ = ["DeriveContext"]

T = TypeVar("T")


@dataclass
class DeriveContext:
    index: Index
    matrices_dir: Path
    options: dict[str, Any] = field(default_factory=dict)
    today: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).date().isoformat())
    _memo: dict[str, Any] = field(default_factory=dict)

    @property
    def fetcher(self) -> Fetcher:
        return self.index.fetcher

    @property
    def progress(self) -> FetchProgress:
        return self.index.fetcher.progress

    @property
    def facts(self) -> Facts:
        facts = self._memo.get("\0facts")
        if facts is None:
            facts = self._memo["\0facts"] = Facts(self.fetcher.cache)
        return facts

    def once(self, key: str, compute: Callable[[], T]) -> T:
        """A value computed once per run (a project's files, a family's rows)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[no-any-return]

    def committed(self, name: str) -> Matrix[Any] | None:
        return self.once(f"committed:{name}", lambda: load_dir(self.matrices_dir, name))

    def releases(self, project: str, *, pre: bool = False) -> dict[Any, list[Dist]]:
        return self.once(f"releases:{project}:{pre}", lambda: self.index.releases(project, pre=pre))

    def metadata(self, dist: Dist) -> Message:
        """A wheel's METADATA (PEP 658 file or ranged reads), its text cached by the wheel's sha256."""
        text = self.facts.get(dist.sha256, "metadata/1", lambda: self.index.metadata_text(dist))
        return email.parser.Parser().parsestr(text)
