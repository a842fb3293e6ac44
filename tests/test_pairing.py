"""The binary pairing as a rule: torch_abi in a torchaudio/torchvision/torchcodec row becomes a requirement on
torch (torch-family-mismatch) whose message names the symbols and whose source is the row's evidence."""

from __future__ import annotations

from envsolve.resolver.check import satisfies
from envsolve.resolver.packages import torchaudio_candidate, torchcodec_candidate, torchvision_candidate
from envsolve.resolver.pairing import torch_abi_rule
from envsolve.resolver.rulebook import Context, Runtime


def _context() -> Context:
    return Context(None, Runtime(gpu=True), False)


def test_torchaudio_2111_needs_a_torch_that_exports_its_symbols() -> None:
    candidate = torchaudio_candidate("2.11.1", _context())
    abi = [r for r in candidate.requires if r.capability == "pkg:torch" and "symbols" in r.why]
    assert len(abi) == 1 and abi[0].code == "torch-family-mismatch" and abi[0].spec == ">=2.13.0"
    assert "torch_exception_get_what" in abi[0].why and "undefined symbol" in abi[0].why
    assert "torchaudio-2.11.1-py3-none-manylinux_2_28_x86_64.whl" in abi[0].source
    assert "Requires-Dist: torch>=2.11" in abi[0].source
    declared = [r for r in candidate.requires if r.capability == "pkg:torch" and r not in abi]
    assert [r.spec for r in declared] == [">=2.11"]  # its Requires-Dist, not the torch row that pairs it
    assert not satisfies("2.11.0", abi[0].spec) and satisfies("2.14.1", abi[0].spec)


def test_every_family_candidate_carries_its_pairing() -> None:
    for build in (torchaudio_candidate("2.9.0", _context()), torchvision_candidate("0.29.1", _context()),
                  torchcodec_candidate("0.16.0", _context())):
        assert any(r.code == "torch-family-mismatch" and "symbols" in r.why for r in build.requires), build.label


def test_unknown_pairing_is_no_rule() -> None:
    assert torch_abi_rule("torchaudio 9.9", {"version": "9.9", "source": "s"}) == []
