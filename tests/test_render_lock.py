"""The lock really resolves for its target (network: pip against the live registry; scripts/check-registry).

For built-in example hosts and the committed fixture plans, `render lock` asks pip for the target's platform
and Python, binary wheels only; every pin of the plan is in the lock (or, from an unreachable index, in
requirements-index.txt), every hashed line has a sha256, and the committed fixture locks are re-made with the
same pins of the plan's packages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envsolve.cli import main

pytestmark = pytest.mark.network
DATA = Path(__file__).parent / "data" / "render"


@pytest.mark.parametrize("args", [["--host", "example:colab-l4"], ["--host", "example:cuda13-l4"],
                                  ["--host", "tests/hosts/gh200-aarch64.json", "--workload", "faster-whisper"],
                                  ["--plan", str(DATA / "cpu-faster-whisper.plan.json")],
                                  ["--plan", str(DATA / "cuda13-l4-faster-whisper.plan.json")]])
def test_the_lock_resolves_for_its_target(args: list[str], tmp_path: Path) -> None:
    assert main(["render", "lock", "requirements", *args, "-o", str(tmp_path)]) == 0
    lock = (tmp_path / "requirements.lock").read_text()
    index = tmp_path / "requirements-index.txt"
    both = lock + (index.read_text() if index.exists() else "")
    names = re.findall(r"^([A-Za-z0-9._-]+)==", lock, re.M)
    assert len(names) == len(re.findall(r"--hash=sha256:[0-9a-f]{64}", lock)) or "--no-binary" in lock
    for line in (tmp_path / "requirements.in").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            assert re.search(rf"^{re.escape(name)}=={re.escape(version.split('+')[0])}", both, re.M | re.I), line


def test_a_kind_alone_writes_the_lock_it_reads_with_envsolves_own_dependencies(tmp_path: Path) -> None:
    """`render script` into an empty folder: install.sh reads requirements.lock, so the lock is resolved with it;
    a Python 3.10 target (Ubuntu 22.04's, the DLAMI example) gets tomli, which envsolve needs there."""
    assert main(["render", "script", "--host", "example:aws-dlami-a10g", "--python", "3.10", "--workload",
                 "faster-whisper", "-o", str(tmp_path)]) == 0
    lock = (tmp_path / "requirements.lock").read_text()
    for name in ("jinja2", "packaging", "tomli", "pip"):
        assert re.search(rf"^{name}==", lock, re.M), name
    assert (tmp_path / "install.sh").is_file() and list(tmp_path.glob("envsolve-*.whl"))


def test_the_uv_wheel_hashes_are_pypis() -> None:
    """The Dockerfile's uv pin (render/kinds/dockerfile.py) against PyPI's simple index (PEP 691 JSON)."""
    import json
    import urllib.request

    from envsolve.render.kinds.dockerfile import UV_HASHES, UV_VERSION

    request = urllib.request.Request("https://pypi.org/simple/uv/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    linux = {f["hashes"]["sha256"] for f in files if f["filename"].startswith(f"uv-{UV_VERSION}-")
             and ("x86_64" in f["filename"] or "aarch64" in f["filename"]) and "linux" in f["filename"]}
    assert set(UV_HASHES) <= linux and len(UV_HASHES) >= 2
