"""The host snapshot: a JSON description of a machine that can be planned for anywhere.

Schema `envsolve.host/1` (docs/host-snapshot.md). A missing optional field means *unknown*, which
is different from *absent*: `"driver": null` says there is no NVIDIA driver, while leaving `driver`
out says nothing about it. Parsing names the field and what was expected when input is malformed.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from envsolve.errors import EnvsolveError
from envsolve.terminal import printable
from envsolve.typedjson import Reader, field_path, load_json

__all__ = [
    "EXAMPLE_PREFIX", "GPU", "KEPT_ENV", "MAX_SNAPSHOT_BYTES", "Driver", "Host", "Library", "LoaderLink",
    "OSInfo", "Toolkit", "examples", "host_to_json", "normalize", "parse_host", "read_host",
]


SCHEMA = "envsolve.host/1"
PLATFORMS = ("colab", "kaggle", "modal", "aws-dlami", "sagemaker", "runpod", "docker", "bare")
ORIGINS = ("system", "pip", "conda")
ARCHES = ("x86_64", "aarch64")
# Only these environment variables are kept: they decide what the loader and CUDA see. Anything
# else (tokens above all) never enters a snapshot.
KEPT_ENV = (
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "NVIDIA_REQUIRE_CUDA",
    "CUDA_HOME",
    "CUDA_PATH",
    "CONDA_PREFIX",
)
# Versions are short: a 5,000-digit one is an attack on int(), not a release. Each pattern is what the
# engine later reads with packaging.version.Version or int(), so validation accepts only what those accept.
MAX_VERSION = 64
_N = r"\d{1,9}"  # one numeric component
_VERSION = re.compile(rf"^{_N}(\.{_N})*([.+-][0-9A-Za-z.+-]*)?$")  # a shape check; _pep440 decides
_RELEASE = re.compile(rf"^{_N}(\.{_N}){{0,5}}$")  # library, toolkit and CUDA versions: numbers only
_GLIBC = re.compile(rf"^({_N}\.{_N})(?:\.{_N})?(?:[-+~][0-9A-Za-z.+~-]*)?$")  # "2.35-0ubuntu3": a distro build
_CC = re.compile(r"^\d{1,3}\.\d{1,3}$")
# A soname's version is read with int() (Library.major): numeric components as short as a version's.
_SONAME = re.compile(rf"^[^/\s]{{1,200}}?\.so(\.{_N}){{0,4}}$")
# Larger snapshots are not host descriptions (the probe writes tens of kilobytes); reading one costs memory
# and minutes. docs/host-snapshot.md and the README state it.
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024
# Entries in one list or object of a snapshot: a real environment has hundreds of packages, a machine a few
# GPUs; 600,000 packages (11 MiB) took doctor 10 s and 650 MB.
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class OSInfo:
    system: str | None = None
    arch: str | None = None
    glibc: str | None = None
    distro: str | None = None


@dataclass(frozen=True)
class GPU:
    name: str
    compute_capability: str | None = None
    memory_mib: int | None = None


@dataclass(frozen=True)
class Driver:
    version: str | None  # None: a driver is there, its version unknown (a bug report that says "driver installed")
    cuda: str | None = None


@dataclass(frozen=True)
class Toolkit:
    version: str | None  # None: a toolkit folder whose version is not known
    path: str | None = None


@dataclass(frozen=True)
class Library:
    """A native library file on the host: cudnn, cublas, cudart, nccl, avutil, avcodec, ..."""

    name: str
    version: str | None = None
    soname: str | None = None
    path: str | None = None
    origin: str = "system"
    evidence: str | None = None

    @property
    def major(self) -> int | None:
        if self.version:
            return int(self.version.split(".")[0])
        if self.soname and re.search(r"\.so\.(\d+)", self.soname):
            return int(re.search(r"\.so\.(\d+)", self.soname).group(1))  # type: ignore[union-attr]
        return None


@dataclass(frozen=True)
class LoaderLink:
    """What the dynamic loader resolves for one consumer (written by the live probe)."""

    consumer: str
    needs: str
    resolved: str | None
    via: str | None = None
    how: str = "needed"  # needed (DT_NEEDED) or dlopen (a string the binary loads at run time)
    searched: tuple[str, ...] = ()


@dataclass(frozen=True)
class Host:
    """Everything envsolve knows about one machine. None means unknown unless said otherwise."""

    os: OSInfo = field(default_factory=OSInfo)
    python: str | None = None
    platform: str | None = None
    gpus: tuple[GPU, ...] | None = None
    driver: Driver | None = None
    driver_known: bool = False
    cuda_toolkits: tuple[Toolkit, ...] | None = None
    libraries: tuple[Library, ...] | None = None
    # name -> version; a None version means installed, version unknown ("faster-whisper installed")
    packages: Mapping[str, str | None] | None = None
    packages_complete: bool = False  # the probe lists every installed distribution; hand-written may not
    # The probe lists every copy the loader could find; a hand-written list is the author's account of the
    # host (complete) unless it says "libraries_complete": false.
    libraries_complete: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    loader: tuple[LoaderLink, ...] | None = None
    ffmpeg: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def has_driver(self) -> bool:
        return self.driver is not None

    def package(self, name: str) -> str | None:
        if self.packages is None:
            return None
        return self.packages.get(normalize(name))


def normalize(name: str) -> str:
    """PEP 503 name normalisation, so 'pyannote.audio' and 'pyannote-audio' are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


_HINT = ("Correct that field (docs/host-snapshot.md describes every field), or write a fresh snapshot on the "
         "machine itself with `envsolve probe --json > host.json`.")


_SYNTAX_HINT = ("Correct the file (docs/host-snapshot.md has a complete example), or write a fresh snapshot on the "
                "machine itself with `envsolve probe --json > host.json`.")


def parse_host(data: Any, origin: str = "snapshot") -> Host:
    """Validate and convert parsed JSON into a Host."""
    r = Reader(origin, "bad-snapshot", _HINT)
    top = r.mapping(data, "(top level)")
    for key in ("gpus", "cuda_toolkits", "libraries", "packages", "env", "loader", "notes"):
        value = top.get(key)
        if isinstance(value, list | Mapping) and len(value) > MAX_ENTRIES:
            raise r.fail(key, f"at most {MAX_ENTRIES} entries (a real host has hundreds at most)",
                         f"{len(value)} entries")
    schema = top.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise r.fail("schema", f'"{SCHEMA}" (the only schema this envsolve reads)', schema)
    os_data = r.mapping(top.get("os", {}), "os")
    arch = r.optional_text(os_data, "arch", "os")
    if arch is not None:
        arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
        if arch not in ARCHES:
            raise r.fail("os.arch", " or ".join(ARCHES), arch)
    os_info = OSInfo(
        system=r.optional_text(os_data, "system", "os"),
        arch=arch,
        glibc=_glibc(r, os_data),
        distro=r.optional_text(os_data, "distro", "os"),
    )
    platform = r.optional_text(top, "platform", "")
    if platform is not None and platform not in PLATFORMS:
        raise r.fail("platform", "one of " + ", ".join(PLATFORMS), platform)

    gpus = None
    if "gpus" in top and top["gpus"] is not None:
        gpus = tuple(_gpu(r, g, f"gpus[{i}]") for i, g in enumerate(r.listing(top["gpus"], "gpus")))

    driver_known = "driver" in top
    driver = None
    if top.get("driver") is not None:
        d = r.mapping(top["driver"], "driver")
        version = _version(r, d, "version", "driver", _RELEASE, 'a driver version such as "550.54.15"')
        driver = Driver(version, _version(r, d, "cuda", "driver", _RELEASE, 'a CUDA version such as "12.4"'))

    toolkits = None
    if top.get("cuda_toolkits") is not None:
        toolkits = tuple(_toolkit(r, t, f"cuda_toolkits[{i}]")
                         for i, t in enumerate(r.listing(top["cuda_toolkits"], "cuda_toolkits")))

    libraries = None
    if top.get("libraries") is not None:
        libraries = tuple(
            _library(r, lib, f"libraries[{i}]") for i, lib in enumerate(r.listing(top["libraries"], "libraries"))
        )

    packages = None
    if top.get("packages") is not None:
        raw = r.mapping(top["packages"], "packages")
        packages = {}
        for name, version in raw.items():
            where = f"packages.{name}"
            if version is not None and (not isinstance(version, str) or not _pep440(version)):
                raise r.fail(where, 'a version string such as "2.5.1+cu121", or null (installed, '
                             'version unknown)', version)
            if not _NAME.match(name):
                raise r.fail(where, "keyed by a distribution name such as \"faster-whisper\"", name)
            if normalize(name) in packages:
                raise r.fail(where, f"listed once (another spelling of {normalize(name)!r} is there too)", name)
            packages[normalize(name)] = version

    complete = top.get("packages_complete", False)
    if not isinstance(complete, bool):
        raise r.fail("packages_complete", "true or false", complete)
    libraries_complete = top.get("libraries_complete", True)
    if not isinstance(libraries_complete, bool):
        raise r.fail("libraries_complete", "true or false", libraries_complete)
    env_raw = r.mapping(top.get("env") or {}, "env")
    env = {}
    for key, value in env_raw.items():
        # An environment variable is text; a list or object here is a writer's bug that str() would hide.
        if value is not None and not isinstance(value, str):
            raise r.fail(f"env.{key}", "a string (an environment variable's value) or null", value)
        if key in KEPT_ENV and value is not None:
            env[key] = value

    loader = None
    if top.get("loader") is not None:
        loader = tuple(_link(r, x, f"loader[{i}]") for i, x in enumerate(r.listing(top["loader"], "loader")))

    return Host(
        os=os_info,
        python=_version(r, top, "python", "", _VERSION, 'a Python version such as "3.11.9"'),
        platform=platform,
        gpus=gpus,
        driver=driver,
        driver_known=driver_known,
        cuda_toolkits=toolkits,
        libraries=libraries,
        packages=packages,
        packages_complete=complete,
        libraries_complete=libraries_complete,
        env=env,
        loader=loader,
        ffmpeg=_version(r, top, "ffmpeg", "", _VERSION, 'an FFmpeg version such as "6.1.1"', pep440=False),
        notes=tuple(str(n) for n in r.listing(top.get("notes", []), "notes")),
    )


_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,200}[A-Za-z0-9])?$")  # PEP 508 distribution names


def _pep440(text: str) -> bool:
    if len(text) > MAX_VERSION:
        return False
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def _version(r: Reader, data: Mapping[str, Any], key: str, where: str, pattern: re.Pattern[str], expected: str,
             *, pep440: bool = True) -> str | None:
    """A version field: the pattern, at most MAX_VERSION characters and (`pep440`) readable by packaging."""
    text = r.optional_text(data, key, where, pattern, expected)
    if text is not None and (len(text) > MAX_VERSION or (pep440 and not _pep440(text))):
        raise r.fail(field_path(where, key), f"{expected} (at most {MAX_VERSION} characters)", text)
    return text


def _glibc(r: Reader, os_data: Mapping[str, Any]) -> str | None:
    """glibc as MAJOR.MINOR: a distribution's build suffix ("2.35-0ubuntu3", as `ldd --version` prints) is
    dropped, since the rules compare glibc releases."""
    text = _version(r, os_data, "glibc", "os", _GLIBC, 'a glibc version such as "2.35"', pep440=False)
    if text is None:
        return None
    match = _GLIBC.fullmatch(text)
    assert match is not None  # _version checked the pattern
    return match.group(1)


def _toolkit(r: Reader, value: Any, where: str) -> Toolkit:
    t = r.mapping(value, where)
    version = _version(r, t, "version", where, _RELEASE, 'a CUDA version such as "12.2"')
    return Toolkit(version=version, path=r.optional_text(t, "path", where))


def _gpu(r: Reader, value: Any, where: str) -> GPU:
    g = r.mapping(value, where)
    name = r.optional_text(g, "name", where)
    if not name:
        raise r.fail(f"{where}.name", 'the GPU name, e.g. "NVIDIA L4"', g.get("name"))
    memory = g.get("memory_mib")
    if memory is not None and (not isinstance(memory, int) or isinstance(memory, bool) or memory < 0):
        raise r.fail(f"{where}.memory_mib", "a whole number of MiB", memory)
    return GPU(name, r.optional_text(g, "compute_capability", where, _CC, 'a compute capability such as "8.9"'),
               memory)


def _library(r: Reader, value: Any, where: str) -> Library:
    lib = r.mapping(value, where)
    name = r.optional_text(lib, "name", where)
    if not name:
        raise r.fail(f"{where}.name", 'a library name such as "cudnn"', lib.get("name"))
    origin = r.optional_text(lib, "origin", where) or "system"
    if origin not in ORIGINS:
        raise r.fail(f"{where}.origin", " or ".join(ORIGINS), origin)
    return Library(
        name=name,
        version=_version(r, lib, "version", where, _RELEASE, 'a version such as "8.9.6"'),
        soname=r.optional_text(lib, "soname", where, _SONAME, 'a soname such as "libcudnn.so.8"'),
        path=r.optional_text(lib, "path", where),
        origin=origin,
        evidence=r.optional_text(lib, "evidence", where),
    )


def _link(r: Reader, value: Any, where: str) -> LoaderLink:
    x = r.mapping(value, where)
    consumer, needs = r.optional_text(x, "consumer", where), r.optional_text(x, "needs", where)
    if not consumer or not needs:
        raise r.fail(where, "an object with consumer and needs", x)
    searched = x.get("searched") or []
    return LoaderLink(consumer, needs, r.optional_text(x, "resolved", where), r.optional_text(x, "via", where),
                      r.optional_text(x, "how", where) or "needed", tuple(str(s) for s in r.listing(searched, where)))


EXAMPLE_PREFIX = "example:"


def examples() -> list[str]:
    """The built-in example snapshots (`--host example:NAME`), for trying envsolve without a GPU box."""
    from envsolve import packagefiles

    folder = packagefiles.folder("envsolve").joinpath("data").joinpath("examples")
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def read_host(path: str | Path) -> Host:
    """Read a snapshot file (or `example:NAME`), with a clear error for a missing or malformed one."""
    if str(path).startswith(EXAMPLE_PREFIX):
        from envsolve import packagefiles

        name = str(path).removeprefix(EXAMPLE_PREFIX)
        if name not in examples():
            raise EnvsolveError("unknown-example", f"There is no built-in example host {name!r}.",
                                hint=f"Use one of: {', '.join(EXAMPLE_PREFIX + e for e in examples())}.")
        text = packagefiles.folder("envsolve").joinpath("data").joinpath("examples").joinpath(f"{name}.json").read_text(
            encoding="utf-8")
        return parse_host(load_json(text, str(path), "bad-snapshot", _HINT), str(path))
    p = Path(path)
    try:
        text = _read_bounded(p)
    except FileNotFoundError:
        raise EnvsolveError("snapshot-not-found", f"No host snapshot at {printable(p)}.",
                            hint="Check the path, or write one on the target machine with "
                            "`envsolve probe --json > host.json`.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvsolveError("snapshot-unreadable", f"Cannot read {printable(p)}: {exc}.",
                            hint="Make the file readable UTF-8 JSON.") from None
    data = load_json(text, str(p), "bad-snapshot", _SYNTAX_HINT)
    return parse_host(data, str(p))


def _read_bounded(path: Path) -> str:
    """The file's text, refusing anything but a regular file of at most MAX_SNAPSHOT_BYTES (a FIFO or
    /dev/zero given as a snapshot must not hang or fill memory)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise EnvsolveError("snapshot-unreadable", f"{printable(str(path))} is not a regular file.",
                                hint="Give a snapshot file written by `envsolve probe --json -o host.json`.")
        data = handle.read(MAX_SNAPSHOT_BYTES + 1)
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise EnvsolveError("snapshot-too-large", f"{printable(str(path))} is larger than "
                            f"{MAX_SNAPSHOT_BYTES // (1024 * 1024)} MiB, the limit for a host snapshot (a probed "
                            "one is tens of kilobytes).",
                            hint="Give the snapshot `envsolve probe --json` wrote on that machine, or trim the file's "
                            "packages and notes to what the host has.")
    return data.decode("utf-8")


def host_to_json(host: Host) -> dict[str, Any]:
    """The snapshot form of a Host; read back with parse_host it gives an equal Host."""
    out: dict[str, Any] = {"schema": SCHEMA}
    out["os"] = {k: v for k, v in vars(host.os).items() if v is not None}
    if host.python:
        out["python"] = host.python
    if host.platform:
        out["platform"] = host.platform
    if host.gpus is not None:
        out["gpus"] = [_drop_none(vars(g)) for g in host.gpus]
    if host.driver_known or host.driver is not None:
        out["driver"] = _drop_none(vars(host.driver)) if host.driver else None
    if host.cuda_toolkits is not None:
        out["cuda_toolkits"] = [_drop_none(vars(t)) for t in host.cuda_toolkits]
    if host.libraries is not None:
        out["libraries"] = [_drop_none(vars(lib)) for lib in host.libraries]
    if host.packages is not None:
        out["packages"] = dict(sorted(host.packages.items()))
    if host.packages_complete:
        out["packages_complete"] = True
    if not host.libraries_complete:
        out["libraries_complete"] = False
    if host.env:
        out["env"] = dict(host.env)
    if host.loader is not None:
        out["loader"] = [{**_drop_none(vars(x)), "searched": list(x.searched)} for x in host.loader]
    if host.ffmpeg:
        out["ffmpeg"] = host.ffmpeg
    if host.notes:
        out["notes"] = list(host.notes)
    return out


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}
