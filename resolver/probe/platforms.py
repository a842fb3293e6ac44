"""Where envsolve runs: hosted platform, container, OS, glibc, architecture, Python and FFmpeg.

Collect, then parse: the `read_*` functions do the I/O and return raw text (or None), the
`parse_*` functions are pure and tested on canned output. Nothing here raises on odd input.
"""

from __future__ import annotations

import os
import platform as _platform
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from envsolve.resolver.probe.elf import open_regular

__all__ = [
    "ContainerMarkers",
    "arch",
    "classify_container_variable",
    "container_markers",
    "detect_platform",
    "glibc_version",
    "parse_cgroup",
    "parse_ffmpeg_version",
    "parse_os_release",
    "read_ffmpeg_version",
    "read_text",
]

_READ_LIMIT = 64 << 10
FFMPEG_TIMEOUT_S = 2.0  # ffmpeg -version answers in milliseconds; a hung one must not hold up probe


def read_text(path: str | os.PathLike[str], limit: int = _READ_LIMIT) -> str | None:
    """The first `limit` characters of a file, or None when it cannot be read."""
    try:
        with open_regular(path) as f:  # a FIFO or a device at that path must not block or read for ever
            return f.read(limit * 4).decode("utf-8", errors="replace")[:limit]
    except (OSError, ValueError):
        return None


def detect_platform(env: Mapping[str, str] | None = None, root: str = "/") -> str:
    """colab, kaggle, modal, sagemaker, runpod, aws-dlami, docker or bare, from cheap markers."""
    env = os.environ if env is None else env
    if "COLAB_RELEASE_TAG" in env or "COLAB_GPU" in env:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in env or "KAGGLE_URL_BASE" in env:
        return "kaggle"
    if "MODAL_TASK_ID" in env or "MODAL_ENVIRONMENT" in env:
        return "modal"
    if "SM_CURRENT_HOST" in env or "SAGEMAKER_INTERNAL_IMAGE_URI" in env or _exists(root, "opt/ml/metadata"):
        return "sagemaker"
    if "RUNPOD_POD_ID" in env:
        return "runpod"
    if _exists(root, "opt/aws/dlami") or _exists(root, "etc/dlami"):
        return "aws-dlami"
    if container_markers(env, root).in_container:
        return "docker"
    return "bare"


def _exists(root: str, rel: str) -> bool:
    try:
        return Path(root, rel).exists()
    except OSError:
        return False


@dataclass(frozen=True)
class ContainerMarkers:
    """Evidence that this is a container, and whether an NVIDIA GPU was passed into it."""

    in_container: bool
    evidence: tuple[str, ...]
    device_nodes: tuple[str, ...]  # /dev/nvidia* present
    visible_devices: str | None  # NVIDIA_VISIBLE_DEVICES as set


_CGROUP_MARKERS = ("docker", "kubepods", "containerd", "libpod", "lxc", "crio")


def parse_cgroup(text: str) -> str | None:
    """The container runtime named in /proc/1/cgroup text, or None (cgroup v2 hosts often say '0::/')."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        for marker in _CGROUP_MARKERS:
            if marker in path:
                return marker
    return None


# What systemd-nspawn, podman, docker, LXC, flatpak and others put in the `container` variable.
_KNOWN_CONTAINER_VALUES = ("docker", "podman", "oci", "lxc", "lxc-libvirt", "systemd-nspawn", "flatpak", "wsl",
                           "rkt", "openvz", "proot")


def classify_container_variable(value: str) -> str:
    """A known runtime name as itself, anything else as "set" (it may be any text: a path, a secret)."""
    return value if value in _KNOWN_CONTAINER_VALUES else "set"


def container_markers(env: Mapping[str, str] | None = None, root: str = "/") -> ContainerMarkers:
    """Look for /.dockerenv, /run/.containerenv, a container cgroup, and /dev/nvidia* nodes."""
    env = os.environ if env is None else env
    evidence = []
    for rel in (".dockerenv", "run/.containerenv"):
        if _exists(root, rel):
            evidence.append("/" + rel)
    runtime = parse_cgroup(read_text(Path(root, "proc/1/cgroup"), 8192) or "")
    if runtime:
        evidence.append(f"/proc/1/cgroup names {runtime}")
    if env.get("container"):
        # Classified, never copied: the value is whatever the environment says, and notes are shared.
        evidence.append(f"the container variable ({classify_container_variable(env['container'])})")
    try:
        nodes = tuple(sorted(e.name for e in os.scandir(Path(root, "dev")) if e.name.startswith("nvidia"))[:64])
    except OSError:
        nodes = ()
    return ContainerMarkers(bool(evidence), tuple(evidence), tuple("/dev/" + n for n in nodes),
                            env.get("NVIDIA_VISIBLE_DEVICES"))


def arch(machine: str | None = None) -> str | None:
    """x86_64 or aarch64 (the snapshot's two), from platform.machine(); None for anything else."""
    raw = (machine if machine is not None else _platform.machine()).lower()
    value = {"amd64": "x86_64", "arm64": "aarch64"}.get(raw, raw)
    return value if value in ("x86_64", "aarch64") else None


def glibc_version() -> str | None:
    """glibc's version as the C library reports it (confstr), or None on musl and elsewhere."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        value = None
    match = re.fullmatch(r"glibc (\d+\.\d+(?:\.\d+)?)", value or "")
    return match.group(1) if match else None


def parse_os_release(text: str) -> str | None:
    """'ubuntu-22.04' or 'debian-12' from /etc/os-release text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"').strip("'")
    name = fields.get("ID")
    if not name or not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", name):
        return None
    version = fields.get("VERSION_ID", "")
    if version and re.fullmatch(r"[A-Za-z0-9._-]{1,20}", version):
        return f"{name.lower()}-{version}"
    return name.lower()


_FFMPEG = re.compile(r"^ffmpeg version (\S+)", re.MULTILINE)
_FFMPEG_RELEASE = re.compile(r"^(\d+(?:\.\d+){0,2})")
_FFMPEG_LIB = re.compile(r"^\s*libavutil\s+(\d+)\.\s*(\d+)\.\s*(\d+)", re.MULTILINE)


def parse_ffmpeg_version(text: str) -> tuple[str | None, str | None]:
    """(FFmpeg release, libavutil version) from `ffmpeg -version` output.

    Distribution builds print '6.1.1-3ubuntu5' or '5.1.6-0+deb12u1' (the release is the leading
    numbers); git builds print 'N-113445-g...' and carry no release, only the library versions.
    """
    release = None
    match = _FFMPEG.search(text)
    if match and not match.group(1).startswith("N-"):
        numbers = _FFMPEG_RELEASE.match(match.group(1).removeprefix("n"))
        release = numbers.group(1) if numbers else None
    lib = _FFMPEG_LIB.search(text)
    return release, ".".join(lib.groups()) if lib else None


def read_ffmpeg_version(timeout: float = FFMPEG_TIMEOUT_S) -> tuple[str | None, str]:
    """(`ffmpeg -version` output, how it went): None when there is no ffmpeg or it misbehaved."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None, "no ffmpeg executable on PATH"
    try:
        proc = subprocess.run([exe, "-version"], capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return None, f"{exe} -version did not answer within {timeout:g} s"
    except OSError as e:
        return None, f"cannot run {exe}: {e.strerror or e}"
    text = proc.stdout[:_READ_LIMIT].decode("utf-8", "replace")
    if proc.returncode != 0:
        return None, f"{exe} -version exited {proc.returncode}"
    return text, exe
