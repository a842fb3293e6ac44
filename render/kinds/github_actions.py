"""A GitHub Actions workflow: plan from the committed snapshot, render, `render --check`, hadolint."""

from __future__ import annotations

from envsolve.render.files import Output, RenderContext, template


def render(context: RenderContext, kind: str) -> list[Output]:
    return [Output(".github/workflows/envsolve.yml", template("github-actions.yml.j2", context.contract))]
