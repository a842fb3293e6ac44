"""A failed plan is data: explain and plan read the Failure, never the planner that made it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import load_host
from envsolve.resolver.failure import Exhausted, Failure, NoSolution, Rejection
from envsolve.resolver.model import Finding
from envsolve.resolver.plan import make_plan
from envsolve.resolver.refusal import explain_failure
from envsolve.resolver.request import Request

RESOLVER = Path(__file__).resolve().parent.parent / "resolver"


def _imports(module: str) -> set[str]:
    tree = ast.parse((RESOLVER / f"{module}.py").read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


def test_refusal_and_failure_do_not_import_the_search() -> None:
    assert "envsolve.resolver.search" not in _imports("refusal")
    assert "envsolve.resolver.search" not in _imports("failure")


def _finding(code: str, subject: str, culprits: tuple[str, ...] = ()) -> Finding:
    return Finding(code, "error", subject, f"{subject} fails", ("evidence",), f"fix {code}", "src", culprits)


def test_a_failure_built_by_hand_is_explained_in_layers() -> None:
    failure = Failure(
        workload="pipeline", pathway="B", gpu=True, python="3.11", arch="x86_64", device="auto",
        rejections=(Rejection("torch", "2.5.1+cu121", (_finding("package-conflict", "torch 2.5.1"),)),
                    Rejection("ctranslate2", "4.5.0", (_finding("driver-too-old", "ctranslate2 4.5.0",
                                                                ("host:driver",)),)),
                    Rejection("ctranslate2", "4.4.0", (_finding("cudnn-missing", "ctranslate2 4.4.0"),))),
        exhausted=Exhausted("ctranslate2", ("4.4.0",), "==4.4.0"), constraints={"ctranslate2": "==4.4.0"},
        kept_preinstalled="colab")
    text, hint = explain_failure(failure)
    lines = text.splitlines()
    assert lines[0].startswith("No pipeline stack fits this host under pathway B (GPU, Python 3.11, x86_64)")
    # What would change the outcome leads: the variable that ran out, its host causes, then its conflicts;
    # the torch rejection, on another package, comes last.
    assert lines[1] == "Every ctranslate2 tried fails (1 versions: 4.4.0)."
    assert lines.index("Host causes:") < lines.index("The conflict is caused by:") < next(
        i for i, line in enumerate(lines) if line.startswith("Also met while searching"))
    assert lines[-1].startswith("  - [package-conflict] torch 2.5.1")
    assert hint.startswith("(1) fix cudnn-missing")  # what blocks the exhausted variable comes first
    assert "Drop or widen the constraint ctranslate2==4.4.0." in hint
    assert "--replace-preinstalled" in hint and "--pathway A" in hint and "(8)" not in hint
    assert failure.summary() == "Every ctranslate2 tried fails (1 versions: 4.4.0)."


def test_the_planner_raises_its_failure_as_data() -> None:
    with pytest.raises(NoSolution) as caught:
        make_plan(load_host("old-driver-t4.json"), Request())
    failure = caught.value.failure
    assert failure.exhausted is not None and failure.exhausted.variable == "torch"
    assert failure.gpu and failure.pathway == "B"
    assert {f.code for f in failure.findings} >= {"driver-too-old"}
    assert caught.value.message == explain_failure(failure)[0]


def test_an_empty_domain_names_the_constraint() -> None:
    with pytest.raises(NoSolution) as caught:
        make_plan(load_host("cpu-box.json"), Request(workload="faster-whisper", constraints=("ctranslate2==0.1",)))
    exhausted = caught.value.failure.exhausted
    assert exhausted == Exhausted("ctranslate2", (), "==0.1", empty=True)
    assert "No ctranslate2 version passes the request (constraint ctranslate2==0.1)." in caught.value.message
