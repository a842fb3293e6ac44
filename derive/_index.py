"""The package index pip is configured to use, read through the simple API (PEP 503/691, PEP 592 yanked,
PEP 658/714 metadata, PEP 700 upload times), so a mirror works as PyPI does."""

from __future__ import annotations

import configparser
import email.parser
import json
import os
import sys
import urllib.error
from collections.abc import Iterable, Mapping
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from packaging.utils import canonicalize_name
from packaging.version import Version

from envsolve.derive._dist import Dist
from envsolve.derive._http import Fetcher, RegistryError
from envsolve.derive._wheel import RemoteWheel

__all__ = ["PYPI", "Dist", "Index", "configured_index", "python_versions"]

PYPI = "https://pypi.org/simple/"
_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


def configured_index(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(index URL, where it came from): PIP_INDEX_URL, else index-url in pip's config files, else PyPI."""
    env = os.environ if environ is None else environ
    if env.get("PIP_INDEX_URL"):
        return env["PIP_INDEX_URL"], "PIP_INDEX_URL"
    found: tuple[str, str] | None = None
    for path in _pip_config_files(env):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        for section in ("global", "install"):  # later files and [install] override, as in pip
            if parser.has_option(section, "index-url"):
                found = (parser.get(section, "index-url").split()[0], f"{path} [{section}] index-url")
    return found or (PYPI, "default (PyPI)")


def _pip_config_files(env: Mapping[str, str]) -> list[Path]:
    if env.get("PIP_CONFIG_FILE") == os.devnull:
        return []
    home = Path(env.get("HOME", str(Path.home())))
    xdg_dirs = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf", Path(env.get("XDG_CONFIG_HOME", home / ".config")) / "pip" / "pip.conf"]
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    if env.get("VIRTUAL_ENV") or sys.prefix != sys.base_prefix:
        files.append(Path(env.get("VIRTUAL_ENV") or sys.prefix) / "pip.conf")
    return [f for f in files if f.is_file()]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


class Index:
    """A PEP 503 simple index: files per project, their metadata."""

    def __init__(self, fetcher: Fetcher, url: str = PYPI) -> None:
        self.fetcher = fetcher
        self.url = url if url.endswith("/") else url + "/"

    def project_url(self, project: str) -> str:
        return urljoin(self.url, canonicalize_name(project) + "/")

    def files(self, project: str) -> list[Dist]:
        url = self.project_url(project)
        try:
            body, ctype = self.fetcher.page(url, _ACCEPT)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return []  # no such project on this index
            raise RegistryError(f"HTTP {err.code} from the index", url) from err
        if _JSON in ctype or body.lstrip().startswith(b"{"):
            return [self._from_json(project, url, f) for f in json.loads(body)["files"]]
        return self._from_html(project, url, body.decode("utf-8", "replace"))

    def releases(self, project: str, *, pre: bool = False) -> dict[Version, list[Dist]]:
        """Version -> files, ascending; pre-releases only when asked."""
        out: dict[Version, list[Dist]] = {}
        for dist in self.files(project):
            v = dist.version
            if v is not None and (pre or not v.is_prerelease):
                out.setdefault(v, []).append(dist)
        return dict(sorted(out.items()))

    def metadata_text(self, dist: Dist) -> str:
        """The core metadata of a wheel: PEP 658's <url>.metadata, else ranged reads of the wheel's METADATA."""
        text = self.fetcher.immutable(dist.url + ".metadata") if dist.metadata is not False else None
        if text is None:
            text = RemoteWheel(self.fetcher, dist).metadata_bytes()
        return text.decode("utf-8", "replace")

    def metadata(self, dist: Dist) -> Message:
        return email.parser.Parser().parsestr(self.metadata_text(dist))

    # -- parsing --------------------------------------------------------------------------------

    def _from_json(self, project: str, page: str, f: dict[str, Any]) -> Dist:
        yanked = f.get("yanked", False)
        meta = f.get("core-metadata", f.get("dist-info-metadata"))
        return Dist(project, f["filename"], _absolute(page, f["url"]), (f.get("hashes") or {}).get("sha256", ""),
                    f.get("size"), f.get("upload-time"), bool(yanked),
                    yanked if isinstance(yanked, str) and yanked else None, f.get("requires-python"),
                    None if meta is None else bool(meta))

    def _from_html(self, project: str, page: str, html: str) -> list[Dist]:
        parser = _Links()
        parser.feed(html)
        out = []
        for a in parser.links:
            href = a.get("href")
            if not href:
                continue
            url = _absolute(page, href)
            parts = urlsplit(url)
            fragment = dict(p.split("=", 1) for p in parts.fragment.split("&") if "=" in p)
            filename = parts.path.rsplit("/", 1)[-1]
            meta = a.get("data-core-metadata", a.get("data-dist-info-metadata"))
            yanked = "data-yanked" in a
            out.append(Dist(project, filename, urlunsplit(parts._replace(fragment="")), fragment.get("sha256", ""),
                            None, None, yanked, (a.get("data-yanked") or None) if yanked else None,
                            a.get("data-requires-python"), None if meta is None else meta != "false"))
        return out


def _absolute(page: str, url: str) -> str:
    full = urljoin(page, url)
    parts = urlsplit(full)
    if parts.netloc == "pypi.org" and parts.path.startswith("/packages/packages/"):
        return "https://files.pythonhosted.org" + parts.path[len("/packages"):]
    return full


def python_versions(files: Iterable[Dist], machine: str = "x86_64") -> tuple[list[str], list[str]]:
    """CPython X.Y of the Linux wheels for `machine` from their tags: (regular, free-threaded)."""
    regular: set[str] = set()
    threaded: set[str] = set()
    for dist in files:
        if not dist.linux(machine):
            continue
        for tag in dist.tags:
            if tag.interpreter.startswith("cp3") and tag.interpreter[3:].isdigit():
                version = f"3.{tag.interpreter[3:]}"
                (threaded if tag.abi.endswith("t") else regular).add(version)
    key = Version
    return sorted(regular, key=key), sorted(threaded, key=key)
