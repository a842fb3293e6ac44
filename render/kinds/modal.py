"""modal_app.py: a Modal image built from the lock, and a class that loads the models once per container.

Modal's own patterns (modal.com/docs/guide/lifecycle-functions, /docs/guide/volumes, /docs/guide/secrets): the
models load in @modal.enter, weights live in a Volume, each call writes into a fresh folder and returns only its
own outputs, model and language are modal.parameter()s, and the Hugging Face token comes from the Modal secret
"huggingface", never from the file. `add_python` puts the interpreter in /usr/local, so site-packages is known
when the image is defined. A GPU plan always rents a GPU: its own, or the nearest Modal type (render/cloud.py).
"""

from __future__ import annotations

from envsolve.render.cloud import rent
from envsolve.render.files import NotApplicable, Output, RenderContext, template


def render(context: RenderContext, kind: str) -> list[Output]:
    c = context.contract
    rental = None
    if c.gpu:
        if c.target.arch != "x86_64":
            # Modal's containers are x86_64 (matrices/cloud_gpus.toml has no other arch): this plan's lock is not.
            raise NotApplicable(f"Modal runs x86_64 containers and this plan is for {c.target.arch}; plan for "
                                "x86_64 (a snapshot of an x86_64 GPU host) to render a Modal app")
        t = c.target
        rental = rent("modal", arch=t.arch, model=t.gpu_model, cc=t.compute_capability, memory_mib=t.gpu_memory_mib)
        if rental is None:
            raise NotApplicable(f"Modal rents no GPU with compute capability {t.compute_capability} or more and "
                                f"{t.gpu_memory_mib} MiB (matrices/cloud_gpus.toml)")
    return [Output("modal_app.py", template("modal_app.py.j2", c, rental=rental,
                                            cpu_image=c.base_image.startswith("python:") or not c.base_image,
                                            site=f"/usr/local/lib/python{c.python}/site-packages"))]
