"""The machine envsolve runs on, read cheaply: OS, Python, glibc, driver presence, platform.

`envsolve plan` without --host uses this. It imports nothing heavy and never fails: a fact it
cannot read is left unknown.
"""

from __future__ import annotations

import os
import platform as _platform
import re
from pathlib import Path

from envsolve.resolver.host import Driver, Host, OSInfo

DRIVER_FILES = ("/proc/driver/nvidia/version", "/sys/module/nvidia/version")


def parse_proc_driver_version(text: str) -> str | None:
    """'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar 5 ...' -> '550.54.15'."""
    match = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    if match:
        return match.group(1)
    match = re.fullmatch(r"\s*(\d+\.\d+(?:\.\d+)?)\s*", text)
    return match.group(1) if match else None


def read_driver_version() -> str | None:
    for path in DRIVER_FILES:
        try:
            version = parse_proc_driver_version(Path(path).read_text(encoding="utf-8", errors="replace")[:4096])
        except OSError:
            continue
        if version:
            return version
    return None


def detect_platform(env: dict[str, str] | None = None, root: str = "/") -> str:
    """colab, kaggle, modal, sagemaker, aws-dlami, runpod, docker or bare, from cheap markers."""
    env = dict(os.environ) if env is None else env
    if "COLAB_RELEASE_TAG" in env or "COLAB_GPU" in env:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in env or "KAGGLE_URL_BASE" in env:
        return "kaggle"
    if "MODAL_TASK_ID" in env or "MODAL_ENVIRONMENT" in env:
        return "modal"
    if "SM_CURRENT_HOST" in env or "SAGEMAKER_INTERNAL_IMAGE_URI" in env or Path(root, "opt/ml/metadata").exists():
        return "sagemaker"
    if "RUNPOD_POD_ID" in env:
        return "runpod"
    if Path(root, "opt/aws/dlami").exists() or Path(root, "etc/dlami").exists():
        return "aws-dlami"
    if Path(root, ".dockerenv").exists() or Path(root, "run/.containerenv").exists():
        return "docker"
    return "bare"


def live_host() -> Host:
    """A snapshot of this machine from cheap sources (no NVML, no library scan)."""
    libc, libc_version = _platform.libc_ver()
    version = read_driver_version()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(_platform.machine().lower(), _platform.machine())
    return Host(
        os=OSInfo(system=_platform.system(), arch=machine if machine in ("x86_64", "aarch64") else None,
                  glibc=libc_version if libc == "glibc" else None),
        python=_platform.python_version(),
        platform=detect_platform(),
        gpus=() if version is None else None,
        driver=Driver(version) if version else None,
        driver_known=True,
        env={k: v for k, v in os.environ.items() if k in ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES")},
    )


__all__ = ["live_host"]
