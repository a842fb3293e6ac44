"""install.sh: an environment on a bare box or an AWS DLAMI, as a venv (default) or a conda prefix.

Its install steps are templates/_install.sh.j2, the partial the Dockerfile's build stage runs: what the
tests execute here is what the image runs.
"""

from __future__ import annotations

from envsolve.render.files import Output, RenderContext, template


def render(context: RenderContext, kind: str) -> list[Output]:
    return [Output("install.sh", template("install.sh.j2", context.contract), executable=True)]
