"""What a cloud platform must rent for a plan: a Modal GPU type or an EC2 instance type, from matrices/cloud_gpus.toml.

A plan is made for one machine's GPU. On Modal or the Ray cluster launcher the rendered file names what to rent:
the plan's own GPU when the platform has it, else the smallest one with at least its compute capability (the
plan's builds and compute type were chosen for that) and its memory (the models were sized for that). A GPU plan
must always rent a GPU: a missing `gpu=` silently runs the CUDA stack on a CPU container.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import Version

from envsolve.resolver import matrices

__all__ = ["Rental", "gpu_model", "rent"]

PLATFORMS = {"modal": "Modal", "aws": "AWS"}


@dataclass(frozen=True)
class Rental:
    name: str  # the platform's name for it: Modal's gpu= string, an EC2 instance type
    gpu: str  # the GPU (a row name of matrices/gpus.toml)
    gpus: int  # GPUs in one container or instance
    memory_gb: int
    exact: bool  # the plan's own GPU
    why: str  # one line for the rendered file's comment


def gpu_model(name: str) -> str:
    """The gpus.toml row a GPU name matches (longest pattern wins: A10 vs A100), or ""."""
    best = (0, "")
    for row in matrices.load("gpus"):
        for pattern in row.get("match", [row["name"]]):
            if pattern.lower() in name.lower() and len(pattern) > best[0]:
                best = (len(pattern), str(row["name"]))
    return best[1]


def _needed_gb(memory_mib: int) -> int:
    # Vendors state nominal sizes (an L4 is "24 GB"); NVML reports what the driver leaves usable (23034 MiB), a
    # little less. Rounding the reported size to whole GiB compares the two on one scale.
    return round(memory_mib / 1024)


def rent(platform: str, *, arch: str, model: str, cc: str, memory_mib: int) -> Rental | None:
    """The GPU `platform` should rent for a plan made for `model` (cc, memory), or None when it rents none that fits."""
    rows = [r for r in matrices.load("cloud_gpus") if r["platform"] == platform and r["arch"] == arch]
    need = _needed_gb(memory_mib)
    own = sorted((r for r in rows if r["gpu"] == model and int(r["memory_gb"]) >= need),
                 key=lambda r: (int(r["memory_gb"]), int(r["gpus"])))
    if own:
        return _rental(own[0], True, "the plan's own GPU")
    if not cc and not memory_mib:
        if not rows:
            return None
        smallest = min(rows, key=lambda r: (Version(str(r["cc"])), int(r["memory_gb"]), int(r["gpus"])))
        return _rental(smallest, False, "the plan names no GPU model, compute capability or memory: the smallest "
                       "type; choose another if your models need more")
    fits = [r for r in rows if Version(str(r["cc"])) >= Version(cc or "0") and int(r["memory_gb"]) >= need]
    if not fits:
        return None
    best = min(fits, key=lambda r: (Version(str(r["cc"])), int(r["memory_gb"]), int(r["gpus"])))
    wanted = f"compute capability {cc or 'unknown'}" + (f" and {need} GB" if need else "")
    return _rental(best, False, f"{PLATFORMS[platform]} rents no {model or 'such GPU'}; the nearest type with at least "
                   f"its {wanted}")


def _rental(row: matrices.Row, exact: bool, why: str) -> Rental:
    count = int(row["gpus"])
    per_node = f", {count} GPUs" if count > 1 else ""
    return Rental(str(row["name"]), str(row["gpu"]), count, int(row["memory_gb"]), exact,
                  f"{row['name']}: {why} ({row['gpu']}, compute capability {row['cc']}, {row['memory_gb']} GB"
                  f"{per_node})")
