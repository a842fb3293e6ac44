"""Signals and races: SIGTERM is Ctrl-C (exit 130, no temporary file left), a later write removes what a killed
writer left, and two runs into one folder take turns per output instead of redoing each other's work."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envsolve.atomic import STALE_UNOWNED_S, output_lock, write_text
from hostile import RAW_CONTROL, stray_files

from speech import PIPELINE, conversation, needs_speech


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_write_removes_temporaries_of_dead_writers_only(tmp_path: Path) -> None:
    dead = tmp_path / f".out.json.{_dead_pid()}.abc123.tmp"
    live = tmp_path / f".out.json.{os.getppid()}.def456.tmp"
    old = tmp_path / ".out.json.zz9k_q.tmp"  # the layout before pids were in the name
    recent = tmp_path / ".out.json.yy8j_p.tmp"
    other = tmp_path / f".other.json.{_dead_pid()}.abc.tmp"
    for path in (dead, live, old, recent, other):
        path.write_text("partial")
    os.utime(old, (time.time() - STALE_UNOWNED_S - 5,) * 2)
    write_text(tmp_path / "out.json", "{}")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["out.json", live.name, recent.name, other.name])


def test_the_output_lock_leaves_no_file(tmp_path: Path) -> None:
    with output_lock(tmp_path, "talk"):
        assert (tmp_path / ".talk.lock").exists()
    assert list(tmp_path.iterdir()) == []


def test_the_output_lock_makes_another_process_wait(tmp_path: Path) -> None:
    code = ("import sys, time; from envsolve.atomic import output_lock\n"
            "with output_lock(sys.argv[1], 'talk'):\n    print('held', flush=True); time.sleep(1.5)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with output_lock(tmp_path, "talk"):
        waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert waited > 0.5 and list(tmp_path.iterdir()) == []


def _inputs(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    source = conversation(".wav").path
    for index in range(count):
        shutil.copy(source, folder / f"talk{index}.wav")
    return folder


def _run(folder: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "envsolve", "run", str(folder), "-o", str(out), "--no-diarize",
                             "--progress", "none"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_speech
@PIPELINE[0]
@PIPELINE[1]
@pytest.mark.parametrize("delay", [1.0, 1.6, 2.2, 2.8])
def test_sigterm_is_handled_as_ctrl_c(tmp_path: Path, delay: float) -> None:
    out = tmp_path / "out"
    run = _run(_inputs(tmp_path, 6), out)
    time.sleep(delay)
    run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=120)
    if run.returncode == 0:  # finished before the signal: nothing to check about interruption
        return
    assert run.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr + stdout, stderr
    assert not RAW_CONTROL.search(stdout + stderr)
    if out.exists():
        assert stray_files(out) == []
        for transcript in out.glob("*.json"):
            json.loads(transcript.read_text())  # every output that exists is whole


@needs_speech
@PIPELINE[0]
@PIPELINE[1]
def test_two_sigterms_back_to_back_end_the_run_without_a_traceback(tmp_path: Path) -> None:
    run = _run(_inputs(tmp_path, 6), tmp_path / "out")
    time.sleep(1.5)
    run.send_signal(signal.SIGTERM)
    run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode in (0, 130) and "Traceback" not in stderr + stdout, stderr


@needs_speech
@PIPELINE[0]
@PIPELINE[1]
def test_two_runs_into_one_folder_do_each_output_once(tmp_path: Path) -> None:
    folder = _inputs(tmp_path, 4)
    out = tmp_path / "out"
    out.mkdir()
    first, second = _run(folder, out), _run(folder, out)
    done = [proc.communicate(timeout=300) for proc in (first, second)]
    assert first.returncode == second.returncode == 0, done
    counts = [re.search(r"(\d+) transcribed, (\d+) skipped", stdout) for stdout, _ in done]
    assert all(counts), done
    transcribed = sum(int(m.group(1)) for m in counts if m)
    skipped = sum(int(m.group(2)) for m in counts if m)
    assert (transcribed, skipped) == (4, 4), done
    assert stray_files(out) == []
