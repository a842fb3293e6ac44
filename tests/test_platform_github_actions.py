"""The rendered GitHub Actions workflow, executed: its steps run in order (tests/workflow_runner.py) in a fresh clone
of a test repository holding the rendered folder, for a folder rendered from host flags and one rendered from a
plan file, each with --envsolve-spec (envsolve's wheel, built from this checkout and committed there): the job
passes, and after an edit to any rendered file it fails. The workflow also passes check-jsonschema's GitHub
workflow schema (vendored in the `platforms` extra). Not run: GitHub's hosted runner and the two actions' own code
(the runner stands in for them); actionlint (its PyPI package builds by downloading the binary from GitHub).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from conftest import render_alone
from envsolve.cli import main
from envsolve.render.selfwheel import build_wheel

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "render"
HOST = Path(__file__).parent / "hosts" / "dlami-a10g.json"
KINDS = ["requirements", "dockerfile", "script", "modal", "github-actions"]
WORKFLOW = ".github/workflows/envsolve.yml"


def _check_jsonschema() -> str:
    return shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")


def _repository(tmp: Path, wheel: Path, source: list[str], lock: str) -> Path:
    """A git repository as a user would commit it: the snapshot or plan, the wheel, and the rendered folder,
    rendered beside the committed lock of this plan (kept, not resolved again: `lock` names it)."""
    repo = tmp / "repo"
    (repo / "dist").mkdir(parents=True)
    (repo / "envsolve-render").mkdir()
    shutil.copy2(DATA / lock / "requirements.lock", repo / "envsolve-render")
    shutil.copy2(wheel, repo / "dist" / wheel.name)
    shutil.copy2(HOST, repo / "host.json")
    shutil.copy2(DATA / "cpu-faster-whisper.plan.json", repo / "plan.json")
    cwd = Path.cwd()
    os.chdir(repo)  # users render from the repository root, which is where the workflow runs the command again
    try:
        assert main(["render", *KINDS, *source, "--envsolve-spec", f"dist/{wheel.name}",
                     "-o", "envsolve-render"]) == 0
    finally:
        os.chdir(cwd)
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", "rendered")
    return repo


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    subprocess.run(["git", *args], cwd=repo, check=True, env=env, timeout=60)


def _pins() -> dict[str, str]:
    """The install step reaches PyPI: envsolve's dependencies are pinned to this environment's versions (pip's
    PIP_CONSTRAINT), so no new release changes what the job installs."""
    return {name: metadata.version(name) for name in ("jinja2", "markupsafe", "packaging")}



def test_the_check_step_is_the_command_that_rendered_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The report's cases, without running the job: a plan file is not planned again, some kinds are checked as
    some kinds, and --envsolve-spec and --with-ray reach the check and every header."""
    monkeypatch.chdir(tmp_path)
    shutil.copy2(DATA / "cpu-faster-whisper.plan.json", "plan.json")
    (tmp_path / "ci").mkdir()
    shutil.copy2(DATA / "cpu-faster-whisper" / "requirements.lock", tmp_path / "ci")  # modal reads it: kept
    wheel = Path("dist/envsolve-0.2.0-py3-none-any.whl")
    wheel.parent.mkdir()
    wheel.write_bytes(build_wheel())
    args = ["render", "github-actions", "modal", "--plan", "plan.json", "--envsolve-spec", str(wheel), "--with-ray",
            "-o", "ci"]
    assert main(args) == 0
    workflow = (tmp_path / "ci" / WORKFLOW).read_text()
    command = (f"envsolve render github-actions modal --plan plan.json --envsolve-spec {wheel} --with-ray -o ci")
    assert f"run: {command} --check" in workflow
    assert "envsolve plan" not in workflow and "hadolint --failure" not in workflow  # no plan flags, no Dockerfile
    assert f"#   {command}\n" in (tmp_path / "ci" / "modal_app.py").read_text()
    assert "actions/checkout@v4" not in workflow and "actions/setup-python@v5" not in workflow
    capsys.readouterr()
    assert main([*args, "--check"]) == 0  # the header's command, run with --check, finds the folder current


def test_the_workflow_passes_githubs_workflow_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path(_check_jsonschema()).exists():
        pytest.skip("the platforms extra (check-jsonschema) is not installed")
    monkeypatch.chdir(ROOT)
    for source in (["--host", "example:colab-l4"], ["--plan", str(DATA / "cpu-faster-whisper.plan.json")]):
        out = tmp_path / source[0].strip("-")
        render_alone(["github-actions", "dockerfile", *source, "-o", str(out)])
        done = subprocess.run([_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(out / WORKFLOW)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("source", "lock"), [
    (["--host", "host.json", "--workload", "faster-whisper", "--python", "3.11"], "cuda12-b-faster-whisper"),
    (["--plan", "plan.json"], "cpu-faster-whisper")], ids=["host", "plan-file"])
def test_the_job_passes_in_a_fresh_clone_and_fails_after_any_edit(source: list[str], lock: str,
                                                                   envsolve_wheel: Path, tmp_path: Path) -> None:
    from workflow_runner import run_job

    repo = _repository(tmp_path, envsolve_wheel, source, lock)
    workflow = repo / "envsolve-render" / WORKFLOW
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in _pins().items()))
    env = {"PIP_CONSTRAINT": str(constraints), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    first = run_job(workflow, repo, tmp_path / "run0", env=env)
    assert first.passed, first.log
    names = [s.name for s in first.steps]
    assert ("Plan" in names) == (source[0] == "--host") and "hadolint" in names
    rendered = sorted(p for p in (repo / "envsolve-render").rglob("*") if p.is_file())
    assert len(rendered) >= len(KINDS)
    for index, path in enumerate(rendered, start=1):  # envsolve's wheel included: an edited wheel fails too
        original = path.read_bytes()
        path.write_bytes(original + b"# edited\n")
        _git(repo, "commit", "--quiet", "-am", f"edit {path.name}")
        edited = run_job(workflow, repo, tmp_path / f"run{index}", python=tmp_path / "run0" / "python", env=env)
        assert not edited.passed, f"the job passed after an edit to {path.relative_to(repo)}"
        failed = edited.steps[-1]
        assert failed.name == "Rendered files match the plan" and path.name in failed.output, edited.log
        path.write_bytes(original)
        _git(repo, "commit", "--quiet", "-am", f"restore {path.name}")


@pytest.mark.parametrize(("output", "written"), [("ci", "ci"), ("./a/../ci", "ci"), ("my out", "<this folder>"),
                                                 ("../elsewhere", "<this folder>")])
def test_the_header_names_the_folder_only_when_the_command_can_reach_it_again(
        output: str, written: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """-o is in the regenerate command when it is a relative path below the working folder (CI runs from there);
    an absolute or outside path, or one no grammar admits, is the placeholder, and rendering still works."""
    work = tmp_path / "repo"
    work.mkdir()
    monkeypatch.chdir(work)
    render_alone(["script", "--host", "example:colab-l4", "--with-ray", "-o", output])
    header = (work / output / "install.sh").read_text().splitlines()[3]
    assert header == f"#   envsolve render script --host example:colab-l4 --with-ray -o {written}"
