"""How long `envsolve plan` takes from a fresh process, and what it imports.

Prints wall times for `envsolve --version`, `plan` on this machine and on each built-in example host, the
ratio to a bare `python -c pass`, and whether any heavy library was imported. Run: python benchmarks/plan_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 7
EXAMPLES = ("colab-l4", "aws-dlami-a10g", "cuda13-l4", "rtx5090")


def timed(args: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(args, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    py = sys.executable
    base = timed([py, "-c", "pass"])
    rows = [("python -c pass", base), ("envsolve --version", timed([py, "-m", "envsolve", "--version"])),
            ("envsolve plan (this machine)", timed([py, "-m", "envsolve", "plan", "--json"]))]
    rows += [(f"envsolve plan --host example:{e}", timed([py, "-m", "envsolve", "plan", "--host", f"example:{e}",
                                                         "--json"])) for e in EXAMPLES]
    print(f"median of {RUNS} fresh processes each")
    for name, seconds in rows:
        print(f"  {name:45s} {seconds * 1000:7.0f} ms   {seconds / base:5.1f}x python startup")
    code = ("import sys, envsolve.cli as c; c.main(['plan', '--host', 'example:colab-l4', '--json']);"
            "print([m for m in ('torch','faster_whisper','pyannote','ctranslate2','av','numpy','jinja2')"
            " if m in sys.modules], file=sys.stderr)")
    heavy = subprocess.run([py, "-c", code], capture_output=True, text=True).stderr.strip()
    print(f"  heavy modules imported by plan: {heavy}")


if __name__ == "__main__":
    main()
