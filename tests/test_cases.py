"""Planner and doctor cases as data: tests/cases/{plan,doctor}/*.json, each saying why.

A case names a host snapshot (tests/hosts), optionally patches it, makes a request, and lists
the properties the result must have. Adding a case is adding a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import case_files, load_host
from envsolve.errors import EnvsolveError
from envsolve.resolver.doctor import diagnose
from envsolve.resolver.failure import NoSolution
from envsolve.resolver.plan import Plan, make_plan
from envsolve.resolver.request import Request


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    assert case.get("why"), f"{path.name}: every case says why"
    known = PLAN_KEYS if path.parent.name == "plan" else DOCTOR_KEYS
    unknown = set(case["expect"]) - known
    assert not unknown, f"{path.name}: unknown expectation {sorted(unknown)} would assert nothing"
    return case


def _request(spec: dict[str, Any]) -> Request:
    spec = dict(spec)
    spec["constraints"] = tuple(spec.get("constraints", ()))
    return Request(**spec)


def _pins(plan: Plan) -> dict[str, str]:
    return {p.name: p.version for p in plan.pins}


@pytest.mark.parametrize("path", case_files("plan"), ids=lambda p: p.stem)
def test_plan_case(path: Path) -> None:
    case = _load(path)
    host = load_host(case["host"], case.get("patch"))
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(EnvsolveError) as caught:
            make_plan(host, _request(case["request"]))
        error = caught.value
        unknown = set(expect["error"]) - ERROR_KEYS
        assert not unknown, f"{path.name}: unknown error expectation {sorted(unknown)} would assert nothing"
        assert error.reference == expect["error"]["reference"], error.render()
        if "exhausted" in expect["error"] or "cause_codes" in expect["error"]:
            # A failed plan is data: these read the Failure, not the words made from it.
            assert isinstance(error, NoSolution), error.render()
            failure = error.failure
            if "exhausted" in expect["error"]:
                assert failure.exhausted is not None and failure.exhausted.variable == expect["error"]["exhausted"]
            codes = {f.code for f in failure.findings}
            assert set(expect["error"].get("cause_codes", [])) <= codes, codes
        for text in expect["error"].get("message_contains", []):
            assert text in error.message, f"{text!r} not in:\n{error.message}"
        for text in expect["error"].get("hint_contains", []):
            assert text in (error.hint or ""), f"{text!r} not in hint:\n{error.hint}"
        for text in expect["error"].get("hint_lacks", []):
            assert text not in (error.hint or ""), f"{text!r} repeats a way out already given:\n{error.hint}"
        return
    plan = make_plan(host, _request(case["request"]))
    _check_plan(plan, expect)


def _torch_row(plan: Plan) -> dict[str, Any]:
    decision = next(d for d in plan.decisions if d.subject == "torch")
    base, _, variant = decision.chosen.partition("+")
    return {"torch": base, "variant": variant}


PLAN_KEYS = {"pathway", "pins", "pin_prefix", "pins_present", "pins_absent", "decision_rules", "compute_type", "device",
             "base_image", "library_from", "env_contains", "no_env", "notes_contain", "index_for", "torch_variant",
             "torch_variant_in", "torch_cuda_major", "torch_below", "rejected_codes", "ctranslate2_cudnn_major",
             "warning_codes", "same_local_label", "error", "devices"}
ERROR_KEYS = {"reference", "message_contains", "hint_contains", "hint_lacks", "exhausted", "cause_codes"}
DOCTOR_KEYS = {"healthy", "codes", "absent", "complete", "notes_contain", "unknown_contains", "evidence_contains",
               "subjects"}


def _check_plan(plan: Plan, expect: dict[str, Any]) -> None:
    pins = _pins(plan)
    shown = json.dumps(plan.to_json(), indent=1)[:3000]
    if "pathway" in expect:
        assert plan.pathway == expect["pathway"], shown
    for name, version in expect.get("pins", {}).items():
        assert pins.get(name) == version, f"{name}: {pins.get(name)} != {version}\n{shown}"
    for name, prefix in expect.get("pin_prefix", {}).items():
        assert name in pins and pins[name].lstrip("<>=!~").startswith(prefix), f"{name}: {pins.get(name)}\n{shown}"
    for name in expect.get("pins_present", []):
        assert name in pins, shown
    for name in expect.get("pins_absent", []):
        assert name not in pins, shown
    for subject, rule in expect.get("decision_rules", {}).items():
        assert any(d.subject == subject and d.rule == rule for d in plan.decisions), shown
    if "compute_type" in expect:
        assert plan.compute_type == expect["compute_type"], shown
    if "device" in expect:
        assert ("cuda" if plan.gpu else "cpu") == expect["device"]
    if "devices" in expect:
        assert plan.devices == expect["devices"], plan.devices
    if "base_image" in expect:
        assert plan.base_image == expect["base_image"]
    for want in expect.get("library_from", []):
        assert any(all(lib[k] == v for k, v in want.items()) for lib in plan.libraries), \
            f"{want} not in {plan.libraries}"
    for key, text in expect.get("env_contains", {}).items():
        assert text in plan.env.get(key, ""), plan.env
    for key in expect.get("no_env", []):
        assert key not in plan.env, plan.env
    for text in expect.get("notes_contain", []):
        assert any(text in n for n in plan.notes), plan.notes
    for name, index in expect.get("index_for", {}).items():
        assert next(p.index for p in plan.pins if p.name == name) == index
    torch = _torch_row(plan) if any(d.subject == "torch" for d in plan.decisions) else {}
    if "torch_variant" in expect:
        assert torch["variant"] == expect["torch_variant"], shown
    if "torch_variant_in" in expect:
        assert torch["variant"] in expect["torch_variant_in"], shown
    if "torch_cuda_major" in expect:
        assert torch["variant"].startswith(f"cu{expect['torch_cuda_major']}"), shown
    if "torch_below" in expect:
        from packaging.version import Version

        assert Version(torch["torch"]) < Version(expect["torch_below"]), shown
    for variable, codes in expect.get("rejected_codes", {}).items():
        decision = next(d for d in plan.decisions if d.subject == variable)
        seen = {r["code"] for r in decision.rejected}
        assert set(codes) <= seen, f"{variable}: rejected for {seen}, expected {codes}"
    if "ctranslate2_cudnn_major" in expect:
        from envsolve.resolver.rulebook import row_for

        row = row_for("ctranslate2", pins["ctranslate2"])
        assert row is not None and row.get("cudnn_major") == expect["ctranslate2_cudnn_major"]
    warnings = {w.code for w in plan.warnings}
    assert set(expect.get("warning_codes", [])) <= warnings, warnings
    if "same_local_label" in expect:
        labels = {pins[name].partition("+")[2] for name in expect["same_local_label"]}
        assert len(labels) == 1, pins


@pytest.mark.parametrize("path", case_files("doctor"), ids=lambda p: p.stem)
def test_doctor_case(path: Path) -> None:
    case = _load(path)
    host = load_host(case["host"], case.get("patch"))
    report = diagnose(host, device=case.get("device", "auto"), compute_type=case.get("compute_type"),
                      workload=case.get("workload", "auto"))
    codes = {f.code for f in report.findings}
    expect = case["expect"]
    shown = "\n".join(f"{f.severity} {f.code} {f.subject}: {f.message}" for f in report.findings)
    assert report.healthy == expect["healthy"], shown
    assert set(expect.get("codes", [])) <= codes, f"expected {expect.get('codes')}, got:\n{shown}"
    assert not set(expect.get("absent", [])) & codes, shown
    if "complete" in expect:
        assert report.complete == expect["complete"], report.unknown
    for text in expect.get("notes_contain", []):
        assert any(text in n for n in report.notes), report.notes
    for text in expect.get("unknown_contains", []):
        assert any(text in u for u in report.unknown), report.unknown
    for text in expect.get("subjects", []):
        assert any(f.subject.startswith(text) for f in report.findings), shown
    for text in expect.get("evidence_contains", []):
        assert any(text in e for f in report.findings for e in f.evidence), shown
    for finding in report.findings:
        assert finding.fix, f"{finding.code} has no fix"
        assert finding.evidence, f"{finding.code} has no evidence"
