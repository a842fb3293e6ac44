"""Stand-in base images, so rendered Dockerfiles are built and run here (test fixtures, never rendered).

Image registries are unreachable from these machines; Debian's archive is not. The stand-ins are Debian bookworm
(debootstrap, imported into Docker) tagged with the names the rendered Dockerfiles use:
- `python:3.11-slim-bookworm`: Debian's Python 3.11 with venv, linked where the official image has it.
- `nvidia/cuda:<tag>`: the same root with the ENV of NVIDIA's image (NVIDIA_REQUIRE_CUDA, CUDA_VERSION, PATH,
  LD_LIBRARY_PATH, NVIDIA_VISIBLE_DEVICES) from matrices/cuda_images.toml. The base flavour holds no CUDA library
  a pathway-B plan uses, so nothing of NVIDIA's is missing there. The runtime flavour (pathway A: ctranslate2
  loads the image's cuBLAS) gets NVIDIA's cuBLAS of the image's CUDA release from the nvidia-cublas-cu12 wheel
  (the same libraries NVIDIA's libcublas-12-x package installs, same sonames), in /usr/local/cuda-X.Y/targets/
  x86_64-linux/lib with an ld.so.conf.d entry and ldconfig, as NVIDIA's image lays them out. Debian is not
  Ubuntu (the plan's Python must be one Debian bookworm ships: 3.11).
Each carries this machine's proxy CA at a path of its own (PIP_CERT, SSL_CERT_FILE point at it: apt's
ca-certificates rewrites the system bundle). Images are labelled with a hash of their recipe and rebuilt when it
changes; they stay in the Docker engine between runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from envsolve.resolver import matrices

ROOTFS_IMAGE = "envsolve-standin/debian-bookworm"
MIRROR = "http://deb.debian.org/debian"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
CA_PATH = "/usr/local/share/envsolve-standin/ca.crt"
CACHE = Path(os.environ.get("ENVSOLVE_STANDIN_CACHE", "/var/cache/envsolve-standins"))
LABEL = "envsolve.standin.recipe"
ENV = {"DOCKER_BUILDKIT": "1"}
# Debian's client (20.10) builds with BuildKit's built-in frontend; a newer static client elsewhere on PATH may
# want the buildx plugin instead.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def docker(*args: str, timeout: float = 1800, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **ENV}, **kwargs)  # type: ignore[call-overload]
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} failed ({done.returncode}):\n{done.stdout[-4000:]}\n"
                             f"{done.stderr[-4000:]}")
    return done  # type: ignore[no-any-return]


def unavailable() -> str | None:
    """Why Docker tests cannot run here (None: they can). Starts dockerd when root and it is not running."""
    if not shutil.which(DOCKER):
        return "no docker client (scripts/setup installs docker.io as root)"
    if subprocess.run([DOCKER, "info"], capture_output=True, timeout=60).returncode == 0:
        return None
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        return "no Docker engine running, and dockerd cannot be started (needs root and docker.io)"
    with open("/tmp/envsolve-dockerd.log", "ab") as log:  # dockerd keeps its own copy of the descriptor
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    for _ in range(60):
        time.sleep(1)
        if subprocess.run([DOCKER, "info"], capture_output=True, timeout=60).returncode == 0:
            return None
    return "dockerd did not start within 60 s (see /tmp/envsolve-dockerd.log)"


def _recipe(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _current(tag: str, recipe: str) -> bool:
    done = docker("image", "inspect", "--format", f'{{{{ index .Config.Labels "{LABEL}" }}}}', tag, check=False,
                  timeout=60)
    return done.returncode == 0 and done.stdout.strip() == recipe


def rootfs_image() -> str:
    """Debian bookworm (minbase + ca-certificates) as a Docker image, debootstrapped once."""
    recipe = _recipe("debootstrap --variant=minbase --include=ca-certificates bookworm", MIRROR)
    tag = f"{ROOTFS_IMAGE}:{recipe}"
    if docker("image", "inspect", tag, check=False, timeout=60).returncode == 0:
        return tag
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as folder:
        root = Path(folder) / "rootfs"
        done = subprocess.run(["debootstrap", "--variant=minbase", "--include=ca-certificates", "bookworm", str(root),
                               MIRROR], capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([DOCKER, "import", "-", tag], stdin=tar.stdout, capture_output=True, text=True,
                                  timeout=900)
        tar.wait()
        assert imported.returncode == 0, imported.stderr
    return tag


def _python_steps() -> list[str]:
    # What python:3.11-slim-bookworm offers the rendered Dockerfile: python3.11 with venv and ensurepip.
    return ["RUN apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv "
            "&& rm -rf /var/lib/apt/lists/* && ln -s /usr/bin/python3.11 /usr/local/bin/python3 "
            "&& ln -s /usr/bin/python3.11 /usr/local/bin/python"]


def _cuda_env(tag: str) -> dict[str, str]:
    """The ENV of NVIDIA's image for this tag (dist/<cuda>/<os>/base/Dockerfile), from the matrix row."""
    cuda, *_, os_release = tag.split(":", 1)[1].split("-")
    row = matrices.load("cuda_images").one(cuda=cuda, os=os_release)
    assert row is not None, f"{tag} is not in matrices/cuda_images.toml"
    return {"NVARCH": "x86_64", "NVIDIA_REQUIRE_CUDA": str(row.get("require_cuda_full") or row["require_cuda"]),
            "CUDA_VERSION": cuda, "PATH": "/usr/local/nvidia/bin:/usr/local/cuda/bin:${PATH}",
            "LD_LIBRARY_PATH": "/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
            "NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}


# cuBLAS that NVIDIA's runtime images of a CUDA release ship (dist/<cuda>/ubuntu2204/runtime/Dockerfile
# NV_LIBCUBLAS_VERSION), as PyPI's nvidia-cublas-cu12 wheel of the same version.
RUNTIME_CUBLAS = {"12.2.2": "12.2.5.6"}


def _cublas_stages(tag: str) -> tuple[list[str], list[str]]:
    """A fetch stage on the Python stand-in that unpacks the cuBLAS wheel, and the steps that lay it out."""
    cuda = tag.split(":", 1)[1].split("-")[0]
    assert cuda in RUNTIME_CUBLAS, f"no cuBLAS recorded for the {tag} stand-in (RUNTIME_CUBLAS)"
    lib = f"/usr/local/cuda-{'.'.join(cuda.split('.')[:2])}/targets/x86_64-linux/lib"
    fetch = [f"FROM {standin('python:3.11-slim-bookworm')} AS fetch",
             "RUN python3 -m venv /v && /v/bin/pip download --no-deps -q -d /w "
             f"nvidia-cublas-cu12=={RUNTIME_CUBLAS[cuda]} && python3 -m zipfile -e /w/*.whl /x"]
    steps = [f"COPY --from=fetch /x/nvidia/cublas/lib/ {lib}/",
             f"RUN echo {lib} > /etc/ld.so.conf.d/000_cuda.conf && ldconfig"]
    return fetch, steps


def standin(tag: str) -> str:
    """Build (or reuse) the stand-in tagged `tag` (python:3.11-slim-bookworm or nvidia/cuda:...-base-...)."""
    base = rootfs_image()
    prelude: list[str] = []
    if tag.startswith("python:"):
        assert tag == "python:3.11-slim-bookworm", f"no stand-in recipe for {tag}: Debian bookworm has Python 3.11"
        steps, env = _python_steps(), {"PYTHON_VERSION": "3.11"}
    elif tag.startswith("nvidia/cuda:") and "-base-" in tag:
        steps, env = [], _cuda_env(tag)
    elif tag.startswith("nvidia/cuda:") and tag.split(":", 1)[1].split("-")[1] == "runtime":
        (prelude, steps), env = _cublas_stages(tag), _cuda_env(tag)
    else:
        raise AssertionError(f"no stand-in recipe for {tag}")
    ca_env = {"PIP_CERT": CA_PATH, "SSL_CERT_FILE": CA_PATH, "REQUESTS_CA_BUNDLE": CA_PATH, "CURL_CA_BUNDLE": CA_PATH}
    lines = [*prelude, f"FROM {base}", "COPY ca.crt " + CA_PATH, *steps,
             "ENV " + " ".join(f'{k}="{v}"' for k, v in {**env, **ca_env}.items())]
    recipe = _recipe(tag, *lines, HOST_CA.read_text())
    if _current(tag, recipe):
        return tag
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(HOST_CA, Path(folder) / "ca.crt")
        (Path(folder) / "Dockerfile").write_text("\n".join([*lines, f'LABEL {LABEL}="{recipe}"', ""]))
        docker("build", "-t", tag, folder)
    return tag
