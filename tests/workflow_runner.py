"""A small runner for the rendered GitHub Actions workflow: executes one job's steps in order, as a hosted runner
would, on this machine.

`uses: actions/checkout` is a fresh `git clone` of the test repository; `uses: actions/setup-python` is a venv of
this Python put first on PATH (the action's effect: a `python` of the asked version on PATH, pip in it); every
`run:` step runs in the clone with GitHub's default shell for Linux, `bash --noprofile --norc -eo pipefail {0}`
(docs.github.com, "Workflow syntax for GitHub Actions", jobs.<job_id>.steps[*].shell). Any other `uses:` is refused,
so a workflow that grows a step this runner cannot run fails its test instead of passing it unrun.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class StepResult:
    name: str
    returncode: int
    output: str


@dataclass
class JobResult:
    steps: list[StepResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(step.returncode == 0 for step in self.steps)

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name} (exit {s.returncode})\n{s.output}" for s in self.steps)


def run_job(workflow: Path, repository: Path, work: Path, *, job: str = "render", python: Path | None = None,
            env: dict[str, str] | None = None) -> JobResult:
    """Run `job` of `workflow` against a fresh clone of `repository` under `work`; stops at the first failing step,
    as a runner does. `python`: a venv from an earlier run to reuse (setup-python then only puts it on PATH)."""
    spec: dict[str, Any] = yaml.safe_load(workflow.read_text())
    steps: list[dict[str, Any]] = spec["jobs"][job]["steps"]
    clone = work / "checkout"
    venv = python or work / "python"
    path = os.environ.get("PATH", "/usr/bin:/bin")
    base = {**{k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))},
            **(env or {}), "CI": "true", "GITHUB_ACTIONS": "true"}
    result = JobResult()
    for index, step in enumerate(steps):
        name = step.get("name") or step.get("uses") or f"step {index + 1}"
        uses = str(step.get("uses", ""))
        if uses.startswith("actions/checkout@"):
            done = subprocess.run(["git", "clone", "--quiet", str(repository), str(clone)], capture_output=True,
                                  text=True, timeout=120)
        elif uses.startswith("actions/setup-python@"):
            if python is None:
                done = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True,
                                      timeout=300)
            else:
                done = subprocess.CompletedProcess([], 0, "", "")
            path = f"{venv / 'bin'}:{path}"
        elif uses:
            raise AssertionError(f"this runner cannot run {uses!r}")
        else:
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                  cwd=clone, env={**base, "PATH": path}, capture_output=True, text=True, timeout=900)
        result.steps.append(StepResult(name, done.returncode, done.stdout + done.stderr))
        if done.returncode != 0:
            break
    return result
