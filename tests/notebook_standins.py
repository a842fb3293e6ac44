"""Stand-ins for hosted notebooks: a venv holding a platform's preinstalled torch family as PyPI provides it,
built once under a cache folder (several GB) and copied per test with hard links (a copy costs no disk and no
time; pip replaces files by unlinking, so the cached copy stays as built).

Where PyPI's build differs from the platform's: Kaggle's and Colab's torch wheels come from the PyTorch index
(`2.6.0+cu124`), PyPI's from PyPI (`2.6.0`, the same CUDA 12.4 build, its nvidia-* libraries as separate wheels
pinned by Requires-Dist); the platforms also preinstall hundreds of other packages that a stand-in leaves out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("ENVSOLVE_TEST_CACHE", Path.home() / ".cache" / "envsolve-tests"))


def standin(name: str, requirements: list[str]) -> Path:
    """The cached venv `name` holding exactly `requirements` (pinned), built on first use."""
    venv = CACHE / name
    done = venv / ".envsolve-standin"
    wanted = "\n".join(requirements) + "\n"
    if done.is_file() and done.read_text() == wanted:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *requirements], check=True, timeout=3600)
    done.write_text(wanted)
    return venv


def copy(venv: Path, to: Path) -> Path:
    """A venv of its own at `to`, sharing the cached files through hard links."""
    subprocess.run(["cp", "-al", str(venv), str(to)], check=True, timeout=600)
    (to / ".envsolve-standin").unlink()
    return to
