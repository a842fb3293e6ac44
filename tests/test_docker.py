"""Rendered Dockerfiles built and run here: the first use of envsolve (Dockerfiles generated in CI) executed,
not linted. Base images come from tests/standins.py (Debian stand-ins tagged with the names the files use).

- The CPU plan (faster-whisper): `docker build` the rendered folder (its build-time doctor runs in the build),
  then `docker run --network none` the image on the sample with the tiny.en model mounted; the transcript must
  hold the sample's words.
- GPU plans (pathway B for the CUDA 12 and CUDA 13-driver example hosts, and pathway A, where ctranslate2 loads
  the runtime image's cuBLAS; Python 3.11): built on nvidia/cuda stand-ins through the build-time doctor;
  `envsolve doctor` inside the container reports only `gpu-not-visible`.
What is not exercised: a real GPU, NVIDIA's and Docker Hub's real images (Ubuntu, not Debian).

The locks are the committed ones under tests/data/render (real resolutions; tests/test_render_lock.py redoes
them against the registry): rendering the Dockerfile beside a current lock keeps it, so no resolution runs
here. The images' pip installs from PyPI by hash.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TINY_MODEL
from envsolve.cli import main

import standins

pytestmark = [pytest.mark.docker, pytest.mark.slow]
DATA = Path(__file__).parent / "data" / "render"
SAMPLE = Path(__file__).resolve().parent.parent / "envsolve" / "data"
IMAGES = ("cpu-faster-whisper", "cuda12-b-faster-whisper", "cuda13-l4-faster-whisper", "cuda12-a-faster-whisper")


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    why = standins.unavailable()
    if why and os.environ.get("CI") == "true" and shutil.which("dockerd"):
        pytest.fail(f"Docker is installed but cannot run: {why}")  # in CI a broken engine is a failure
    if why:
        pytest.skip(f"Docker: {why}")
    yield
    # Each run's images differ (a new wheel per commit): drop them and cap the build cache, so repeated runs
    # (and CI on a machine whose disk the session shares) do not pile up tens of GB of layers.
    for name in IMAGES:
        standins.docker("image", "rm", "-f", f"envsolve-test/{name}", check=False, timeout=120)
    standins.docker("image", "prune", "-f", check=False, timeout=300)
    standins.docker("builder", "prune", "-f", "--keep-storage", "4GB", check=False, timeout=300)


def _render(name: str, tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """The Dockerfile of the committed plan `name`, rendered beside its committed lock."""
    out = tmp_path / name
    shutil.copytree(DATA / name, out)
    plan = DATA / f"{name}.plan.json"
    assert main(["render", "dockerfile", "--plan", str(plan), "-o", str(out)]) == 0
    assert (out / "envsolve-0.1.0-py3-none-any.whl").is_file()
    return out, json.loads(plan.read_text())


def _build(folder: Path, tag: str, base: str) -> str:
    """Build the folder; the image's history (its layers' commands, each a step that succeeded, cached or
    not) so a test can see that the build-time doctor ran and passed."""
    standins.standin(base)
    standins.docker("build", "-t", tag, str(folder), timeout=2400)
    return standins.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag, timeout=60).stdout


def test_the_cpu_image_builds_and_transcribes_the_sample_offline(engine: None, tmp_path: Path) -> None:
    if not TINY_MODEL:
        pytest.skip("the tiny.en model (demo-model extra) is not installed")
    folder, plan = _render("cpu-faster-whisper", tmp_path)
    log = _build(folder, "envsolve-test/cpu-faster-whisper", str(plan["base_image"]))
    assert "doctor --workload faster-whisper --device cpu" in log  # the build-time doctor ran and passed
    out = tmp_path / "transcripts"
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the image runs as uid 10001
    done = standins.docker(
        "run", "--rm", "--network", "none", "-v", f"{TINY_MODEL}:/models/tiny.en:ro", "-v", f"{SAMPLE}:/in:ro",
        "-v", f"{out}:/out", "-e", "WHISPER_MODEL=/models/tiny.en", "envsolve-test/cpu-faster-whisper",
        "/in/two-speakers.flac", "-o", "/out", "--no-diarize", "--progress", "none", timeout=600)
    assert "WHISPER_MODEL" in done.stdout + done.stderr  # the run says where its model came from
    text = (out / "two-speakers.txt").read_text().lower()
    expected = (SAMPLE / "two-speakers.txt").read_text().lower()
    assert text.strip() and any(word in text for word in expected.split() if len(word) > 5), text


@pytest.mark.parametrize(("name", "pathway"), [("cuda12-b-faster-whisper", "B"), ("cuda13-l4-faster-whisper", "B"),
                                              ("cuda12-a-faster-whisper", "A")])
def test_gpu_images_build_through_their_doctor_and_only_the_gpu_is_missing(engine: None, tmp_path: Path,
                                                                          name: str, pathway: str) -> None:
    if not (DATA / f"{name}.plan.json").is_file():
        pytest.fail(f"tests/data/render/{name}.plan.json is missing")
    folder, plan = _render(name, tmp_path)
    assert plan["pathway"] == pathway and plan["python"] == "3.11"
    tag = f"envsolve-test/{name}"
    log = _build(folder, tag, str(plan["base_image"]))
    assert "--ignore gpu-not-visible" in log
    doctor = subprocess.run([standins.DOCKER, "run", "--rm", "--network", "none", "--entrypoint", "envsolve", tag,
                             "doctor", "--device", "cuda", "--json"], capture_output=True, text=True, timeout=300)
    report = json.loads(doctor.stdout)
    codes = sorted({f["code"] for f in report["findings"]})
    assert codes == ["gpu-not-visible"], doctor.stdout[-3000:]


def test_the_uv_branch_installs_uv_from_pypi_by_hash_as_far_as_this_network_allows(engine: None,
                                                                                   tmp_path: Path) -> None:
    """A Python no OS release of the image ships (3.13 on Ubuntu 22.04): uv comes from PyPI through the
    distribution's python3 -m venv, checked by hash, and installs CPython from GitHub, which is unreachable here;
    the build runs the rendered steps up to that download and the download fails for the network's reason only."""
    from envsolve.cli import build_parser
    from envsolve.commands.render import render_context
    from envsolve.render.files import render_kinds, write_outputs

    out = tmp_path / "uv"
    args = build_parser().parse_args(["render", "dockerfile", "--host", "example:aws-dlami-a10g", "--python", "3.13",
                                      "--workload", "faster-whisper", "-o", str(out)])
    context = render_context(args)
    assert context.contract.python_source == "uv"
    outputs, _ = render_kinds(["dockerfile"], context, with_needs=False)
    write_outputs(out, outputs)
    rendered = (out / "Dockerfile").read_text()
    # The rendered build stage up to uv's CPython download, then what this network allows to be checked.
    head = rendered[:rendered.index("ENV UV_PYTHON_INSTALL_DIR")]
    (out / "Dockerfile").write_text(head + "RUN /opt/uv-tool/bin/uv --version\n"
                                   "RUN /opt/uv-tool/bin/uv python install 3.13 || echo UV-PYTHON-DOWNLOAD-FAILED\n")
    base = rendered.split("FROM ", 1)[1].split()[0]
    standins.standin(base)
    done = standins.docker("build", "--no-cache", "--progress", "plain", str(out), timeout=1200)
    log = done.stdout + done.stderr
    assert "uv 0.9.28" in log  # installed from PyPI, every file checked against the hashes the Dockerfile names
    assert "UV-PYTHON-DOWNLOAD-FAILED" in log and "github" in log.lower()  # the one step this network cannot take
