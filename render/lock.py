"""A hashed lock for the plan's target: its platform and Python, not the machine running envsolve.

pip resolves it: `pip install --dry-run --report` with `--platform` (every manylinux tag of the target's
architecture), `--python-version` and `--only-binary=:all:` picks, from the index pip is configured with,
exactly the wheels the target's pip will download, and its report names each file's sha256. pip-compile
cannot do this: it resolves for the interpreter it runs in (its markers and wheel tags), so a lock made on a
CI runner would carry the runner's wheels. The resolution is real and needs the registry; the hermetic tests
use a committed lock, and tests/test_render_lock.py (network) re-resolves.

Two things pip cannot do here get their own handling, each labelled in the file and on stderr:
- Source-only dependencies the plan names (`source_builds`, e.g. docopt for pyannote.audio 3.x): pip refuses
  sdists with --platform, so they are built here as wheels for the resolution only, and the lock hashes the
  sdist PyPI serves (its JSON API says which), which is what the target builds.
- A package index that cannot be reached (download.pytorch.org is not reachable from some networks): its
  pins are resolved as the same release from PyPI, written exact but unhashed in a second file, and the
  dependencies only they bring are left for that step to fetch, with its index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from envsolve.errors import EnvsolveError
from envsolve.render.contract import PYPI, Contract, Package

__all__ = ["Lock", "Locked", "check_pip", "platform_tags", "resolve"]

RESOLVE_TIMEOUT_S = 900
# pip accepts --platform/--python-version with --dry-run (no --target) from 23.3 on: pypa/pip#12215, fixed by
# pull 12217 (merged 2023-08-09, released in 23.3). A fresh venv brings an older pip (23.2.1 with Python 3.11,
# 22.0.2 on Ubuntu 22.04), so envsolve declares pip>=23.3 and names an older one as the cause here.
PIP_MINIMUM = (23, 3)


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    hashes: tuple[str, ...]  # sha256 hex digests of the files the target may download
    source_build: bool = False


@dataclass(frozen=True)
class Lock:
    python: str
    arch: str
    hashed: tuple[Locked, ...]
    unhashed: tuple[Package, ...]  # pins from an index that could not be reached: exact, not hash-checked
    unreachable: tuple[str, ...]
    indexes: tuple[str, ...]  # extra indexes the hashed lines come from (reachable PyTorch indexes)

    @property
    def source_builds(self) -> tuple[str, ...]:
        return tuple(sorted(item.name for item in self.hashed if item.source_build))


def platform_tags(arch: str) -> list[str]:
    """Every manylinux tag a modern Linux of this architecture accepts (pip --platform takes them one by one)."""
    return [f"manylinux_2_{minor}_{arch}" for minor in range(39, 4, -1)] + [
        f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]


def target_environment(python: str, arch: str) -> dict[str, str]:
    """PEP 508 marker values of the target (a CPython on Linux)."""
    return {"python_version": python, "python_full_version": f"{python}.0", "platform_machine": arch,
            "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def check_pip(interpreter: str = sys.executable) -> None:
    """EnvsolveError `pip-too-old` when the pip of `interpreter` cannot resolve for another target."""
    done = subprocess.run([interpreter, "-m", "pip", "--version"], capture_output=True, text=True, timeout=60)
    words = done.stdout.split()
    version = words[1] if done.returncode == 0 and len(words) > 1 else "none"
    try:
        parts = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        parts = (0,)
    if parts < PIP_MINIMUM:
        wanted = ".".join(map(str, PIP_MINIMUM))
        raise EnvsolveError(
            "pip-too-old", f"Resolving a lock for another target needs pip {wanted} or newer; {interpreter} has pip "
            f"{version}. Older pip refuses --platform and --python-version without --target (pypa/pip#12215).",
            hint=f"Upgrade pip where envsolve runs: {interpreter} -m pip install --upgrade 'pip>={wanted}' "
            "(installing envsolve with its dependencies does this).")


def pip_dry_run(requirements: Iterable[str], *, python: str, arch: str, extra_indexes: Iterable[str] = (),
                find_links: Path | None = None, interpreter: str = sys.executable) -> list[dict[str, Any]]:
    """pip's install report for these requirements on the target, binary wheels only; EnvsolveError when
    pip finds no consistent set (its own message, shortened)."""
    check_pip(interpreter)
    command = [interpreter, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--report", "-"]
    for tag in platform_tags(arch):
        command += ["--platform", tag]
    for index in extra_indexes:
        command += ["--extra-index-url", index]
    if find_links:
        command += ["--find-links", str(find_links)]
    env = {**os.environ, "PIP_REQUIRE_VIRTUALENV": "0"}
    try:
        done = subprocess.run([*command, *requirements], capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S,
                              env=env)
    except subprocess.TimeoutExpired:
        raise EnvsolveError("lock-unresolved", f"pip did not finish resolving within {RESOLVE_TIMEOUT_S} s.",
                            hint="Check the network to the package index (pip's PIP_INDEX_URL if you set one), "
                            "then run the command again.") from None
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.strip() and "WARNING: Location" not in line]
        raise EnvsolveError(
            "lock-unresolved", "pip found no set of binary wheels for this plan on its target "
            f"(Python {python}, Linux {arch}): {' '.join(errors[-6:])[:1200]}",
            hint="If the index is unreachable, check the network or PIP_INDEX_URL; if a pin has no wheel for the "
            "target, report it (a plan must install) and pass -c to avoid that release meanwhile.")
    items: list[dict[str, Any]] = json.loads(done.stdout)["install"]
    return items


def reachable(index: str, timeout: float = 8.0) -> bool:
    """Whether a simple index answers (its root page, one request)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(index.rstrip("/") + "/", method="HEAD"),
                                    timeout=timeout) as response:
            return int(response.status) < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def resolve(contract: Contract, roots: Iterable[str] = (), *, is_reachable: Callable[[str], bool] = reachable,
            warn: Callable[[str], None] = lambda _: None) -> Lock:
    """Lock the plan's packages (and `roots`, e.g. envsolve's own dependencies) for the plan's target."""
    allowed_source_builds(contract.source_builds)  # before any request: nothing is fetched for a refused plan
    unreachable = tuple(i for i in contract.extra_indexes if not is_reachable(i))
    offline = [p for p in contract.packages if p.index in unreachable]
    requested = [p.requirement if p not in offline else f"{p.name}=={p.version.split('+')[0]}"
                 for p in contract.packages] + list(roots)
    reached_indexes = tuple(i for i in contract.extra_indexes if i not in unreachable)
    with tempfile.TemporaryDirectory(prefix="envsolve-lock-") as folder:
        built = _build_source_only(contract, Path(folder)) if contract.source_builds else None
        items = pip_dry_run(requested, python=contract.python, arch=contract.target.arch,
                            extra_indexes=reached_indexes, find_links=built)
    by_name: dict[str, dict[str, Any]] = {canonicalize_name(str(i["metadata"]["name"])): i for i in items}
    keep: set[str] = set(by_name)
    if offline:
        index_names: set[str] = {canonicalize_name(p.name) for p in offline}
        others = [r for r in requested if canonicalize_name(Requirement(r).name) not in index_names]
        keep = _closure(others, by_name, blocked=index_names, env=target_environment(contract.python,
                                                                                       contract.target.arch))
        for index in unreachable:
            warn(f"{index} could not be reached: its pins ({', '.join(p.requirement for p in offline)}) are written "
                 "exact but unhashed in requirements-index.txt, with the dependencies only they bring left to that "
                 "step; render the lock where the index is reachable to hash them")
    builds = {canonicalize_name(p.name): p for p in contract.source_builds}
    hashed = []
    for name in sorted(keep):
        item = by_name[name]
        version = str(item["metadata"]["version"])
        if name in builds:
            hashed.append(Locked(name, version, _sdist_hashes(name, version), source_build=True))
        else:
            hashed.append(Locked(name, version, (_sha256(item),)))
    return Lock(contract.python, contract.target.arch, tuple(hashed), tuple(offline), unreachable, reached_indexes)


def _sha256(item: dict[str, Any]) -> str:
    info = item.get("download_info", {}).get("archive_info", {})
    digest = info.get("hashes", {}).get("sha256") or str(info.get("hash", "")).removeprefix("sha256=")
    if not digest:
        raise EnvsolveError("lock-unresolved", f"pip's report has no sha256 for {item['metadata']['name']}.",
                            hint="Use an index that serves hashes (PyPI does), or upgrade pip to 23 or newer.")
    return str(digest)


def _closure(roots: Iterable[str], items: dict[str, dict[str, Any]], *, blocked: set[str],
             env: dict[str, str]) -> set[str]:
    """The names reachable from `roots` through the items' Requires-Dist (markers evaluated for the target,
    extras followed), never through `blocked`."""
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    queue: list[tuple[str, frozenset[str]]] = []
    for text in roots:
        requirement = Requirement(text)
        queue.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    while queue:
        name, extras = queue.pop()
        if name in blocked or name not in items:
            continue
        key = (name, ",".join(sorted(extras)))
        if key in seen:
            continue
        seen.add(key)
        names.add(name)
        for text in items[name]["metadata"].get("requires_dist") or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            marker: Marker | None = requirement.marker
            if marker is not None and not any(marker.evaluate({**env, "extra": e}) for e in ("", *extras)):
                continue
            queue.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return names


def allowed_source_builds(builds: Iterable[Package]) -> None:
    """Refuse a source build that matrices/source_builds.toml does not list (package and version): building an
    sdist runs its code on this machine, and a plan file is untrusted input, so it may only name what the
    matrices themselves say a plan needs."""
    from envsolve.resolver import matrices

    listed = {(canonicalize_name(str(row["package"])), str(row["version"])) for row in matrices.load("source_builds")}
    for build in builds:
        if (canonicalize_name(build.name), build.version) not in listed:
            raise EnvsolveError(
                "source-build-not-listed", f"The plan asks to build {build.name}=={build.version} from source, which "
                "matrices/source_builds.toml does not list as a needed source build; building it would run its code "
                "here.", hint="Regenerate the plan with `envsolve plan --json` (do not edit it by hand); listed: "
                + ", ".join(f"{n}=={v}" for n, v in sorted(listed)) + ".")


def _build_source_only(contract: Contract, folder: Path) -> Path:
    """Wheels of the plan's source-only dependencies, for the resolution only (pip refuses sdists with --platform)."""
    specs = [p.requirement for p in contract.source_builds]
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-binary", ":all:",
                           "-w", str(folder), *specs], capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S)
    if done.returncode != 0:
        raise EnvsolveError("lock-unresolved", f"Could not build {', '.join(specs)} from source for the resolution: "
                            f"{done.stderr.strip()[-400:]}", hint="Check the network to PyPI, then run it again.")
    return folder


def _sdist_hashes(name: str, version: str) -> tuple[str, ...]:
    """The sha256 of the sdist PyPI serves for name==version (what the target downloads and builds), from
    the simple index's JSON form (PEP 691), which names every file with its hash."""
    url = f"{PYPI}/{canonicalize_name(name)}/"
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise EnvsolveError("lock-unresolved", f"Could not read {url}: {error}.",
                            hint="Check the network to PyPI, then run it again.") from None
    sdists = (".tar.gz", ".zip")
    digests = tuple(sorted(str(f["hashes"]["sha256"]) for f in data.get("files", [])
                           if str(f.get("filename", "")).startswith(f"{name}-{version}.")
                           and str(f["filename"]).endswith(sdists) and f.get("hashes", {}).get("sha256")))
    if not digests:
        raise EnvsolveError("lock-unresolved", f"PyPI lists no sdist for {name}=={version}.",
                            hint="Report it: the plan names it as a source build.")
    return digests
