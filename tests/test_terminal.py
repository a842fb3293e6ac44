"""envsolve.terminal: control characters never reach the terminal raw, and pasted fixes cannot run code."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from envsolve.pipeline.audio import unreadable_hint
from envsolve.terminal import printable, printable_lines
from hostile import RAW_CONTROL

HOSTILE = ["\x1b]0;title\x07", "\x1b[2J\x1b[H", "a\nb", "tab\there", "cr\rover", "\x9b31m", "\u202egnp.exe",
           "nul\x00", "del\x7f", "\ud800"]


@pytest.mark.parametrize("text", HOSTILE)
def test_printable_escapes_every_control_character(text: str) -> None:
    shown = printable(text)
    assert not RAW_CONTROL.search(shown) and "\n" not in shown
    shown.encode("utf-8")  # a lone surrogate is escaped too
    assert printable(shown) == shown  # idempotent: escaping twice changes nothing


def test_printable_lines_keeps_line_breaks_only() -> None:
    assert printable_lines("one\x1b[2J\ntwo\r") == "one\\x1b[2J\ntwo\\r"
    assert printable("plain text, ünïcode") == "plain text, ünïcode"


@pytest.mark.parametrize("name", ["q'; touch PWNED; '.wav", "$(touch PWNED).wav", "a b`touch PWNED`.wav",
                                  "-rf .wav", "new\nline.wav"])
def test_the_chmod_hint_is_safe_to_paste(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.write_bytes(b"x")
    hint = unreadable_hint(target)
    command = hint.removeprefix("Run `").removesuffix("`.")
    assert shlex.split(command)[-1] == str(target)
    subprocess.run(["sh", "-c", command], cwd=tmp_path, check=True, timeout=10)
    assert not (tmp_path / "PWNED").exists()
