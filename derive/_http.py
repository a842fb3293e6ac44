"""HTTP for the derivation: GET and ranged GET with an on-disk cache, byte counts and progress on stderr.

Released files never change (an index names them by sha256), so ranged reads of them are cached for good;
index pages change when a release appears, so they are cached for `max_age` seconds. `file://` URLs are read
from disk, which is how a local mirror (and a test) serves an index.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote, urlsplit

from envsolve.derive import _cachefile
from envsolve.errors import EnvsolveError

__all__ = ["DEFAULT_CACHE", "FetchProgress", "Fetcher", "RegistryError"]

DEFAULT_CACHE = Path(os.environ.get("ENVSOLVE_DERIVE_CACHE") or Path.home() / ".cache" / "envsolve-derive")
USER_AGENT = "envsolve-derive (matrices verify/refresh)"
_CHUNK = 8 << 20


class RegistryError(EnvsolveError):
    """The index or a file on it could not be read."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__("registry-unreachable", message, context=f"url: {url}",
                         hint="Check the network and the index URL (pip config list; PIP_INDEX_URL), or pass "
                         "--index-url.")


@dataclass
class FetchProgress:
    """One line per slow step on stderr, and the totals at the end. Silent when `stream` is None."""

    stream: TextIO | None = sys.stderr
    started: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        if self.stream is not None:
            print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=self.stream, flush=True)


@dataclass
class Fetcher:
    """GET with a cache. `cache` None: nothing is read from or written to disk."""

    cache: Path | None = DEFAULT_CACHE
    max_age: float = 3600.0
    progress: FetchProgress = field(default_factory=FetchProgress)
    network_bytes: int = 0
    requests: int = 0
    cache_hits: int = 0

    # -- public ---------------------------------------------------------------------------------

    def page(self, url: str, accept: str) -> tuple[bytes, str]:
        """An index page (cached for max_age): the body and its content type."""
        key = self._key("page", url, accept)
        cached = self._read_cache(key, self.max_age)
        if cached is not None:
            head, _, cached_body = cached.partition(b"\n")
            return cached_body, head.decode()
        body, ctype = self._get(url, {"Accept": accept})
        self._write_cache(key, ctype.encode() + b"\n" + body)
        return body, ctype

    def immutable(self, url: str) -> bytes | None:
        """A file that never changes once published (a PEP 658 .metadata file); None when it does not exist."""
        key = self._key("file", url)
        cached = self._read_cache(key, None)
        if cached is not None:
            return None if cached == b"\0missing" else cached
        try:
            body, _ = self._get(url, {})
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise RegistryError(f"HTTP {err.code} from the index", url) from err
            self._write_cache(key, b"\0missing")
            return None
        self._write_cache(key, body)
        return body

    def span(self, url: str, start: int, end: int, *, keep: bool = True) -> bytes:
        """Bytes [start, end) of a released file (cached for good when `keep`)."""
        if end <= start:
            return b""
        key = self._key("span", url, f"{start}-{end}")
        cached = self._read_cache(key, None) if keep else None
        if cached is not None:
            return cached
        body = b"".join(self.stream(url, start, end))
        if keep:
            self._write_cache(key, body)
        return body

    def stream(self, url: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) of a file in chunks, never cached (a large compressed member)."""
        if url.startswith("file:"):
            with open(_file_path(url), "rb") as fh:
                fh.seek(start)
                left = end - start
                while left > 0:
                    chunk = fh.read(min(_CHUNK, left))
                    if not chunk:
                        break
                    left -= len(chunk)
                    yield chunk
            return
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Range": f"bytes={start}-{end - 1}"})
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=300) as resp:
                skip = start if resp.status == 200 else 0  # a server that ignores Range sends the whole file
                left = end - start
                while left > 0:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    self.network_bytes += len(chunk)
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    chunk = chunk[:left]
                    left -= len(chunk)
                    if chunk:
                        yield chunk
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            raise RegistryError(f"cannot read {url}: {err}", url) from err

    def size(self, url: str) -> int:
        """The length of a file (from a one-byte ranged read's Content-Range, or the file on disk)."""
        if url.startswith("file:"):
            return os.path.getsize(_file_path(url))
        key = self._key("size", url)
        cached = self._read_cache(key, None)
        if cached is not None:
            return int(cached)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Range": "bytes=0-0"})
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                total = resp.headers.get("Content-Range", "").rpartition("/")[2]
                size = int(total) if total.isdigit() else int(resp.headers.get("Content-Length", "0"))
                self.network_bytes += len(resp.read(1))
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            raise RegistryError(f"cannot read {url}: {err}", url) from err
        self._write_cache(key, str(size).encode())
        return size

    def summary(self) -> str:
        return (f"{_mb(self.network_bytes)} read from the network in {self.requests} request(s), "
                f"{self.cache_hits} answered from the cache ({self.cache or 'no cache'})")

    # -- internals ------------------------------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str]) -> tuple[bytes, str]:
        if url.startswith("file:"):
            path = _file_path(url)
            if path.is_dir():
                path = path / "index.html"
            try:
                return path.read_bytes(), "text/html" if path.suffix == ".html" else ""
            except FileNotFoundError as err:
                raise urllib.error.HTTPError(url, 404, "not found", None, None) from err  # type: ignore[arg-type]
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=120) as resp:
                body = resp.read()
                self.network_bytes += len(body)
                return body, resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            raise RegistryError(f"cannot read {url}: {err}", url) from err

    def _key(self, *parts: str) -> str:
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def _read_cache(self, key: str, max_age: float | None) -> bytes | None:
        if self.cache is None:
            return None
        path = self.cache / "http" / key[:2] / key
        try:
            if max_age is not None and time.time() - path.lstat().st_mtime > max_age:
                return None
        except OSError:
            return None
        body = _cachefile.read(path)
        if body is not None:
            self.cache_hits += 1
        return body

    def _write_cache(self, key: str, body: bytes) -> None:
        if self.cache is not None:
            _cachefile.write(self.cache / "http" / key[:2] / key, body)


def _file_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"
