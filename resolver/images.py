"""Base images: the tags that exist (matrices/cuda_images.toml; a Debian Python image for CPU stacks), what each
provides and demands as a candidate, and the one a host plan suggests. The planner's `image` variable
(--target image) and a host plan's suggested image read the same rows through the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.version import Version

from envsolve.resolver import matrices
from envsolve.resolver.model import Candidate, Provide, Require
from envsolve.resolver.rulebook import candidate

__all__ = ["FLAVORS", "flavors_for", "image_candidate", "image_flavor", "image_rows", "image_why", "suggest_image"]


FLAVORS = ("base", "runtime", "cudnn-runtime")  # smallest first: cudart only; + cuBLAS; + cuDNN


def image_flavor(tag: str) -> str:
    """The flavour of an nvidia/cuda tag (`12.2.2-cudnn8-runtime-ubuntu22.04` -> cudnn-runtime); "" for others."""
    if not tag.startswith("nvidia/cuda:"):
        return ""
    parts = tag.split(":", 1)[1].split("-")
    return "cudnn-runtime" if len(parts) > 3 and parts[1].startswith("cudnn") else parts[1] if len(parts) > 1 else ""


def image_rows(gpu: bool, pathway: str, python: str, flavors: tuple[str, ...] | None = None
               ) -> list[tuple[str, Mapping[str, Any]]]:
    """Base images that exist, newest first and, for one CUDA and OS, smallest flavour first: nvidia/cuda tags
    (every flavour under A, whose image libraries ctranslate2 may use; base under B) or a Debian bookworm
    Python image for CPU stacks."""
    if not gpu:
        cpu = matrices.load("os_glibc").one(os="debian12")
        return [(str(cpu["image"]).format(python=python), cpu)] if cpu else []
    flavors = flavors or (FLAVORS if pathway == "A" else ("base",))
    rows: list[tuple[str, Mapping[str, Any], int]] = []
    for row in matrices.load("cuda_images"):
        if row.get("status") != "supported":
            continue
        for rank, flavor in enumerate(FLAVORS):
            if flavor not in flavors:
                continue
            if flavor == "cudnn-runtime" and "runtime" in row.get("cudnn_flavors", []):
                rows.append((f"nvidia/cuda:{row['cuda']}-{row['cudnn_tag']}-runtime-{row['os']}", row, rank))
            elif flavor != "cudnn-runtime" and flavor in row.get("flavors", []):
                rows.append((f"nvidia/cuda:{row['cuda']}-{flavor}-{row['os']}", row, rank))
    os_rank = {"ubuntu24.04": 3, "ubuntu22.04": 2}
    # For one CUDA release, an OS whose archive ships the plan's Python first (the image installs it from the
    # distribution, with no interpreter download: resolver/python_source.py), then the smallest flavour.
    rows.sort(key=lambda t: (Version(str(t[1]["cuda"])), _ships_python(str(t[1]["os"]), python),
                             os_rank.get(str(t[1]["os"]), 1), -t[2]), reverse=True)
    return [(tag, row) for tag, row, _ in rows]


def _ships_python(os_release: str, python: str) -> bool:
    row = matrices.load("os_glibc").one(os=os_release)
    return bool(row and python in (row.get("pythons") or ()))


def image_candidate(tag: str, row: Mapping[str, Any], pathway: str) -> Candidate:
    """A base image as a candidate: its OS's glibc, its cuBLAS (runtime flavours) and cuDNN (cudnn-runtime), and
    the driver its NVIDIA_REQUIRE_CUDA demands before the container may start."""
    source = str(row.get("source", ""))
    os_row = matrices.load("os_glibc").one(os=str(row.get("os", "debian12")))
    provides = [Provide("glibc", str(os_row["glibc"]))] if os_row else []
    requires: list[Require] = []
    if "cuda" in row:
        cuda = Version(str(row["cuda"]))
        flavor = image_flavor(tag)
        if pathway == "A" and flavor in ("runtime", "cudnn-runtime"):
            provides.append(Provide("lib:cublas", str(row["cuda"]), {
                "origin": "image", "major": str(cuda.major), "cuda_major": str(cuda.major),
                "path": f"/usr/local/cuda/lib64/libcublas.so.{cuda.major}"}))
            if row.get("cudnn") and flavor == "cudnn-runtime":
                provides.append(Provide("lib:cudnn", str(row["cudnn"]), {
                    "origin": "image", "major": str(row["cudnn_major"]), "cuda_major": str(cuda.major),
                    "package": str(row.get("cudnn_package", "")),
                    "path": f"/usr/lib/x86_64-linux-gnu/libcudnn.so.{row['cudnn_major']}"}))
        required = str(row.get("require_cuda", "")).removeprefix("cuda>=")
        if required:
            requires.append(Require("cuda-driver", "driver-too-old",
                                    f"{tag} sets NVIDIA_REQUIRE_CUDA=cuda>={required}; the container runtime "
                                    "refuses to start it on an older driver", source, spec=f">={required}",
                                    fix="Use an image of an older CUDA (envsolve plan --target image picks one), "
                                    "or upgrade the driver."))
    return candidate("image", tag, provides, requires, source)


IMAGE_WHY = {  # what each flavour is for: every note says what a consumer loads from the image
    "cudnn-runtime": "ctranslate2 loads cuDNN and cuBLAS from the image (pathway A)",
    "runtime": "ctranslate2 loads cuBLAS from the image (pathway A), and no consumer loads its cuDNN",
    "base": "no consumer loads a CUDA library from the image (torch's wheels bring them, and ctranslate2 gets "
            "them from pip or from what torch loaded), so the smallest flavour",
}


def image_why(tag: str) -> str:
    """"; what the flavour is for", as a note's tail ("" for a tag of no known flavour)."""
    flavor = image_flavor(tag)
    return f"; {IMAGE_WHY[flavor]}" if flavor in IMAGE_WHY else ""


def flavors_for(pathway: str, system_libraries: set[str]) -> tuple[str, ...]:
    """The flavours that serve a stack in a container, smallest first: under A, those holding the libraries
    (`cudnn`, `cublas`) ctranslate2 loads from the system and does not get from what torch already loaded."""
    if pathway != "A":
        return ("base",)
    if "cudnn" in system_libraries:
        return ("cudnn-runtime",)
    return ("runtime", "cudnn-runtime") if "cublas" in system_libraries else FLAVORS


def suggest_image(gpu: bool, pathway: str, python: str, flavors: tuple[str, ...], *, driver: str | None,
                  cuda_major: int | None, cudnn_major: int) -> tuple[str, str]:
    """The newest image of these flavours the image variable would accept for this driver, the stack's CUDA
    major and (under A) ctranslate2's cuDNN major, with the note that says why; the CPU image when no component
    runs on the GPU; ("", why not) when none fits."""
    rows = image_rows(gpu, pathway, python, flavors)
    if not gpu:
        return (rows[0][0], "CPU image: Debian bookworm (glibc 2.36 < 2.41)") if rows else ("", "")
    for tag, row in rows:
        required = str(row.get("require_cuda", "")).removeprefix("cuda>=")
        if driver and required and Version(required) > Version(driver):
            continue  # NVIDIA_REQUIRE_CUDA would refuse to start on this driver
        if cuda_major and Version(str(row["cuda"])).major != cuda_major:
            continue
        if pathway == "A" and cudnn_major and row.get("cudnn_major") != cudnn_major:
            continue
        return tag, f"base image {tag}{image_why(tag).replace(';', ':', 1)}; its NVIDIA_REQUIRE_CUDA fits the driver"
    return "", "no supported nvidia/cuda tag fits this driver and CUDA major (matrices/cuda_images.toml)"
