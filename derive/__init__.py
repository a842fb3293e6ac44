"""Re-deriving the registry-derivable matrices from primary evidence: `envsolve matrices verify` and `refresh`.

Light on purpose (the standard library and `packaging`), and never imported by `plan` or `doctor`: the rules
read the committed files only. Each deriver reads the package index pip is configured to use (the simple API:
files, yanked, upload times, METADATA) and the wheels themselves by HTTP range requests (the zip's central
directory, then only the members needed: METADATA, Python sources, shared objects), caching what it read by each
file's sha256 under ~/.cache/envsolve-derive.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from envsolve.derive import _cachefile
from envsolve.derive._context import DeriveContext
from envsolve.derive._http import DEFAULT_CACHE, Fetcher, FetchProgress
from envsolve.derive._index import Index, configured_index
from envsolve.derive._toml import Derived, RowChange, compare, keep_checked, render, sort_rows
from envsolve.errors import EnvsolveError
from envsolve.terminal import printable

__all__ = ["DERIVABLE", "DriftReport", "MatrixReport", "matrices_dir", "run"]

# matrix -> "module:function"; the order is the order they are derived and reported in.
DERIVABLE: Mapping[str, str] = {
    "torchaudio": "family:derive_torchaudio",
    "torchvision": "family:derive_torchvision",
    "torchcodec": "family:derive_torchcodec",
    "torch": "torch:derive_torch",
    "ctranslate2": "ctranslate2:derive_ctranslate2",
    "faster_whisper": "faster_whisper:derive_faster_whisper",
    "pyannote_audio": "audio:derive_pyannote_audio",
    "huggingface_hub": "audio:derive_huggingface_hub",
    "whisperx": "audio:derive_whisperx",
    "cuda_images": "cuda_images:derive_cuda_images",
}
NOT_FROM_THE_INDEX = ("cuda_images",)


@dataclass
class MatrixReport:
    """One matrix: what re-deriving it found against the committed file."""

    name: str
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[Mapping[str, Any]] = field(default_factory=list)
    changed: list[RowChange] = field(default_factory=list)
    meanings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    key: tuple[str, ...] = ()
    rows: int = 0
    skipped: str | None = None  # why it was not checked
    written: bool = False

    @property
    def drifted(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "skipped": self.skipped, "written": self.written,
                "added": [dict(r) for r in self.added], "removed": [dict(r) for r in self.removed],
                "changed": [{"key": list(c.key), "fields": {f: {"old": c.old.get(f), "new": c.new.get(f)}
                                                            for f in c.fields}} for c in self.changed],
                "meanings": self.meanings, "notes": self.notes}


@dataclass
class DriftReport:
    mode: str  # "verify" or "refresh"
    matrices: list[MatrixReport]
    index: str
    index_from: str
    folder: Path
    seconds: float = 0.0
    network_bytes: int = 0
    requests: int = 0
    cache: str = ""

    @property
    def drifted(self) -> list[MatrixReport]:
        return [m for m in self.matrices if m.drifted]

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "index": self.index, "index_from": self.index_from, "folder": str(self.folder),
                "seconds": round(self.seconds, 2), "network_bytes": self.network_bytes, "requests": self.requests,
                "cache": self.cache, "drift": bool(self.drifted), "matrices": [m.to_json() for m in self.matrices]}


def matrices_dir(explicit: str | None = None) -> Path:
    """The folder verify compares with and refresh writes: --matrices, ENVSOLVE_MATRICES_DIR, else the package's."""
    import os
    from importlib import resources

    chosen = explicit or os.environ.get("ENVSOLVE_MATRICES_DIR")
    if chosen:
        return Path(chosen)
    return Path(str(resources.files("envsolve.matrices")))


def _deriver(name: str) -> Callable[[DeriveContext], Derived]:
    module, function = DERIVABLE[name].split(":")
    fn: Callable[[DeriveContext], Derived] = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    return fn


def run(mode: str, names: Sequence[str], *, folder: Path, index_url: str | None = None,
        cache: Path | None = DEFAULT_CACHE, max_age: float = 3600.0, progress: FetchProgress | None = None,
        options: Mapping[str, Any] | None = None) -> DriftReport:
    """Re-derive `names` (every derivable matrix when empty) and compare with `folder`; refresh also writes."""
    from envsolve.derive.cuda_images import NeedsCheckout
    from envsolve.derive.meaning import meanings

    unknown = [n for n in names if n not in DERIVABLE]
    if unknown:
        raise EnvsolveError("unknown-matrix", f"{', '.join(unknown)}: not a derivable matrix.",
                            hint=f"Derivable: {', '.join(DERIVABLE)}; the others are curated by hand.")
    url, where = (index_url, "--index-url") if index_url is not None else configured_index()
    check_index_url(url, where)
    if mode == "refresh":
        _check_writable(folder)
    if cache is not None:
        _cachefile.prepare(cache)
    fetcher = Fetcher(cache, max_age, progress or FetchProgress())
    ctx = DeriveContext(Index(fetcher, url), folder, dict(options or {}))
    started = time.monotonic()
    reports = []
    texts: dict[Path, str] = {}
    for name in names or list(DERIVABLE):
        report = MatrixReport(name)
        reports.append(report)
        try:
            derived = _deriver(name)(ctx)
        except NeedsCheckout as why:
            if names:
                raise EnvsolveError("needs-checkout", str(why), hint="Or leave cuda_images out of the names.") from why
            report.skipped = str(why)
            continue
        sort_rows(derived)
        committed = ctx.committed(name)
        if committed is not None and committed.rows and not derived.rows and name not in NOT_FROM_THE_INDEX:
            # A mirror without the package answers 404 or an empty page; that is not "every release is gone".
            raise EnvsolveError("index-lacks-package", f"{url} has no files for the {name} matrix, whose "
                                f"{len(committed.rows)} committed rows all came from an index: nothing was compared "
                                "or written.", hint="Point --index-url at an index that serves the package (PyPI "
                                "does), or leave this matrix out of the names.", exit_code=2)
        keep_checked(derived, committed)
        report.key, report.rows, report.notes = tuple(derived.key), len(derived.rows), derived.notes
        report.added, report.removed, report.changed = compare(derived, committed)
        report.meanings = meanings(derived, report.added, report.removed, report.changed)
        texts[folder / f"{name}.toml"] = render(derived)
    if mode == "refresh":  # every matrix derived before any is written: all of them, or none
        written = _write_all(texts)
        for report in reports:
            report.written = folder / f"{report.name}.toml" in written
    return DriftReport(mode, reports, url, where, folder, time.monotonic() - started, fetcher.network_bytes,
                  fetcher.requests, str(cache) if cache else "none")


def check_index_url(url: str, where: str = "--index-url") -> str:
    """An index URL the derivation can read: http(s) with a host, or file: naming a folder (a local mirror).
    `where` names what gave it (the flag, PIP_INDEX_URL, a pip.conf line)."""
    hint = "Pass the simple index's URL, e.g. --index-url https://pypi.org/simple/ (or a mirror's), or leave it out."
    shown = printable(url[:200]) or "empty"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise EnvsolveError("bad-index-url", f"{where} {shown}: not a URL ({error}).", hint=hint) from None
    if any(c.isspace() or not c.isprintable() for c in url) or len(url) > 2000:
        raise EnvsolveError("bad-index-url", f"{where} {shown}: a URL holds no spaces or control characters.",
                            hint=hint)
    if parts.scheme in ("http", "https") and parts.hostname:
        return url
    if parts.scheme == "file" and not parts.netloc and Path(unquote(parts.path)).is_dir():
        return url
    why = ("a file: URL must name a folder laid out as a simple index" if parts.scheme == "file"
           else "an index URL is http(s)://HOST/... or file:///FOLDER")
    raise EnvsolveError("bad-index-url", f"{where} {shown}: {why}.", hint=hint)


def _check_writable(folder: Path) -> None:
    hint = "Pass --matrices with a folder you can write to (a copy of the matrices), or run verify instead."
    if not folder.is_dir():
        raise EnvsolveError("matrices-unwritable", f"The matrices folder {printable(folder)} is not a folder.",
                            hint=hint)
    probe = folder / f".envsolve-probe.{os.getpid()}.tmp"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise EnvsolveError("matrices-unwritable", f"The matrices folder {printable(folder)} cannot be written "
                            f"({error.strerror or error}).", hint=hint) from None


def _write_all(texts: Mapping[Path, str]) -> list[Path]:
    """Write the changed files: every temporary file first, then the renames, so a full disk or a read-only file
    leaves every matrix as it was."""
    changed = {p: t for p, t in texts.items() if not p.exists() or p.read_text(encoding="utf-8") != t}
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in changed.items():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            staged.append((tmp, path))
            tmp.write_text(text, encoding="utf-8")
        for tmp, path in staged:
            tmp.replace(path)
    except OSError as error:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise EnvsolveError("matrices-unwritable", f"Cannot write the matrices ({error.strerror or error}); none "
                            "was changed.", hint="Free space or make the folder writable, then refresh again."
                            ) from None
    return list(changed)
