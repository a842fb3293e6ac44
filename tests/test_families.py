"""A package family is one matrix file plus one entry in families.FAMILIES: nothing else names it.

speechbrain (a dependency of every pyannote.audio 3.x) was added that way; these tests hold the next
family to the same rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_host
from envsolve.resolver import families, matrices
from envsolve.resolver.doctor import diagnose
from envsolve.resolver.plan import make_plan
from envsolve.resolver.request import Request

ROOT = Path(__file__).resolve().parent.parent
# The engine and the CLI; the derivation code (derive) reads the registry's Requires-Dist lines and
# names the dependencies it records in other rows, which is data, not a second registry.
# resolver/rows.py is generated from the matrices (their fields, speechbrain's among them): data, not a registry.
CODE = [p for p in [*(ROOT / "resolver").rglob("*.py"), *(ROOT / "envsolve").rglob("*.py")]
        if "derive" not in p.parts and p.name != "rows.py"]


def _handwritten(text: str) -> str:
    """The text without the block scripts/gen_rows.py writes into resolver/matrices.py (one overload per matrix)."""
    begin, end = "# --- typed overloads: generated", "# --- end of generated overloads ---"
    return text[:text.index(begin)] + text[text.index(end):] if begin in text else text


def test_speechbrain_is_named_only_by_its_registry_entry() -> None:
    naming = sorted(str(p.relative_to(ROOT)) for p in CODE if "speechbrain" in _handwritten(p.read_text()))
    assert naming == ["resolver/families.py"]
    assert "speechbrain" in matrices.names()


def test_every_family_with_a_matrix_has_rows_and_every_optional_member_is_named_by_its_dependents() -> None:
    for name, family in families.FAMILIES.items():
        if family.matrix:
            assert len(matrices.load(family.matrix)) > 0, name
        for dependent in family.needed_by:
            matrix = families.FAMILIES[dependent].matrix
            assert matrix and any(family.field in row for row in matrices.load(matrix)), (name, dependent)


def test_the_entry_is_what_plans_and_checks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    host = load_host("colab-l4.json")
    assert "speechbrain" in {p.name for p in make_plan(host, Request()).pins}
    doctor_host = load_host("cuda13-l4.json", {"packages": {"torch": "2.9.0", "torchaudio": "2.9.0",
                                                            "speechbrain": "1.0.3"}})
    assert any(f.subject.startswith("speechbrain") for f in diagnose(doctor_host).findings)
    # Without the entry the same engine neither plans nor checks it.
    monkeypatch.delitem(families.FAMILIES, "speechbrain")
    assert "speechbrain" not in {p.name for p in make_plan(host, Request()).pins}
    assert not any(f.subject.startswith("speechbrain") for f in diagnose(doctor_host).findings)
