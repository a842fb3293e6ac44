"""The rendered Colab and Kaggle cells. Hermetic: what each cell keeps, removes and says. Slow: the report's cells run
in stand-ins for the platforms (tests/notebook_standins.py: venvs holding the preinstalled torch family as PyPI
provides it). The Kaggle cell (torch 2.6.0 kept) leaves the kept packages byte for byte as before; the Colab cell
(torch 2.9 replaced for whisperx) asks for a restart, then finishes when run again; in both the stack imports in a
new process and `envsolve doctor` there reports only gpu-not-visible (no GPU here). Not run here: a notebook kernel
(the cell runs as a script; a restart is a new process), Colab's and Kaggle's secrets (absent here; the cell says
so), and download.pytorch.org's builds (PyPI's builds of the same releases stand in for them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import host_data
from envsolve.cli import main

ROOT = Path(__file__).resolve().parent.parent
# Kaggle's GPU image as the report found it: torch 2.6.0 (+cu124 there, PyPI's 2.6.0 here, the same CUDA 12.4
# build), a T4, and the faster-whisper workload.
KAGGLE = {"platform": "kaggle", "packages": {"torch": "2.6.0", "torchaudio": "2.6.0", "torchvision": "0.21.0"},
          "gpus": [{"name": "Tesla T4", "compute_capability": "7.5", "memory_mib": 15360}]}
PYPI = "https://pypi.org/simple"
COLAB_TORCH_29 = {"packages": {"torch": "2.9.0", "torchaudio": "2.9.0", "torchvision": "0.24.0"}}


def _host(tmp: Path, name: str, patch: dict[str, object]) -> str:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(host_data("colab-l4.json", patch)))
    return str(path)


def _cell(tmp: Path, kind: str, host: str, workload: str, *extra: str) -> Path:
    out = tmp / "cell"
    assert main(["render", kind, "--host", host, "--workload", workload, *extra, "-o", str(out)]) == 0
    return out / f"{kind}-cell.py"


def _names(text: str, variable: str) -> list[str]:
    line = next((x for x in text.splitlines() if x.startswith(f"{variable} = [")), f"{variable} = []")
    return [w.strip(' "') for w in line.split("[", 1)[1].rstrip("]").split(",") if w.strip(' "')]


def test_a_cell_that_keeps_torch_keeps_its_family_and_says_nothing_of_a_restart(tmp_path: Path) -> None:
    text = _cell(tmp_path, "kaggle", _host(tmp_path, "kaggle", KAGGLE), "faster-whisper").read_text()
    assert _names(text, "KEEP") == ["torch", "torchaudio", "torchvision"]  # the report's cell kept nothing
    assert "REMOVE" not in text and "replaces the runtime's torch family" not in text
    assert "UserSecretsClient().get_secret(\"HF_TOKEN\")" in text and 'MODEL = "large-v3"' in text
    compile(text, "kaggle-cell.py", "exec")


def test_a_cell_that_replaces_torch_asks_for_a_restart_and_removes_the_stray_member(tmp_path: Path) -> None:
    host = _host(tmp_path, "colab29", COLAB_TORCH_29)
    text = _cell(tmp_path, "colab", host, "whisperx").read_text()
    assert _names(text, "KEEP") == []
    assert "RESTART THE RUNTIME NOW (Runtime > Restart session), then run this cell again." in text
    assert 'userdata.get("HF_TOKEN")' in text
    compile(text, "colab-cell.py", "exec")
    pipeline = _cell(tmp_path / "p", "colab", host, "pipeline", "--replace-preinstalled").read_text()
    if "torchvision==" not in pipeline:  # the plan installs torch and torchaudio only: the old torchvision goes
        assert _names(pipeline, "REMOVE") == ["torchvision"]


def _record_hashes(site: Path, names: list[str]) -> dict[str, str]:
    """sha256 of every file the installed distributions `names` own (their RECORD), by path."""
    hashes: dict[str, str] = {}
    for dist in metadata.distributions(path=[str(site)]):
        if canonicalize_name(dist.metadata["Name"]) not in names:
            continue
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file() and "__pycache__" not in path.parts:
                hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def _kept_names(site: Path, family: list[str]) -> list[str]:
    """The family and everything it pins with ==, as installed in `site` (what the cell must not change)."""
    names = set()
    for dist in metadata.distributions(path=[str(site)]):
        if canonicalize_name(dist.metadata["Name"]) in family:
            names.add(canonicalize_name(dist.metadata["Name"]))
            for text in dist.requires or []:
                req = Requirement(text)
                if (req.marker is None or req.marker.evaluate({"extra": ""})) and any(
                        s.operator == "==" for s in req.specifier):
                    names.add(canonicalize_name(req.name))
    return sorted(names)


def _pins_for(site: Path, planned: frozenset[str] = frozenset()) -> str:
    """Exact pins (this checkout's environment's versions) for what the cell installs beyond the stand-in, so no
    new release changes what the test installs; packages the stand-in already has are the cell's to keep, and the
    plan pins its own."""
    present = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions(path=[str(site)])} | planned
    todo, pins = ["faster-whisper", "jinja2", "packaging"], {}
    while todo:
        name = canonicalize_name(todo.pop())
        if name in pins or name in present:
            continue
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return "".join(f"{n}=={v}\n" for n, v in sorted(pins.items()))



@pytest.mark.slow
def test_the_kaggle_cell_keeps_torchs_cuda_libraries_and_the_stack_imports(envsolve_wheel: Path,
                                                                         tmp_path: Path) -> None:
    import notebook_standins as standins

    base = standins.standin("kaggle-torch2.6.0", ["torch==2.6.0", "torchaudio==2.6.0", "torchvision==0.21.0"])
    venv = standins.copy(base, tmp_path / "kaggle")
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    kept = _kept_names(site, ["torch", "torchaudio", "torchvision"])
    assert "nvidia-cublas-cu12" in kept  # torch 2.6.0: Requires-Dist nvidia-cublas-cu12==12.4.5.8
    before = _record_hashes(site, kept)
    cell = _cell(tmp_path, "kaggle", _host(tmp_path, "kaggle", KAGGLE), "faster-whisper",
                 "--envsolve-spec", str(envsolve_wheel))
    text = cell.read_text()
    # ctranslate2 uses the cuBLAS the kept torch pins (12.4.5.8): the plan adds no second version of that wheel,
    # which pip would install over torch's, and the cell puts torch's folder on the loader's path.
    packages = text.split("PACKAGES = [", 1)[1].split("]", 1)[0]
    assert "ctranslate2==" in packages and "nvidia-cublas-cu12" not in packages
    assert '"$SITE_PACKAGES/nvidia/cublas/lib"' in text
    shutil.copy2(cell.parent / envsolve_wheel.name, tmp_path)  # uploaded to the working folder, as a user would
    constraints = tmp_path / "pins.txt"
    constraints.write_text(_pins_for(site))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "LD_LIBRARY"))}
    env.update(PIP_CONSTRAINT=str(constraints), PIP_DISABLE_PIP_VERSION_CHECK="1")
    ran = subprocess.run([str(python), str(cell)], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=1800)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert _record_hashes(site, kept) == before, "a kept package (or one it pins) changed"
    assert "RESTART" not in ran.stdout
    assert "no HF_TOKEN from Kaggle's secrets" in ran.stdout  # not on Kaggle: said, not a crash
    imports = subprocess.run([str(python), "-c", "import ctranslate2, faster_whisper; print(ctranslate2.__version__)"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert imports.returncode == 0 and imports.stdout.strip() == "4.8.5", imports.stderr[-2000:]
    env["LD_LIBRARY_PATH"] = str(site / "nvidia" / "cublas" / "lib")  # what the cell sets for `!envsolve run`
    doctor = subprocess.run([str(python), "-m", "envsolve", "doctor", "--workload", "faster-whisper", "--device",
                             "cuda", "--json"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert doctor.stdout, doctor.stderr[-3000:]
    findings = {f["code"] for f in json.loads(doctor.stdout)["findings"]}
    assert findings == {"gpu-not-visible"}, doctor.stdout[-3000:]


def _as_on_pypi(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with its PyTorch-index builds replaced by PyPI's of the same release (2.8.0+cu126 -> 2.8.0, PyPI's
    CUDA 12.8 build): download.pytorch.org is not reachable here. Everything else is the plan's."""
    packages = [{**p, "version": p["version"].split("+")[0], "index": PYPI} if p["index"] != PYPI else p
                for p in plan["packages"]]
    return {**plan, "packages": packages, "indexes": [PYPI]}


@pytest.mark.slow
def test_the_colab_cell_that_replaces_torch_asks_for_a_restart_then_finishes(envsolve_wheel: Path,
                                                                            tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Colab with torch 2.9 and whisperx: the plan replaces the family (whisperx 3.8.6 requires torch~=2.8.0).
    First run: the cell installs, sees torch change and asks for a restart, running nothing else; second run (the
    restarted kernel): nothing to replace, it finishes; then the stack imports and doctor passes."""
    import notebook_standins as standins

    host = _host(tmp_path, "colab29", COLAB_TORCH_29)
    capsys.readouterr()
    assert main(["plan", "--host", host, "--workload", "whisperx", "--json"]) == 0
    plan = _as_on_pypi(json.loads(capsys.readouterr().out))
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = tmp_path / "cell"
    assert main(["render", "colab", "--plan", str(tmp_path / "plan.json"), "--envsolve-spec", str(envsolve_wheel),
                 "-o", str(out)]) == 0
    cell = out / "colab-cell.py"
    shutil.copy2(out / envsolve_wheel.name, tmp_path)  # uploaded to the working folder, as a user would
    base = standins.standin("colab-torch2.9.0", ["torch==2.9.0", "torchaudio==2.9.0", "torchvision==0.24.0"])
    venv = standins.copy(base, tmp_path / "colab")
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    constraints = tmp_path / "pins.txt"
    constraints.write_text(_pins_for(site, frozenset(canonicalize_name(p["name"]) for p in plan["packages"])))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "LD_LIBRARY"))}
    env.update(PIP_CONSTRAINT=str(constraints), PIP_DISABLE_PIP_VERSION_CHECK="1")
    first = subprocess.run([str(python), str(cell)], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=2400)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "RESTART THE RUNTIME NOW (Runtime > Restart session)" in first.stdout, first.stdout[-3000:]
    assert "torch 2.9.0 -> 2.8.0" in first.stdout and "envsolve doctor" not in first.stdout
    second = subprocess.run([str(python), str(cell)], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=1800)
    assert second.returncode == 0 and "RESTART" not in second.stdout, second.stdout[-3000:] + second.stderr[-3000:]
    assert "no HF_TOKEN from Colab's secrets" in second.stdout and "ready: !envsolve run" in second.stdout
    imports = subprocess.run([str(python), "-c", "import torch, ctranslate2, faster_whisper, pyannote.audio, whisperx; "
                              "print(torch.__version__)"], capture_output=True, text=True, env=env, cwd=tmp_path,
                             timeout=600)
    assert imports.returncode == 0 and imports.stdout.strip().startswith("2.8.0"), imports.stderr[-3000:]
    env["LD_LIBRARY_PATH"] = str(site / "nvidia" / "cublas" / "lib")
    doctor = subprocess.run([str(python), "-m", "envsolve", "doctor", "--workload", "whisperx", "--device", "cuda",
                             "--json"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert doctor.stdout, doctor.stderr[-3000:]
    findings = {f["code"] for f in json.loads(doctor.stdout)["findings"]}
    assert findings == {"gpu-not-visible"}, doctor.stdout[-3000:]
