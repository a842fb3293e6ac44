"""One device rule for Whisper (CTranslate2) and pyannote (torch): auto follows what the library sees."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from envsolve.errors import EnvsolveError
from envsolve.pipeline import device


def _library(sees: bool, asked: list[str]) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        asked.append("asked")
        return sees, "fakelib 1.0"

    return probe


@pytest.mark.parametrize(("wanted", "sees", "picked"), [("auto", True, "cuda"), ("auto", False, "cpu"),
                                                         ("cuda", True, "cuda")])
def test_auto_and_cuda(monkeypatch: pytest.MonkeyPatch, wanted: str, sees: bool, picked: str) -> None:
    monkeypatch.setitem(device._LIBRARIES, "torch", _library(sees, []))
    assert device.pick_device(wanted, "torch") == picked


def test_cpu_never_asks_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setitem(device._LIBRARIES, "ctranslate2", _library(True, asked))
    assert device.pick_device("cpu", "ctranslate2") == "cpu" and asked == []


def test_cuda_the_library_cannot_see_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(device._LIBRARIES, "ctranslate2", _library(False, []))
    with pytest.raises(EnvsolveError) as caught:
        device.pick_device("cuda", "ctranslate2")
    error = caught.value
    assert error.reference == "cuda-not-visible" and "ctranslate2 sees no CUDA device" in error.message
    assert error.context == "fakelib 1.0." and "--device cpu" in (error.hint or "")


def test_unknown_device() -> None:
    with pytest.raises(EnvsolveError) as caught:
        device.pick_device("tpu", "torch")
    assert caught.value.reference == "device-unknown" and "auto, cpu, cuda" in (caught.value.hint or "")


def test_import_is_light() -> None:
    code = "import sys, envsolve.pipeline.device; print(sorted({'torch', 'ctranslate2'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
