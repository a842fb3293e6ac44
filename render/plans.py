"""Where a render's plan comes from: a plan file, read with the same care as a host snapshot, and the
dependencies of envsolve itself that a rendered environment must lock beside the plan's pins."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from envsolve.errors import EnvsolveError

MAX_PLAN_BYTES = 4 * 1024 * 1024


def read_plan(path: str) -> dict[str, Any]:
    """The plan JSON at `path`; EnvsolveError for a missing, huge, non-JSON or duplicate-key file."""
    hint = "Write it with `envsolve plan --json > plan.json`."
    try:
        size = Path(path).stat().st_size
        if not Path(path).is_file() or size > MAX_PLAN_BYTES:
            raise EnvsolveError("render-bad-plan", f"{path} is not a plan file (a regular file under "
                                f"{MAX_PLAN_BYTES // 1024 // 1024} MiB).", hint=hint)
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise EnvsolveError("render-bad-plan", f"Cannot read the plan {path}: {error}.", hint=hint) from None

    from envsolve.typedjson import load_json

    # The snapshot reader's rules: no duplicate keys, bounded nesting and strings, no lone surrogates.
    plan = load_json(text, f"The plan {path}", "render-bad-plan", hint)
    if not isinstance(plan, dict):
        raise EnvsolveError("render-bad-plan", f"The plan {path} is not a JSON object.", hint=hint)
    return plan


def envsolve_roots(python: str, arch: str, *, with_ray: bool = False) -> tuple[str, ...]:
    """envsolve's own runtime dependencies (no extras) on the target Python and architecture: the rendered
    environment installs envsolve with --no-deps, so the lock must hold them (tomli below Python 3.11: the
    markers are the target's, not this interpreter's); `with_ray` adds the Ray the cluster files name."""
    from envsolve.render.lock import target_environment

    try:
        requires = metadata.requires("envsolve") or []
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        requires = ["packaging>=23", "jinja2>=3.1", "tomli>=2; python_version < '3.11'"]
    roots = []
    for text in requires:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(target_environment(python, arch)):
            roots.append(f"{requirement.name}{requirement.specifier}")
    if with_ray:
        from envsolve.render.kinds.ray import RAY_VERSION

        roots.append(f"ray=={RAY_VERSION}")
    return tuple(roots)
