"""requirements.in: the plan's pins and the indexes they come from, for pip or pip-compile."""

from __future__ import annotations

from envsolve.render.files import Output, RenderContext, template


def render(context: RenderContext, kind: str) -> list[Output]:
    return [Output("requirements.in", template("requirements.in.j2", context.contract))]
