"""modal_app.py: a Modal image built from the lock, and a function that runs `envsolve run` on a GPU.

Modal's `add_python` puts the interpreter in /usr/local, so site-packages is known when the image is
defined. The Hugging Face token comes from a Modal secret named `huggingface`, never from the file.
"""

from __future__ import annotations

from envsolve.render.files import Output, RenderContext, template


def render(context: RenderContext, kind: str) -> list[Output]:
    c = context.contract
    return [Output("modal_app.py", template("modal_app.py.j2", c, cpu_image=c.base_image.startswith("python:") or
                                            not c.base_image,
                                            site=f"/usr/local/lib/python{c.python}/site-packages"))]
