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
