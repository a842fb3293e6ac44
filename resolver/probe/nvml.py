"""The NVIDIA driver and GPUs: NVML first, the kernel module's files next, else "no driver".

NVML (package nvidia-ml-py, extra `probe`) gives the driver version, the newest CUDA the driver
supports (nvmlSystemGetCudaDriverVersion_v2) and every GPU's name, compute capability and memory.
Without it the kernel module still tells the driver version (/proc/driver/nvidia/version,
/sys/module/nvidia/version) and the GPU models (/proc/driver/nvidia/gpus/*/information).
A container started without a GPU is called exactly that: users (and maintainers) have read
"no CUDA GPUs are available" there as an unsupported GPU.

GPU UUIDs and serial numbers are never read: NVML's calls for them are not made, and the /proc
information file is parsed for the model line only.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envsolve.resolver.host import GPU, Driver
from envsolve.resolver.probe.platforms import ContainerMarkers, container_markers, read_text

__all__ = [
    "DRIVER_FILES",
    "DriverFacts",
    "cuda_from_int",
    "gpu_passthrough_note",
    "parse_gpu_information",
    "parse_nvml_record",
    "parse_proc_driver_version",
    "probe_driver",
    "read_nvml",
    "redact_uuids",
]

DRIVER_FILES = ("/proc/driver/nvidia/version", "/sys/module/nvidia/version")
GPU_INFO_DIR = "/proc/driver/nvidia/gpus"
_MAX_GPUS = 64
_DRIVER = re.compile(r"^\d+\.\d+(?:\.\d+)?$")
# A GPU or MIG UUID (GPU-5b3ad6d4-..., MIG-...), or an RFC 4122 UUID standing alone: all of it.
_UUID = re.compile(r"GPU-[0-9a-fA-F-]{8,}"
                   r"|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")


@dataclass(frozen=True)
class DriverFacts:
    """What the probe learned about the driver: None driver with driver_known means no driver."""

    driver: Driver | None
    gpus: tuple[GPU, ...] | None
    source: str
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------- pure parsers


def parse_proc_driver_version(text: str) -> str | None:
    """'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar 5 ...' -> '550.54.15';
    the bare '550.54.15' of /sys/module/nvidia/version too."""
    match = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)\b", text)
    if match:
        return match.group(1)
    match = re.fullmatch(r"\s*(\d+\.\d+(?:\.\d+)?)\s*", text)
    return match.group(1) if match else None


def cuda_from_int(value: Any) -> str | None:
    """NVML's CUDA version integer (1000 * major + 10 * minor) -> '12.4'; None when implausible."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1000 <= value < 100_000:
        return None
    return f"{value // 1000}.{value % 1000 // 10}"


def parse_gpu_information(text: str) -> str | None:
    """The model name from /proc/driver/nvidia/gpus/<bus>/information ('Model: NVIDIA L4')."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "Model":
            return _clean_name(value)
    return None


def _clean_name(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    name = " ".join(value.replace("\0", " ").split())[:128]
    if not name or _UUID.search(name):
        return None
    return name


def parse_nvml_record(record: Mapping[str, Any]) -> tuple[Driver | None, tuple[GPU, ...]]:
    """Turn the raw NVML reading (see read_nvml) into a Driver and GPUs, dropping what is malformed."""
    raw_version = record.get("driver")
    if isinstance(raw_version, bytes):
        raw_version = raw_version.decode("ascii", "replace")
    version = raw_version.strip() if isinstance(raw_version, str) else None
    driver = Driver(version, cuda_from_int(record.get("cuda"))) if version and _DRIVER.match(version) else None
    gpus = []
    raw_gpus = record.get("gpus")
    for raw in (raw_gpus if isinstance(raw_gpus, list | tuple) else ())[:_MAX_GPUS]:
        if not isinstance(raw, Mapping):
            continue
        name = _clean_name(raw.get("name"))
        if name is None:
            continue
        cc = raw.get("cc")
        cc_text = None
        if isinstance(cc, list | tuple) and len(cc) == 2 and all(
                isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 100 for x in cc):
            cc_text = f"{cc[0]}.{cc[1]}"
        memory = raw.get("memory_total")
        memory_mib = memory // (1 << 20) if isinstance(memory, int) and not isinstance(memory, bool) \
            and memory >= 0 else None
        gpus.append(GPU(name, cc_text, memory_mib))
    return driver, tuple(gpus)


def gpu_passthrough_note(markers: ContainerMarkers, kernel_driver: str | None) -> str | None:
    """The note for a container that has no GPU device nodes (None when that is not the case)."""
    if not markers.in_container or markers.device_nodes:
        return None
    seen = f"the host's NVIDIA kernel module {kernel_driver} is visible, but " if kernel_driver else ""
    note = (f"This is a container started without a GPU: {seen}no /dev/nvidia* device nodes were passed in "
            f"(container evidence: {', '.join(markers.evidence)}). That does not mean the GPU is unsupported. "
            "Start the container with the GPU: docker run --gpus all ... (or the platform's GPU switch), "
            "then check with nvidia-smi inside it.")
    if markers.visible_devices:
        note += (f" NVIDIA_VISIBLE_DEVICES={markers.visible_devices} is set (the image asks for GPUs), but the "
                 "NVIDIA container runtime did not attach any.")
    return note


# ---------------------------------------------------------------- I/O


def read_nvml() -> tuple[dict[str, Any] | None, str]:
    """A raw NVML reading {driver, cuda, gpus: [{name, cc, memory_total}]} and its source, or
    (None, why not). Imports pynvml only here, and never asks for UUIDs or serials."""
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py is not installed (pip install 'envsolve[probe]')"
    try:
        pynvml.nvmlInit()
    except Exception as e:  # pynvml raises NVMLError subclasses, and OSError when libnvidia-ml is broken
        return None, f"NVML: {_nvml_error(e)}"
    try:
        record: dict[str, Any] = {"driver": pynvml.nvmlSystemGetDriverVersion(), "gpus": []}
        for name in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
            try:
                record["cuda"] = getattr(pynvml, name)()
                break
            except Exception:  # older libnvidia-ml lacks _v2
                continue
        count = min(int(pynvml.nvmlDeviceGetCount()), _MAX_GPUS)
        for i in range(count):
            gpu: dict[str, Any] = {}
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                gpu["name"] = pynvml.nvmlDeviceGetName(handle)
                gpu["cc"] = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))
                gpu["memory_total"] = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
            except Exception as e:  # one lost GPU must not hide the others
                gpu["error"] = _nvml_error(e)
            record["gpus"].append(gpu)
        return record, "NVML"
    except Exception as e:
        return None, f"NVML: {_nvml_error(e)}"
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def redact_uuids(text: str) -> str:
    """`text` with every GPU UUID in it, and anything else shaped like a UUID, written <redacted>."""
    return _UUID.sub("<redacted>", text)


def _nvml_error(e: BaseException) -> str:
    return redact_uuids(str(e) or type(e).__name__)[:200]


def read_kernel_driver(files: Sequence[str] = DRIVER_FILES) -> tuple[str | None, str | None]:
    """(driver version, the file it came from) from the kernel module, cheapest file first."""
    for path in files:
        text = read_text(path, 4096)
        version = parse_proc_driver_version(text) if text else None
        if version:
            return version, path
    return None, None


def read_gpu_models(directory: str = GPU_INFO_DIR) -> list[str]:
    """GPU model names from the kernel module's per-GPU information files."""
    try:
        entries = sorted(e.path for e in os.scandir(directory))[:_MAX_GPUS]
    except OSError:
        return []
    names = []
    for entry in entries:
        text = read_text(Path(entry, "information"), 8192)
        name = parse_gpu_information(text) if text else None
        if name:
            names.append(name)
    return names


def probe_driver(env: Mapping[str, str] | None = None, root: str = "/") -> DriverFacts:
    """The driver and GPUs of this machine, with notes saying where each fact came from."""
    env = os.environ if env is None else env
    files = tuple(str(Path(root, f.lstrip("/"))) for f in DRIVER_FILES)
    kernel, kernel_file = read_kernel_driver(files)
    markers = container_markers(env, root)
    passthrough = gpu_passthrough_note(markers, kernel)
    record, how = read_nvml()
    notes: list[str] = []
    if record is not None:
        driver, gpus = parse_nvml_record(record)
        if driver is not None:
            lost = sum(1 for g in record.get("gpus", []) if "error" in g)
            if lost:
                notes.append(f"NVML could not read {lost} GPU(s); they are left out")
            return DriverFacts(driver, gpus, "NVML", tuple(notes))
        how = "NVML answered without a driver version"
    if kernel is not None and passthrough:
        # The kernel module belongs to the host; without device nodes nothing in here can use it.
        return DriverFacts(None, (), "none", (f"no NVIDIA driver reachable from inside this container ({how})",
                                              passthrough))
    if kernel is not None:
        models = read_gpu_models(str(Path(root, GPU_INFO_DIR.lstrip("/"))))
        notes.append(f"driver {kernel} from {kernel_file}; {how}, so the CUDA version the driver supports "
                     "and the compute capabilities are not read (install nvidia-ml-py for them)")
        return DriverFacts(Driver(kernel), tuple(GPU(m) for m in models) if models else None,
                           kernel_file or "kernel module", tuple(notes))
    notes.append(f"no NVIDIA driver reachable: no {' or '.join(DRIVER_FILES)}, and {how}")
    if passthrough:
        notes.append(passthrough)
    return DriverFacts(None, (), "none", tuple(notes))
