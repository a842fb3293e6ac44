"""The command line, run as users run it: in a fresh process, through its documented entry points."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HOSTS
from envsolve.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)


def run(*args: str, check_exit: int | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "envsolve", *args], capture_output=True, text=True, timeout=120)
    if check_exit is not None:
        assert result.returncode == check_exit, result.stdout + result.stderr
    return result


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command: str) -> None:
    out = run(command, "--help", check_exit=0).stdout
    assert f"envsolve {command}" in out and len(out) > 200


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_is_documented_in_the_readme(command: str) -> None:
    assert re.search(rf"envsolve {command}\b", (ROOT / "README.md").read_text()), f"document `envsolve {command}`"


def _documented(section: int) -> set[str]:
    """The fields of docs/plan-json.md's plan (0) or refusal (1) table."""
    text = (ROOT / "docs" / "plan-json.md").read_text().split("## When no stack fits")[section]
    return set(re.findall(r"^\| `(\w+)", text, re.M))


def test_plan_json_is_the_documented_schema() -> None:
    plan = json.loads(run("plan", "--host", str(HOSTS / "colab-l4.json"), "--json", check_exit=0).stdout)
    assert plan["schema"] == "envsolve.plan/1"
    assert set(plan) == _documented(0)


def test_plan_json_refusal_is_data_on_stdout() -> None:
    """Issue 20.6: a refused --json plan printed nothing on stdout; now the layers, the causes with their codes and
    evidence, and the numbered ways out, with exit status 1 and the words on stderr."""
    result = run("plan", "--host", str(HOSTS / "driver-470-t4.json"), "--pathway", "B", "--json", check_exit=1)
    refusal = json.loads(result.stdout)
    assert refusal["schema"] == "envsolve.plan-refusal/1" and set(refusal) == _documented(1)
    assert refusal["exhausted"]["variable"] == "torch" and refusal["request"]["pathway"] == "B"
    causes = refusal["host_causes"] + refusal["conflicts"]
    assert {"driver-too-old", "dependency-source-only"} <= {c["code"] for c in causes}
    assert all(c["evidence"] and c["fix"] for c in causes)
    ways = [w["text"] for w in refusal["ways_out"]]
    assert [w["number"] for w in refusal["ways_out"]] == list(range(1, len(ways) + 1)) and len(set(ways)) == len(ways)
    assert "error[no-consistent-stack]" in result.stderr and ways[0] in refusal["hint"]


def test_plan_is_deterministic() -> None:
    args = ("plan", "--host", str(HOSTS / "cuda13-l4.json"), "--json")
    assert run(*args, check_exit=0).stdout == run(*args, check_exit=0).stdout


@pytest.mark.parametrize("args", [
    ("plan", "--pathway", "C"),
    ("plan", "--workload", "asr"),
    ("plan", "--host", "/nonexistent/host.json"),
    ("plan", "-c", "ctranslate2 less than 4.5"),
    ("doctor", "--host", "/nonexistent/host.json"),
    ("explain", "cudnn-broken"),
    ("matrices", "nope"),
    ("frobnicate",),
    ("plan", "--frobnicate"),
])
def test_user_mistakes_get_one_paragraph_and_exit_2(args: tuple[str, ...]) -> None:
    result = run(*args, check_exit=2)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error[") and "Fix:" in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0, "one paragraph"


def test_no_stack_exits_1_with_layers() -> None:
    result = run("plan", "--host", str(HOSTS / "old-driver-t4.json"), check_exit=1)
    assert "Traceback" not in result.stderr
    assert "Host causes:" in result.stderr and "(1)" in result.stderr


def test_following_the_constraint_hint_works() -> None:
    """The bad-constraint error shows the syntax to use; using it gives a plan."""
    result = run("plan", "--host", str(HOSTS / "cpu-box.json"), "-c", "ctranslate2 below 4.5", check_exit=2)
    suggested = re.search(r'--constraint "([^"]+)"', result.stderr)
    assert suggested, result.stderr
    plan = json.loads(run("plan", "--host", str(HOSTS / "cpu-box.json"), "-c", suggested.group(1), "--json",
                          check_exit=0).stdout)
    assert any(p["name"] == "ctranslate2" and p["version"].startswith("4.4") for p in plan["packages"])


def test_a_preinstalled_torch_that_cannot_serve_is_replaced_and_said_first() -> None:
    """Colab's kept torch 2.5.1 forbids pyannote 4: the plan replaces the family and its first note says so;
    it is the plan --replace-preinstalled gives."""
    host = str(HOSTS / "colab-l4.json")
    auto = json.loads(run("plan", "--host", host, "-c", "pyannote.audio>=4", "--json", check_exit=0).stdout)
    assert "cannot serve this workload" in auto["notes"][0] and "replaces the torch family" in auto["notes"][0]
    assert next(d for d in auto["decisions"] if d["subject"] == "torch")["rule"] == "replace-preinstalled"
    asked = json.loads(run("plan", "--host", host, "-c", "pyannote.audio>=4", "--replace-preinstalled", "--json",
                           check_exit=0).stdout)
    assert [p["requirement"] for p in auto["packages"]] == [p["requirement"] for p in asked["packages"]]


def test_doctor_exit_codes() -> None:
    run("doctor", "--host", str(HOSTS / "colab-l4.json"), check_exit=0)
    out = run("doctor", "--host", str(HOSTS / "modal-no-gpu.json"), "--json", check_exit=1).stdout
    report = json.loads(out)
    assert report["healthy"] is False and report["findings"][0]["code"] == "gpu-not-visible"


def test_explain_lists_and_shows_codes() -> None:
    listing = run("explain", check_exit=0).stdout
    assert "cudnn-shadowed" in listing
    page = run("explain", "cudnn-shadowed", check_exit=0).stdout
    assert "Sources:" in page and "https://" in page


def test_matrices_command() -> None:
    assert "torch" in run("matrices", check_exit=0).stdout
    shown = run("matrices", "ctranslate2", "--columns", "version,cudnn_major,execstack", check_exit=0).stdout
    assert "4.6.3" in shown and "cudnn_major" in shown
    rows = json.loads(run("matrices", "gpus", "--json", check_exit=0).stdout)["rows"]
    assert all(r["source"] for r in rows)


def test_resolver_never_imports_heavy_libraries() -> None:
    host = str(HOSTS / "colab-l4.json")
    code = (f"import sys, envsolve.cli as c; c.main(['plan', '--host', {host!r}, '--json']); "
            "heavy = [m for m in ('torch', 'faster_whisper', 'pyannote', 'ctranslate2', 'av', 'numpy') "
            "if m in sys.modules]; print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_commands_are_registered_one_way() -> None:
    """Every command module is in COMMANDS, every entry has a module, and the parser has exactly those."""
    import importlib

    from envsolve.commands import COMMANDS as TABLE

    folder = ROOT / "envsolve" / "commands"
    modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    assert modules == {c.name for c in TABLE}
    assert sorted(c.name for c in TABLE) == COMMANDS
    for command in TABLE:
        module = importlib.import_module(command.module)
        assert callable(module.add_arguments) and callable(module.run), command.name
