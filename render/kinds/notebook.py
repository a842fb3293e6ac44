"""A Colab or Kaggle cell: install what the plan adds to the running notebook without changing what it keeps.

Kept: the preinstalled torch family the plan builds on (everything of it the plan does not install), and every
package those pin with == (torch pins its nvidia-* CUDA libraries), each at the version the runtime has: the cell
reads them from the installed metadata when it runs, so a plan pin that would replace one (nvidia-cublas-cu12
12.8.4.1 over the 12.4.5.8 torch 2.6.0 pins) is left out and said so. When the plan replaces the family instead,
the cell sees the versions change and asks for a restart before anything else runs: a torch replaced under a live
kernel crashes at its next import; a preinstalled member of the family that the plan does not install is removed
then (it was built for the torch replaced).

The kernel has already started, so LD_LIBRARY_PATH set now does not reach this process's loader (glibc reads it
at start-up): the cell loads each pip library the plan routes through that path with ctypes (RTLD_GLOBAL) before
ctranslate2 is imported, so ctranslate2's dlopen("libcublas.so.12") finds the loaded copy by its soname, and sets
the variable for the child processes (`!envsolve run`). The model is a variable at the top; the Hugging Face token
comes from the platform's secrets (Colab's userdata, Kaggle's UserSecretsClient).
"""

from __future__ import annotations

from envsolve.render.contract import TORCH_FAMILY
from envsolve.render.files import Output, RenderContext, template

PLATFORMS = {
    # kind: (name, where its restart is, where secrets live)
    "colab": ("Colab", "Runtime > Restart session", "Colab's secrets (the key icon, notebook access on)"),
    "kaggle": ("Kaggle", "Run > Restart & clear cell outputs", "Kaggle's secrets (Add-ons > Secrets)"),
}


def render(context: RenderContext, kind: str) -> list[Output]:
    c = context.contract
    preload = [r.path for r in c.routes if r.consumer == "ctranslate2" and r.origin == "pip" and r.path]
    installed = {p.name for p in c.to_install_on_platform}
    platform, restart, secrets = PLATFORMS[kind]
    replaces = bool(installed & set(TORCH_FAMILY))
    others = [n for n in TORCH_FAMILY if n not in installed]
    return [Output(f"{kind}-cell.py", template(
        "notebook_cell.py.j2", c, platform=platform, restart_menu=restart, secrets_where=secrets,
        preload=sorted(set(preload)), keep=[] if replaces else others, remove=others if replaces else [],
        family=TORCH_FAMILY, replaces=replaces))]
