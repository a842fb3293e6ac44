"""Dockerfile for pathway A (the base image's cuDNN) or B (CUDA libraries from pip wheels).

Multi-stage: the build stage makes /opt/venv from the lock with the same shell partial the install script
runs (templates/_install.sh.j2), the runtime stage copies it onto the plan's base image, runs as a non-root
user and checks itself with `envsolve doctor` at build time, so an image whose libraries do not resolve
fails to build. A builder has no GPU: the doctor there ignores only `gpu-not-visible`.
"""

from __future__ import annotations

from envsolve.render.files import NotApplicable, Output, RenderContext, template

VENV = "/opt/venv"
# nvidia/cuda images carry no Python: uv installs a python-build-standalone CPython of the plan's X.Y (the
# newest patch this uv release knows, so pinning uv pins the interpreter). Tag scheme: docs.astral.sh/uv/guides/
# integration/docker ("ghcr.io/astral-sh/uv:{major}.{minor}.{patch}"); the 0.9.28 digest as Renovate recorded it
# in github.com/yxtay/python-example-app pull 864 (FROM ghcr.io/astral-sh/uv:0.9.28@sha256:59240a65...).
UV_IMAGE = "ghcr.io/astral-sh/uv:0.9.28@sha256:59240a65d6b57e6c507429b45f01b8f2c7c0bbeee0fb697c41a39c6a8e3a4cfb"
PYTHON_HOME = "/opt/python"
# Models the optional prefetch downloads; BuildKit passes the token as a secret file, never ARG or ENV.
WHISPER_MODEL = "Systran/faster-whisper-large-v3"
DIARIZATION_MODELS = {"4": "pyannote/speaker-diarization-community-1", "3": "pyannote/speaker-diarization-3.1"}


def render(context: RenderContext, kind: str) -> list[Output]:
    c = context.contract
    if not c.base_image:
        raise NotApplicable("the plan names no base image (no nvidia/cuda tag fits this driver and CUDA major)")
    has_python = c.base_image.startswith("python:")
    pyannote = next((p.version for p in c.packages if p.name in ("pyannote-audio", "pyannote.audio")), "")
    diarization = DIARIZATION_MODELS.get(pyannote.split(".")[0], "") if c.workload != "faster-whisper" else ""
    return [Output("Dockerfile", template(
        "Dockerfile.j2", c, venv=VENV, site=f"{VENV}/lib/python{c.python}/site-packages", uv_image=UV_IMAGE,
        uv_python=not has_python, python_home=PYTHON_HOME,
        python_bin=f"python{c.python}" if has_python else f"{PYTHON_HOME}/bin/python{c.python}",
        whisper_model="" if c.workload == "diarization" else WHISPER_MODEL, diarization_model=diarization,
        apt=c.decodes_with_torchcodec)),
        Output(".dockerignore", "# Only the lock files go into the build context.\n*\n!requirements.lock\n"
               "!requirements-index.txt\n")]
