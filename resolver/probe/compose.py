"""`probe_host()`: this machine as a host snapshot, seen the way the dynamic loader sees it.

Sources, cheapest first: the interpreter and OS, the platform markers, the driver (NVML, else the
kernel module's files), the ld.so cache, installed distributions (metadata only), the library
directories (libscan), the loader simulation for each native consumer, and `ffmpeg -version`.
Each source is guarded: one that fails leaves its facts unknown and says why in `Host.notes`.

Privacy: only the variables in host.KEPT_ENV are kept, the home directory is written "~", nothing
reads GPU UUIDs or serial numbers, and a UUID in a note (an NVML error) is redacted. The result is
cached per process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import platform as _platform
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from envsolve.resolver.host import KEPT_ENV, Host, Library, LoaderLink, OSInfo
from envsolve.resolver.probe import installed as _installed
from envsolve.resolver.probe import libscan, nvml, platforms
from envsolve.resolver.probe.elf import ElfError
from envsolve.resolver.probe.ldcache import LdCache, read_ld_so_cache
from envsolve.resolver.probe.loader import DEFAULT_DIRS, DLOPEN_SCAN_LIMIT, consumer_links, split_search_path

__all__ = ["Probe", "collect", "probe", "probe_host", "scrub_home"]

T = TypeVar("T")
AARCH64_DIRS = ("/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")


@dataclass
class Probe:
    """A probe's result: the snapshot, plus what only the readable report shows."""

    host: Host
    torch: _installed.TorchBuild | None = None
    timings: dict[str, float] = field(default_factory=dict)


@functools.cache
def probe_host(loader: bool = True) -> Host:
    """This machine as a Host (cached per process). Never raises for what the machine holds.

    `loader=False` skips the loader simulation: `plan` derives the search for the environment it
    plans, so it has no use for what the current one resolves (and it halves plan's start-up).
    """
    return collect(loader=loader).host


@functools.cache
def probe() -> Probe:
    """probe_host() with the torch build facts and per-source timings (cached per process)."""
    return collect()


def collect(env: Mapping[str, str] | None = None, *, home: str | None = None, loader: bool = True) -> Probe:
    """Probe now, without the cache. `env` and `home` replace os.environ and the home directory (for
    tests); `loader=False` skips the loader simulation."""
    env = dict(os.environ if env is None else env)
    notes: list[str] = []
    timings: dict[str, float] = {}

    def guarded(name: str, fn: Callable[[], T], default: T) -> T:
        start = time.perf_counter()
        try:
            return fn()
        except Exception as e:  # a probe never crashes the run; the reason goes into the notes
            notes.append(f"{name}: could not be read ({type(e).__name__}: {str(e)[:160]}); left unknown")
            return default
        finally:
            timings[name] = time.perf_counter() - start

    arch = platforms.arch()
    distro = guarded("os", lambda: platforms.parse_os_release(platforms.read_text("/etc/os-release", 8192) or ""),
                     None)
    os_info = OSInfo(system=_platform.system(), arch=arch, glibc=platforms.glibc_version(), distro=distro)
    platform = guarded("platform", lambda: platforms.detect_platform(env), None)

    drv = guarded("driver", lambda: nvml.probe_driver(env), None)
    if drv is not None:
        notes.extend(drv.notes)

    cache = guarded("ld.so cache", read_ld_so_cache, LdCache())
    if cache.reason:
        notes.append(f"ld.so cache: {cache.reason}")

    inst = guarded("packages", _installed.read_installed, None)
    torch = None
    owners: dict[str, tuple[str, str]] = {}
    if inst is not None:
        notes.extend(inst.notes)
        torch = guarded("torch build", lambda: _installed.torch_build(inst), None)
        if torch is not None:
            notes.append(torch.describe())
        owners = guarded("wheel owners", lambda: _installed.wheel_lib_owners(inst), {})
        labelled: dict[str, str] = guarded("build labels", lambda: _installed.build_versions(inst), {})
        for name, full in labelled.items():
            notes.append(f"{name} {inst.packages[name]} is recorded as {full}: its metadata carries no build "
                         f"label, its {name}/version.py does")
        inst.packages.update(labelled)

    sites = _site_dirs()
    conda = _conda_prefixes(env)
    scan = guarded("libraries", lambda: libscan.scan_libraries(
        env=env, ld_cache=cache, site_dirs=sites, conda_prefixes=conda, owners=owners,
        default_dirs=_default_dirs(arch) + libscan.EXTRA_DIRS), None)
    libraries: tuple[Library, ...] | None = None
    if scan is not None:
        notes.extend(scan.notes[:20])
        libraries = tuple(scan.libraries)

    links: tuple[LoaderLink, ...] | None = None
    if inst is not None and loader:
        exe = os.path.realpath(sys.executable)
        consumers: list[_installed.Consumer] = guarded("consumers", lambda: _installed.native_consumers(inst, exe), [])
        links = guarded("loader", lambda: _simulate(consumers, env, cache, arch, notes), None)
        if links is not None and libraries is not None:
            links = _align(links, libraries)

    ffmpeg = guarded("ffmpeg", lambda: _ffmpeg(notes), None)

    host = Host(
        os=os_info,
        python=_platform.python_version(),
        platform=platform,
        gpus=drv.gpus if drv is not None else None,
        driver=drv.driver if drv is not None else None,
        driver_known=drv is not None,
        cuda_toolkits=tuple(scan.toolkits) if scan is not None else None,
        libraries=libraries,
        packages=dict(sorted(inst.packages.items())) if inst is not None else None,
        packages_complete=inst is not None,
        env={k: env[k] for k in KEPT_ENV if k in env},
        loader=links,
        ffmpeg=ffmpeg,
        notes=tuple(nvml.redact_uuids(n) for n in notes),
    )
    home = home if home is not None else os.path.expanduser("~")
    return Probe(scrub_home(host, home), scrub_home(torch, home) if torch else None, timings)


# ---------------------------------------------------------------- sources


def _site_dirs() -> list[str]:
    import site

    dirs: list[str] = []
    with contextlib.suppress(AttributeError):  # some embedded or old virtualenv interpreters lack it
        dirs += site.getsitepackages()
    with contextlib.suppress(AttributeError):
        dirs.append(site.getusersitepackages())
    dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return list(dict.fromkeys(d for d in dirs if d))


def _conda_prefixes(env: Mapping[str, str]) -> list[str]:
    prefixes = [env.get("CONDA_PREFIX", "")]
    if os.path.isdir(os.path.join(sys.prefix, "conda-meta")):
        prefixes.append(sys.prefix)
    return list(dict.fromkeys(p for p in prefixes if p.startswith("/")))


def _default_dirs(arch: str | None) -> tuple[str, ...]:
    return AARCH64_DIRS if arch == "aarch64" else DEFAULT_DIRS


def _ffmpeg(notes: list[str]) -> str | None:
    text, how = platforms.read_ffmpeg_version()
    if text is None:
        notes.append(f"ffmpeg: {how}; the FFmpeg libraries found are listed under libraries (libavutil)")
        return None
    release, avutil = platforms.parse_ffmpeg_version(text)
    if release is None:
        notes.append(f"ffmpeg: {how} prints no release number (a git build?); libavutil {avutil or '?'}")
    return release


# ---------------------------------------------------------------- loader simulation


def _pruned_llp(value: str | None) -> str | None:
    """LD_LIBRARY_PATH without absolute entries that are not directories: the loader skips those
    anyway (ENOENT), so resolution is the same, and a 10,000-entry path stays cheap."""
    if not value:
        return value
    kept = [d for d in split_search_path(value, ":;") if not d.startswith("/") or os.path.isdir(d)]
    return ":".join(kept)


def _simulate(consumers: Sequence[_installed.Consumer], env: Mapping[str, str], cache: LdCache,
              arch: str | None, notes: list[str]) -> tuple[LoaderLink, ...]:
    llp = _pruned_llp(env.get("LD_LIBRARY_PATH"))
    dirs = _default_dirs(arch)
    out: list[LoaderLink] = []
    seen: set[tuple[str, str]] = set()
    torch_loaded: list[str] = []
    for c in consumers:
        # torch loads libtorch_global_deps first (its preload), so libtorch_cuda finds those in memory;
        # torchcodec runs inside a process where torch is imported.
        loaded = torch_loaded if c.name in ("torch", "torchcodec") else []
        if c.name == "torchcodec" and not loaded:
            notes.append("torchcodec simulated without torch's libraries loaded (torch not found)")
        try:
            links, brought = consumer_links(
                c.path, c.name, env_ld_library_path=llp, ld_cache=cache, loaded=loaded, loader_chain=c.loaded_by,
                default_dirs=dirs, scan_limit=0 if c.name == "torch" else DLOPEN_SCAN_LIMIT)
        except ElfError as e:
            notes.append(f"loader: cannot read {c.path}: {e.message}")
            continue
        if c.name == "torch":
            # torch._C brings libtorch.so (through libtorch_python) before anything asks for it.
            own = [p for p in (os.path.join(os.path.dirname(c.path), "libtorch.so"),) if os.path.isfile(p)]
            torch_loaded = list(dict.fromkeys([*torch_loaded, *own, c.path, *brought]))
        for link in links:
            if (link.consumer, link.needs) not in seen:
                seen.add((link.consumer, link.needs))
                out.append(link)
    return tuple(out)


def _align(links: tuple[LoaderLink, ...], libraries: tuple[Library, ...]) -> tuple[LoaderLink, ...]:
    """Name each resolved file as the library list does, when both are the same file: $ORIGIN
    gives 'torch/lib/../../nvidia/cudnn/lib/libcudnn.so.9', the list 'nvidia/cudnn/lib/libcudnn.so.9'.
    `searched` keeps the names the loader tried."""
    by_real: dict[str, str] = {}
    for lib in libraries:
        if lib.path:
            by_real.setdefault(os.path.realpath(lib.path), lib.path)
    out = []
    for link in links:
        if link.resolved:
            same = by_real.get(os.path.realpath(link.resolved))
            resolved = same or os.path.normpath(link.resolved)
            link = dataclasses.replace(link, resolved=resolved)
        out.append(link)
    return tuple(out)


# ---------------------------------------------------------------- privacy


def scrub_home(value: T, home: str) -> T:
    """Replace the home directory with "~" in every string of a Host (or any dataclass tree).

    Both spellings count: $HOME as given and its realpath, since the probe records resolved paths (a home
    reached through a symlink, /home -> /data/home, shows up under its real name).
    """
    homes = set()
    for spelling in (home, os.path.realpath(home) if home else ""):
        spelling = spelling.rstrip("/")
        if spelling and spelling != "/" and len(spelling) >= 2:
            homes.add(spelling)
    if not homes:
        return value
    # Longest first, so /data/home/me is not left as ~ plus a tail when /home/me is also a prefix of it.
    alternatives = "|".join(re.escape(h) for h in sorted(homes, key=len, reverse=True))
    pattern = re.compile(f"(?:{alternatives})" + r"(?=/|:|;|\s|$|\)|,|')")

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return pattern.sub("~", v)
        if isinstance(v, tuple):
            return tuple(walk(x) for x in v)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclasses.replace(v, **{f.name: walk(getattr(v, f.name)) for f in dataclasses.fields(v)})
        return v

    result: T = walk(value)
    return result
