"""Render a plan into the files people use to install it, one kind per entry in KINDS (below), which the CLI's
help and the README's tables are made from or checked against.

Downstream of the resolver: this package imports it, never the other way. A kind is one module in
render/kinds/ plus one entry in KINDS. Every value reaches a template through `Contract` (render/contract.py),
checked against its grammar; templates are Jinja2 files in templates/ with StrictUndefined.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KINDS", "Kind"]


@dataclass(frozen=True)
class Kind:
    name: str
    module: str  # envsolve.render.kinds.<module>
    help: str
    reads_lock: bool = False  # its files install from requirements.lock, so the lock is rendered with it
    ships_envsolve: bool = True  # its files install envsolve, so envsolve's wheel is written beside them


KINDS: tuple[Kind, ...] = (
    Kind("requirements", "requirements", "requirements.in: the plan's pins and indexes, for pip or pip-tools",
         ships_envsolve=False),
    Kind("lock", "lock", "requirements.lock: every package for the target, exact and sha256-hashed",
         ships_envsolve=False),
    Kind("environment", "environment", "environment.yml for conda (and conda-lock.yml when conda-lock is here)"),
    Kind("dockerfile", "dockerfile", "Dockerfile: multi-stage, venv, non-root, --require-hashes, doctor at build",
         reads_lock=True),
    Kind("colab", "notebook", "colab-cell.py: a Colab cell that keeps the preinstalled torch when the plan does"),
    Kind("kaggle", "notebook", "kaggle-cell.py: the same for a Kaggle notebook"),
    Kind("modal", "modal", "modal_app.py: a Modal image and function running envsolve run", reads_lock=True),
    Kind("script", "script", "install.sh: a venv (or conda) environment on a bare box or an AWS DLAMI",
         reads_lock=True),
    Kind("github-actions", "github_actions", ".github/workflows/envsolve.yml: plan, render --check, hadolint"),
    Kind("ray", "ray", "ray-cluster.yaml (ray up) and kuberay-raycluster.yaml, running the rendered image"),
)
