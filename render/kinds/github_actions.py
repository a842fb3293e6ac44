"""A GitHub Actions workflow: plan (from the committed snapshot), `render --check` with the exact command that
rendered the folder, and hadolint when the folder holds a Dockerfile.

The check step is the regenerate command of every file's header plus --check, so a folder rendered with some
kinds, from a plan file, with --envsolve-spec or --with-ray passes its own check. A plan file is not planned
again (`envsolve plan --plan` is no command): the check reads it.
"""

from __future__ import annotations

from envsolve.render.files import Output, RenderContext, template

# Pinned by commit SHA (a tag can be moved; a commit cannot). Both run on node24 (their action.yml, runs.using);
# the v4/v5 majors ran on node20, which GitHub deprecated. From the repositories' tags: actions/checkout v7.0.1 and
# actions/setup-python v7.0.0 (git for-each-ref refs/tags in the fetched repositories, 2026-12-07).
CHECKOUT = "3d3c42e5aac5ba805825da76410c181273ba90b1  # v7.0.1"
SETUP_PYTHON = "5fda3b95a4ea91299a34e894583c3862153e4b97  # v7.0.0"
DEFAULT_FOLDER = "envsolve-render"


def render(context: RenderContext, kind: str) -> list[Output]:
    c = context.contract
    folder = c.folder or DEFAULT_FOLDER
    if not c.folder:
        context.warn(f"-o is not a folder below this one, so the workflow checks {DEFAULT_FOLDER}/ (render with "
                     f"-o {DEFAULT_FOLDER} from the repository root to match)")
    kinds = set(c.regenerate[1:]) if c.regenerate[:1] == ("render",) else set()
    dockerfile = bool(c.base_image) and bool(kinds & {"dockerfile", "all"})
    return [Output(".github/workflows/envsolve.yml", template("github-actions.yml.j2", c, folder=folder,
                                                              dockerfile=dockerfile, checkout=CHECKOUT,
                                                              setup_python=SETUP_PYTHON))]
