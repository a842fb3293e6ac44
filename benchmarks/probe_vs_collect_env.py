"""Time `envsolve probe --json` against `python -m torch.utils.collect_env`, each in a fresh process.

collect_env needs torch. When the running interpreter cannot import it, this script makes (once)
its own venv at benchmarks/.venv-collect-env with `pip install torch==2.13.0`; the venv marks
itself ignored for git with a `.gitignore` of `*`.

Facts counted: for the probe, every leaf value in the snapshot JSON (one per library field, GPU
field, package, loader link field...); for collect_env, every "key: value" line with a value
that is not "N/A"/"None"/"Could not collect", plus every listed package line.

Usage: python benchmarks/probe_vs_collect_env.py [--runs N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-collect-env"
TORCH = "torch==2.13.0"


def torch_python() -> str:
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        (VENV / ".gitignore").write_text("*\n")
    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", TORCH], check=True)
    return str(python)


def timed(argv: list[str], runs: int) -> tuple[list[float], str]:
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy())
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        out = proc.stdout
    return times, out


def count_leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(count_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_leaves(v) for v in value) if value else 0
    return 0 if value is None else 1


def count_collect_env(text: str) -> int:
    facts = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        _key, sep, value = line.partition(":")
        known = sep and value.strip() not in ("", "N/A", "None", "Could not collect")
        if known or line.startswith(("[pip3]", "[conda]")):
            facts += 1
    return facts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    envsolve = [sys.executable, "-m", "envsolve", "probe", "--json"]
    collect = [torch_python(), "-m", "torch.utils.collect_env"]
    probe_times, probe_out = timed(envsolve, args.runs)
    collect_times, collect_out = timed(collect, args.runs)
    probe_facts = count_leaves(json.loads(probe_out))
    collect_facts = count_collect_env(collect_out)
    p, c = statistics.median(probe_times), statistics.median(collect_times)
    print(f"envsolve probe --json:           median {p:.2f} s over {args.runs} runs, {probe_facts} facts")
    print(f"python -m torch.utils.collect_env: median {c:.2f} s over {args.runs} runs, "
          f"{collect_facts} facts")
    print(f"ratio: the probe takes {p / c:.0%} of collect_env's time ({c / p:.1f}x faster), "
          f"and reports {probe_facts / max(collect_facts, 1):.1f}x the facts")
    print(f"collect_env ran with {collect[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
