"""Atomic writes (envsolve.atomic): the old file or the new one, never half; no temporary file left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from envsolve import atomic
from envsolve.errors import EnvsolveError


@pytest.mark.parametrize("failing", ["replace", "fsync", "chmod"])
def test_failed_write_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "meeting.srt"
    target.write_text("old subtitles\n", encoding="utf-8")

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, failing, fail)
    with pytest.raises(EnvsolveError) as caught:
        atomic.write_text(target, "new subtitles, much longer than the old ones\n" * 1000, hint="Free some space.")
    monkeypatch.undo()
    assert caught.value.reference == "output-unwritable"
    assert caught.value.message == f"Cannot write {target}: No space left on device."
    assert caught.value.hint == "Free some space."
    assert target.read_text(encoding="utf-8") == "old subtitles\n"
    assert os.listdir(tmp_path) == ["meeting.srt"]


def test_interrupt_mid_write_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # KeyboardInterrupt is not an Exception: the cleanup must still run, and it stays an interrupt.
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_text(tmp_path / "a.txt", "text")
    assert os.listdir(tmp_path) == []


def test_a_missing_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(EnvsolveError) as caught:
        atomic.write_text(tmp_path / "missing" / "x.json", "{}")
    assert caught.value.reference == "output-unwritable"
    assert caught.value.message.startswith(f"Cannot write into {tmp_path / 'missing'}: ")
    assert caught.value.hint == atomic.DEFAULT_HINT


def test_file_and_directory_are_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def recording(descriptor: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file")
        real(descriptor)

    monkeypatch.setattr(atomic.os, "fsync", recording)
    atomic.write_text(tmp_path / "a.txt", "text")
    assert synced == ["file", "dir"] if os.name == "posix" else ["file"]


def test_a_directory_that_cannot_sync_still_gets_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fsync

    def no_directory_sync(descriptor: int) -> None:
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            raise OSError(22, "Invalid argument")  # what file systems without directory fsync say
        real(descriptor)

    monkeypatch.setattr(atomic.os, "fsync", no_directory_sync)
    atomic.write_text(tmp_path / "a.txt", "text")
    assert (tmp_path / "a.txt").read_text() == "text"


def test_rewrite_keeps_mode_and_new_files_follow_umask(tmp_path: Path) -> None:
    kept = tmp_path / "kept.txt"
    kept.write_text("x")
    kept.chmod(0o640)
    atomic.write_text(kept, "y")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "y"
    fresh = tmp_path / "fresh.txt"
    atomic.write_text(fresh, "z")
    plain = tmp_path / "plain.txt"
    plain.write_text("z")  # what a non-atomic open() would have produced
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_utf8_whatever_the_locale(tmp_path: Path) -> None:
    atomic.write_text(tmp_path / "a.txt", "Grüße 東京")
    assert (tmp_path / "a.txt").read_bytes() == "Grüße 東京".encode()
