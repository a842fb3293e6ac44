"""How long `envsolve plan` takes from a fresh process, and what it imports.

Prints wall times for `envsolve --version`, `plan` from a snapshot file, on this machine and on each built-in
example host, the ratio to a bare `python -c pass`, and whether any heavy library was imported.
Run: python benchmarks/plan_startup.py

Byte code is written and used (PYTHONDONTWRITEBYTECODE is dropped from the children's environment), as an
installed wheel's is: otherwise every run would compile envsolve's sources again and time that instead.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from envsolve.resolver.host import examples

RUNS = 7
SNAPSHOT = Path(__file__).resolve().parent.parent / "tests" / "hosts" / "colab-l4.json"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(args: list[str]) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of a fresh process: on a shared machine the CPU time is the
    steadier figure, since waiting for a core counts in the wall time only."""
    subprocess.run(args, capture_output=True, check=False, env=ENV)  # writes the byte code, warms the file cache
    walls, cpus = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, capture_output=True, check=False, env=ENV)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    py = sys.executable
    base = timed([py, "-c", "pass"])
    rows = [("python -c pass", base), ("envsolve --version", timed([py, "-m", "envsolve", "--version"])),
            (f"envsolve plan --host {SNAPSHOT.name}", timed([py, "-m", "envsolve", "plan", "--host", str(SNAPSHOT),
                                                            "--json"])),
            ("envsolve plan (this machine)", timed([py, "-m", "envsolve", "plan", "--json"]))]
    rows += [(f"envsolve plan --host example:{e}", timed([py, "-m", "envsolve", "plan", "--host", f"example:{e}",
                                                         "--json"])) for e in examples()]
    print(f"median of {RUNS} fresh processes each: wall time, CPU time, and each as a multiple of python -c pass's")
    for name, (wall, cpu) in rows:
        print(f"  {name:45s} {wall * 1000:6.0f} ms {wall / base[0]:5.1f}x"
              f"   cpu {cpu * 1000:6.0f} ms {cpu / base[1]:5.1f}x")
    code = ("import sys, envsolve.cli as c; c.main(['plan', '--host', 'example:colab-l4', '--json']);"
            "print([m for m in ('torch','faster_whisper','pyannote','ctranslate2','av','numpy','jinja2')"
            " if m in sys.modules], file=sys.stderr)")
    heavy = subprocess.run([py, "-c", code], capture_output=True, text=True, env=ENV).stderr.strip()
    print(f"  heavy modules imported by plan: {heavy}")


if __name__ == "__main__":
    main()
