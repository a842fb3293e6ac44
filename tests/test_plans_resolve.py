"""Every plan installs: each plan that a case file, a host snapshot or a built-in example produces resolves as a
whole for its target's platform and Python from binary wheels, except the source-only dependencies the plan
itself names (plan JSON `source_builds`, matrices/source_builds.toml), which are built here first.

This asks the live registry, so it is a `network` test (scripts/check-registry, the scheduled workflow), never
part of the hermetic default run. Pins from the PyTorch index (`+cu121` builds) resolve as the same release from
PyPI: download.pytorch.org is not reachable from here, and its wheels declare the same dependencies apart from
the nvidia-* pins of their CUDA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HOSTS, case_files, load_host
from envsolve.errors import EnvsolveError
from envsolve.render.lock import platform_tags
from envsolve.resolver.host import Host, examples, read_host
from envsolve.resolver.plan import PYPI, Plan, make_plan
from envsolve.resolver.request import Request

pytestmark = pytest.mark.network


def _plans() -> list[tuple[str, Host, Request]]:
    found: list[tuple[str, Host, Request]] = []
    for path in case_files("plan"):
        case = json.loads(path.read_text())
        if "error" not in case["expect"]:
            spec = {**case["request"], "constraints": tuple(case["request"].get("constraints", ()))}
            found.append((f"case:{path.stem}", load_host(case["host"], case.get("patch")), Request(**spec)))
    for host in sorted(HOSTS.glob("*.json")):
        for workload in ("pipeline", "whisperx", "faster-whisper"):
            found.append((f"host:{host.stem}:{workload}", read_host(host), Request(workload=workload)))
    found += [(f"example:{name}", read_host(f"example:{name}"), Request()) for name in examples()]
    return found


def requirements(plan: Plan) -> list[str]:
    return [p.requirement if p.index == PYPI or not p.exact else f"{p.name}=={p.version.split('+')[0]}"
            for p in plan.pins]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source-only dependencies, built once into a find-links folder (as the target's pip would)."""
    folder = tmp_path_factory.mktemp("source-builds")
    from envsolve.resolver import matrices

    specs = [f"{r['package']}=={r['version']}" for r in matrices.load("source_builds")]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-binary", ":all:", "-w",
                    str(folder), *specs], check=True, timeout=600)
    return folder


@pytest.mark.parametrize(("label", "host", "request_"), _plans(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_plan_resolves_from_binary_wheels(label: str, host: Host, request_: Request, built: Path) -> None:
    try:
        plan = make_plan(host, request_)
    except EnvsolveError as error:
        if error.exit_code == 1:
            pytest.skip(f"{label}: no stack fits (a refusal is not a plan): {error.message.splitlines()[0]}")
        raise
    names = {b["package"] for b in plan.source_builds}
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--only-binary=:all:", "--python-version", plan.python, "--implementation", "cp",
               "--index-url", "https://pypi.org/simple", "--find-links", str(built), "--report", "-"]
    for tag in platform_tags(host.os.arch or "x86_64"):
        command += ["--platform", tag]
    # Only what this plan declares may come from the source-built folder.
    env = {**os.environ, "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": ""}
    done = subprocess.run([*command, *requirements(plan)], capture_output=True, text=True, timeout=900, env=env)
    errors = "\n".join(line for line in done.stderr.splitlines() if "WARNING: Location" not in line)
    assert done.returncode == 0, f"{label}: {' '.join(requirements(plan))}\n{errors[-2500:]}"
    installed = {item["metadata"]["name"].lower() for item in json.loads(done.stdout)["install"]}
    from_source = {name for name in installed if (built / name).exists() or any(built.glob(f"{name}-*.whl"))}
    assert from_source <= names, f"{label}: built from source but not declared by the plan: {from_source - names}"
