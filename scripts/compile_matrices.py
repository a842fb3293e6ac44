"""Write matrices/compiled/*.json from matrices/*.toml (resolver/compiled.py says why), or --check that they are
current. Run it with the checkout's envsolve installed (scripts/setup does): python scripts/compile_matrices.py"""

from __future__ import annotations

import sys
from pathlib import Path

from envsolve.resolver import compiled

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    folder = ROOT / "matrices"
    if "--check" in sys.argv:
        found = compiled.stale(folder)
        for line in found:
            print(f"matrices/{line}: run {compiled.REGENERATE}")
        return 1 if found else 0
    for path in compiled.compile_folder(folder):
        print(f"wrote {path.relative_to(ROOT)}" if path.exists() else f"removed {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
