"""Where a base image gets the plan's Python: the image's own, the distribution's, or uv's download.

nvidia/cuda images carry no Python. The distribution's package (python3.X and python3.X-venv) is the smallest
and needs only the distribution's archive, so it is used when the image's OS release ships the plan's X.Y
(matrices/os_glibc.toml `pythons`); otherwise uv, itself installed from PyPI by hash, downloads a standalone
CPython. The plan records the choice, so the rendered Dockerfile and what a reader of the plan sees agree.
"""

from __future__ import annotations

from envsolve.resolver import matrices

__all__ = ["python_source"]


def python_source(image: str, python: str) -> dict[str, str]:
    """{"kind": "image" | "distribution" | "uv", "os": ...} for this base image and Python X.Y ({} for no image)."""
    if not image:
        return {}
    if image.startswith("python:"):
        return {"kind": "image"}
    os_release = image.rsplit("-", 1)[-1]  # nvidia/cuda:12.4.1-base-ubuntu22.04 -> ubuntu22.04
    row = matrices.load("os_glibc").one(os=os_release)
    if row and python in (row.get("pythons") or ()):
        return {"kind": "distribution", "os": os_release}
    return {"kind": "uv", "os": os_release}
