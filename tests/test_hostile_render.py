"""`envsolve render` on hostile plans and folders (issue 21, items 4-7): a plan file never makes envsolve build
(and so run) a package the matrices do not list, `--check` reads only regular files, bounded, and escapes what it
prints, `-o` keeps files envsolve did not write, and paths or constraints with spaces render as `plan` takes them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from envsolve.errors import EnvsolveError
from envsolve.render.contract import PYPI, Package
from envsolve.render.lock import allowed_source_builds
from hostile import assert_clean, envsolve, one_line_error

HOST = ("--host", "example:colab-l4")
# Kinds that read the lock (dockerfile, script) render it too: these tests render beside a committed lock of a
# committed plan, which render keeps, so nothing is resolved against the registry here.
DATA = Path(__file__).parent / "data" / "render"
LOCKED = ("--plan", str(DATA / "cpu-faster-whisper.plan.json"))


def _seed(out: Path, name: str = "cpu-faster-whisper") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / name / "requirements.lock", out / "requirements.lock")
    return out


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    result = envsolve("plan", *HOST, "--json")
    assert_clean(result, 0)
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def _write_plan(path: Path, plan: dict[str, object], **changes: object) -> Path:
    path.write_text(json.dumps({**plan, **changes}))
    return path


# -- item 4: no code runs from a plan file ------------------------------------------------------------------

@pytest.mark.parametrize("build", [{"package": "termcolor", "version": "1.1.0"},
                                   {"package": "docopt", "version": "0.6.1"}])
def test_a_plan_cannot_name_a_source_build_the_matrices_do_not_list(plan: dict[str, object], tmp_path: Path,
                                                                    build: dict[str, str]) -> None:
    plan_file = _write_plan(tmp_path / "plan.json", plan, source_builds=[build])
    # pip would build (run setup.py) with this on the path; a refused plan must not get that far.
    marker = tmp_path / "built"
    env = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple/", "ENVSOLVE_TEST_MARKER": str(marker)}
    result = envsolve("render", "lock", "--plan", plan_file, "-o", tmp_path / "out", env=env, timeout=60)
    line = one_line_error(result)
    assert "error[source-build-not-listed]" in line and f"{build['package']}=={build['version']}" in line
    assert_clean(result, 2, "docopt==0.6.2")
    assert not (tmp_path / "out").exists() and not marker.exists()


def test_the_listed_source_build_is_still_allowed() -> None:
    allowed_source_builds([Package("docopt", "0.6.2", PYPI, True), Package("DocOpt", "0.6.2", PYPI, True)])
    with pytest.raises(EnvsolveError, match="termcolor"):
        allowed_source_builds([Package("termcolor", "1.1.0", PYPI, True)])


# -- item 5: --check on a hostile folder ----------------------------------------------------------------------

def _rendered(tmp_path: Path) -> Path:
    out = _seed(tmp_path / "out")
    assert_clean(envsolve("render", "dockerfile", "requirements", *LOCKED, "-o", out), 0)
    return out


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder", "huge", "binary"])
def test_check_reads_only_regular_files_bounded(tmp_path: Path, kind: str) -> None:
    out = _rendered(tmp_path)
    dockerfile = out / "Dockerfile"
    dockerfile.unlink()
    if kind == "fifo":
        os.mkfifo(dockerfile)
    elif kind == "dev-zero":
        dockerfile.symlink_to("/dev/zero")
    elif kind == "folder":
        dockerfile.mkdir()
    elif kind == "huge":
        with dockerfile.open("wb") as handle:
            handle.truncate(6 << 30)  # sparse, and beyond the test's memory limit if read whole
    else:
        dockerfile.write_bytes(b"\xff\xfe\x00" * 100)
    result = envsolve("render", "dockerfile", "requirements", *LOCKED, "-o", out, "--check", timeout=30)
    text = assert_clean(result, 1, "Dockerfile", "differ")
    assert {"fifo": "not a regular file", "dev-zero": "not a regular file", "folder": "not a regular file",
            "huge": "larger than 64 MiB", "binary": "not UTF-8"}[kind] in text


def test_check_escapes_what_an_edited_file_holds(tmp_path: Path) -> None:
    out = _rendered(tmp_path)
    dockerfile = out / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# \x1b]0;owned\x07 \x1b[2J \u202e \x9b\r\n")
    result = envsolve("render", "dockerfile", *LOCKED, "-o", out, "--check", timeout=30)
    assert "\\x1b]0;owned\\x07" in assert_clean(result, 1)


def test_check_names_a_path_with_a_newline_on_one_line(tmp_path: Path) -> None:
    out = tmp_path / "odd\x1b[2J\nfolder"
    assert_clean(envsolve("render", "requirements", *HOST, "-o", out), 0)
    (out / "requirements.in").write_text("edited\n")
    result = envsolve("render", "requirements", *HOST, "-o", out, "--check", timeout=30)
    assert "odd\\x1b[2J\\nfolder" in assert_clean(result, 1)


# -- item 6: -o into a folder holding files envsolve did not write ---------------------------------------------

def test_render_keeps_hand_written_files_and_says_so(tmp_path: Path) -> None:
    out = _seed(tmp_path / "out")
    mine = {"Dockerfile": "FROM debian:bookworm\n# mine\n", ".dockerignore": "node_modules\n"}
    for name, text in mine.items():
        (out / name).write_text(text)
    result = envsolve("render", "dockerfile", "requirements", *LOCKED, "-o", out)
    text = assert_clean(result, 0, "kept", "--force")
    assert {name: (out / name).read_text() for name in mine} == mine
    assert "Generated by envsolve" in (out / "requirements.in").read_text()
    assert str(out / "Dockerfile") not in result.stdout.splitlines() and "Dockerfile" in text

    # a file envsolve wrote is replaced as before, and --force replaces a hand-written one
    assert_clean(envsolve("render", "dockerfile", "requirements", *LOCKED, "-o", out, "--force"), 0)
    assert all("Generated by envsolve" in (out / name).read_text() for name in mine)
    (out / "requirements.in").write_text((out / "requirements.in").read_text() + "# edited\n")
    again = envsolve("render", "requirements", *LOCKED, "-o", out)
    assert "kept" not in assert_clean(again, 0) and "# edited" not in (out / "requirements.in").read_text()


def test_render_keeps_a_link_or_a_fifo_in_its_place(tmp_path: Path) -> None:
    out = _seed(tmp_path / "out")
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    (out / "Dockerfile").symlink_to(target)
    os.mkfifo(out / ".dockerignore")
    result = envsolve("render", "dockerfile", *LOCKED, "-o", out, timeout=30)
    assert_clean(result, 0, "kept")
    assert target.read_text() == "precious\n" and (out / "Dockerfile").is_symlink()


# -- item 7: spaces that plan accepts, a newline that must not split the error ---------------------------------

def test_render_takes_a_plan_path_with_spaces(plan: dict[str, object], tmp_path: Path) -> None:
    plan_file = _write_plan(tmp_path / "my plan.json", plan)
    result = envsolve("render", "requirements", "--plan", plan_file, "-o", tmp_path / "out")
    assert_clean(result, 0)
    assert f"--plan '{plan_file}'" in (tmp_path / "out" / "requirements.in").read_text()


def test_render_takes_a_constraint_with_spaces_as_plan_does(tmp_path: Path) -> None:
    assert_clean(envsolve("plan", *HOST, "-c", "ctranslate2 <4.5"), 0)
    result = envsolve("render", "requirements", "github-actions", *HOST, "-c", "ctranslate2 <4.5", "-o",
                      tmp_path / "out")
    assert_clean(result, 0)
    assert "-c 'ctranslate2 <4.5'" in (tmp_path / "out" / "requirements.in").read_text()
    yaml = pytest.importorskip("yaml")  # the workflow's run: lines stay one plain YAML scalar each

    workflow = yaml.safe_load((tmp_path / "out" / ".github" / "workflows" / "envsolve.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["render"]["steps"]]
    assert any("-c 'ctranslate2 <4.5'" in run for run in runs)


@pytest.mark.parametrize("name", ["my plan (v2).json", "a: b.json"])
def test_a_plan_path_render_cannot_write_into_headers_says_what_to_rename(plan: dict[str, object], tmp_path: Path,
                                                                         name: str) -> None:
    result = envsolve("render", "requirements", "--plan", _write_plan(tmp_path / name, plan), "-o", tmp_path / "o")
    assert "rename the plan" in one_line_error(result)
    assert_clean(result, 2)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [("render", "requirements", "--plan", "no\nsuch\x1b[2J.json", "-o", "out"),
                                  ("plan", "--host", "no\nsuch.json"), ("doctor", "--host", "no\nsuch.json")])
def test_a_newline_in_a_path_does_not_split_the_error(argv: tuple[str, ...], tmp_path: Path) -> None:
    result = envsolve(*argv, cwd=tmp_path)
    assert_clean(result, 2)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no\\nsuch" in one_line_error(result)


def test_install_sh_env_file_runs_nothing_from_the_prefix(tmp_path: Path) -> None:
    """The envsolve-env.sh that install.sh writes, for a prefix holding $(...) and backticks: sourcing it runs
    nothing and keeps the prefix as written."""
    out = _seed(tmp_path / "out", "cuda13-l4-faster-whisper")
    assert_clean(envsolve("render", "script", "--plan", str(DATA / "cuda13-l4-faster-whisper.plan.json"), "-o", out), 0)
    script = (out / "install.sh").read_text()
    block = re.search(r"^\{\n.*?^\} > \"\$VENV/envsolve-env.sh\"\n", script, re.S | re.M)
    assert block is not None and "LD_LIBRARY_PATH" in block.group()
    venv = tmp_path / "env $(touch pwned-1) `touch pwned-2`"
    venv.mkdir()
    site = venv / "lib" / "site $(touch pwned-3)"
    driver = (f'set -eu\nVENV={_sh(str(venv))}\nSITE_PACKAGES={_sh(str(site))}\n{block.group()}'
              'PATH=/usr/bin:/bin LD_LIBRARY_PATH=/x\n. "$VENV/envsolve-env.sh"\n'
              'printf "%s\\n" "$PATH" "$LD_LIBRARY_PATH"\n')
    done = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("pwned-*")), "sourcing envsolve-env.sh ran code from the prefix"
    path, library_path = done.stdout.splitlines()
    assert path == f"{venv}/bin:/usr/bin:/bin"
    assert library_path.startswith(str(site)) and library_path.endswith(":/x")


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
