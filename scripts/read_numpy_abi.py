"""Which NumPy C API a package's native extensions import, read from PyPI's wheels (matrices/numpy_abi.toml).

    .venv/bin/python scripts/read_numpy_abi.py torch:2.2.2 torch:2.3.0 torchaudio:2.2.2

A module built with NumPy 2 headers imports numpy._core._multiarray_umath (falling back to numpy.core); one
built with NumPy 1.x headers names only numpy.core._multiarray_umath and refuses NumPy 2 at import. The cp311
manylinux x86_64 wheel is read by HTTP range requests (torch: only torch/lib/libtorch_python.so).
"""

from __future__ import annotations

import re
import sys

from envsolve.derive._http import Fetcher
from envsolve.derive._index import Index
from envsolve.derive._wheel import RemoteWheel

NEW, OLD = b"numpy._core._multiarray_umath", b"numpy.core._multiarray_umath"


def main(argv: list[str]) -> int:
    fetcher = Fetcher()
    index = Index(fetcher)
    for arg in argv:
        project, _, version = arg.partition(":")
        dist = next((d for d in index.files(project) if d.is_wheel and str(d.version) == version
                     and "cp311" in d.filename and "x86_64" in d.filename and "manylinux" in d.filename), None)
        if dist is None:
            print(f"{project} {version}: no cp311 manylinux x86_64 wheel")
            continue
        wheel = RemoteWheel(fetcher, dist)
        objects = [n for n in wheel.names() if re.search(r"\.so(\.|$)", n)]
        if project == "torch":
            objects = [n for n in objects if n.endswith("libtorch_python.so")]
        hits = []
        for name in objects:
            with wheel.extracted(name) as f:
                data = f.read()
            if NEW in data or OLD in data:
                hits.append(f"{name}: " + ("numpy._core (NumPy 2 headers)" if NEW in data
                                           else "numpy.core only (NumPy 1.x headers)"))
        print(f"{project} {version} {dist.filename} sha256 {dist.sha256}: "
              + ("; ".join(hits) or f"no NumPy C-API import in {len(objects)} shared objects"), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
