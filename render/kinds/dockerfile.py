"""Dockerfile for pathway A (the base image's cuDNN) or B (CUDA libraries from pip wheels).

Multi-stage: the build stage makes /opt/venv from the lock with the same shell partial the install script
runs (templates/_install.sh.j2), the runtime stage copies it onto the plan's base image, runs as a non-root
user and checks itself with `envsolve doctor` at build time, so an image whose libraries do not resolve
fails to build. A builder has no GPU: the doctor there ignores only `gpu-not-visible`.
"""

from __future__ import annotations

# The model `envsolve run` defaults to on the plan's device: the pipeline's own table (envsolve.pipeline.asr
# imports faster-whisper lazily, so this loads none of it).
from envsolve.pipeline.asr import DEFAULT_MODELS
from envsolve.render.files import NotApplicable, Output, RenderContext, header, template

VENV = "/opt/venv"
# When the image's distribution has no package of the plan's Python (resolver/python_source.py), uv installs a
# python-build-standalone CPython of that X.Y (the newest patch this uv release knows, so pinning uv pins the
# interpreter). uv comes from PyPI, checked by hash, through the distribution's python3 -m venv: the build needs
# only the package index and the distribution's archive (no ghcr.io image). The sha256 of each Linux wheel of
# uv 0.9.28, from PyPI's simple index (PEP 691 JSON) on 2026-12-07; tests/test_render_lock.py (network) re-reads them.
UV_VERSION = "0.9.28"
UV_HASHES = ("7b8460a2b624d8ab27cb293a2c9f2393f9efc4e36e0fb886a6c2360e23fb48be",  # manylinux_2_17_x86_64
             "cbfa56c833caa37b1f14166327fcaf8aa87290451406921eb07296ffef17fef1",  # musllinux_1_1_x86_64
             "3798c486ec627bbd7ca41fa219e997ad403b1f803371edf5c8e75893e46161ba",  # manylinux_2_28_aarch64
             "4d479a1d387b1464ad2c1f960b0b26a9ac1dfba67ea2c6789e9643fe6d1e7b9a")  # manylinux_2_17_aarch64
PYTHON_HOME = "/opt/python"
# Models the optional prefetch downloads; BuildKit passes the token as a secret file, never ARG or ENV.
DIARIZATION_MODELS = {"4": "pyannote/speaker-diarization-community-1", "3": "pyannote/speaker-diarization-3.1"}


def render(context: RenderContext, kind: str) -> list[Output]:
    c = context.contract
    if not c.base_image:
        raise NotApplicable("the plan names no base image (no nvidia/cuda tag fits this driver and CUDA major)")
    pyannote = next((p.version for p in c.packages if p.name in ("pyannote-audio", "pyannote.audio")), "")
    diarization = DIARIZATION_MODELS.get(pyannote.split(".")[0], "") if c.workload != "faster-whisper" else ""
    # The build context holds only what the build copies (.dockerignore keeps everything else out).
    context_files = ["requirements.lock", "requirements-index.txt", *([c.envsolve_wheel] if c.envsolve_wheel else [])]
    dockerfile = template(
        "Dockerfile.j2", c, venv=VENV, site=f"{VENV}/lib/python{c.python}/site-packages", uv_version=UV_VERSION,
        uv_hashes=UV_HASHES, python_home=PYTHON_HOME, os_release=c.base_image.rsplit("-", 1)[-1],
        python_bin=f"{PYTHON_HOME}/bin/python{c.python}" if c.python_source == "uv" else f"python{c.python}",
        whisper_model="" if c.workload == "diarization" else DEFAULT_MODELS[c.doctor_device],
        diarization_model=diarization, apt=_apt(context),
        with_ray=context.with_ray,
        # COPY of a glob matching nothing is no error: requirements-index.txt exists only for an unreachable index.
        context_files=" ".join(f.replace(".txt", ".tx[t]") if f == "requirements-index.txt" else f
                               for f in context_files),
        envsolve_install=f"/tmp/envsolve/{c.envsolve_wheel}" if c.envsolve_wheel else c.envsolve_spec)
    ignore = header(c) + "\n# Only what the build copies goes into the build context.\n*\n" + "".join(
        f"!{f}\n" for f in context_files)
    return [Output("Dockerfile", dockerfile), Output(".dockerignore", ignore)]


def _apt(context: RenderContext) -> list[str]:
    """Debian packages the runtime stage needs: FFmpeg when torchcodec decodes, what Ray's launcher runs."""
    from envsolve.render.kinds.ray import CONTAINER_PACKAGES

    return sorted({*(["ffmpeg"] if context.contract.decodes_with_torchcodec else []),
                   *(CONTAINER_PACKAGES if context.with_ray else ())})
