"""A Colab or Kaggle cell: install what the plan adds to the running notebook, keeping its torch family
when the plan keeps it.

The kernel has already started, so LD_LIBRARY_PATH set now does not reach this process's loader (glibc
reads it at start-up): the cell loads each pip library the plan routes through that path with ctypes
(RTLD_GLOBAL) before ctranslate2 is imported, so ctranslate2's dlopen("libcublas.so.12") finds the loaded
copy by its soname, and sets the variable for the child processes (`!envsolve run`).
"""

from __future__ import annotations

from envsolve.render.files import Output, RenderContext, template


def render(context: RenderContext, kind: str) -> list[Output]:
    c = context.contract
    preload = [r.path for r in c.routes if r.consumer == "ctranslate2" and r.origin == "pip" and r.path]
    return [Output(f"{kind}-cell.py", template("notebook_cell.py.j2", c, platform=kind.capitalize(),
                                               preload=sorted(set(preload))))]
