"""`envsolve run` on hostile inputs: odd audio, odd file names, symlink loops, outputs that cannot be written,
a GPU that is not there. Each run is a real process bounded in time and memory (tests/hostile.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from envsolve.errors import EnvsolveError
from envsolve.pipeline.runner import collect_inputs
from hostile import assert_clean, envsolve, one_line_error, stray_files

from speech import PIPELINE, conversation, needs_av, needs_speech

NO_DRIVER = not any(Path(p).exists() for p in ("/proc/driver/nvidia/version", "/sys/module/nvidia/version"))


def ffmpeg(*arguments: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *arguments], check=True, timeout=60)


def _mp3(path: Path, rate: int, channels: int, seconds: float = 1.5) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"sine=f=440:d={seconds}", "-ar", str(rate), "-ac", str(channels), str(path))
    return path


@needs_av
@pytest.mark.parametrize(("first", "second"), [((44100, 1), (22050, 2)), ((16000, 2), (48000, 1)),
                                               ((32000, 1), (32000, 2))])
def test_an_mp3_that_changes_rate_or_layout_mid_stream_decodes(tmp_path: Path, first: tuple[int, int],
                                                              second: tuple[int, int]) -> None:
    from envsolve.pipeline.audio import decode

    joined = tmp_path / "joined.mp3"
    joined.write_bytes(_mp3(tmp_path / "a.mp3", *first).read_bytes() + _mp3(tmp_path / "b.mp3", *second).read_bytes())
    audio = decode(joined)
    assert 2.8 < audio.duration < 3.3 and audio.samples.dtype.name == "float32"


@needs_av
@pytest.mark.parametrize("step", [37, 97, 501])
def test_a_damaged_mp3_is_audio_corrupt_or_decodes_with_a_warning(tmp_path: Path, step: int) -> None:
    from envsolve.pipeline.audio import decode

    data = bytearray(_mp3(tmp_path / "a.mp3", 44100, 1, 3).read_bytes() + _mp3(tmp_path / "b.mp3", 22050, 2, 3)
                     .read_bytes())
    for index in range(1500, len(data), step):
        data[index] = (data[index] * 31 + 7) % 256
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(data)
    try:
        audio = decode(damaged)
    except EnvsolveError as error:
        assert error.reference in ("audio-corrupt", "audio-truncated"), error.render()
    else:
        assert audio.warnings


def test_inputs_that_loop_or_cannot_be_listed_are_entries_not_exceptions(tmp_path: Path) -> None:
    (tmp_path / "loop-a.wav").symlink_to(tmp_path / "loop-b.wav")
    (tmp_path / "loop-b.wav").symlink_to(tmp_path / "loop-a.wav")
    tree = tmp_path / "tree" / "deep"
    tree.mkdir(parents=True)
    (tree / "up").symlink_to("..")
    (tree / "up2").symlink_to("../..")
    (tree / "x.wav").write_bytes(b"RIFF")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "real.wav").write_bytes(b"RIFF")
    (folder / "link.wav").symlink_to(tree / "x.wav")
    notes: list[str] = []
    started = time.monotonic()
    found = dict(collect_inputs((str(tmp_path / "loop-a.wav"), str(tmp_path / "tree" / "**" / "*.wav"),
                                 str(folder), "~nobody-such/*.wav"), notes))
    assert time.monotonic() - started < 10
    assert str(tree / "x.wav") in found and str(folder / "real.wav") in found
    assert str(folder / "link.wav") not in found and "skipped 1 symbolic link(s) (link.wav)" in notes[0]


def _as_nobody(call: Callable[[], str]) -> str:
    """`call()` in a forked child that dropped root (root lists any folder), its text back through a pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here on, only os._exit
        code = 0
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            os.write(write, call().encode())
        except BaseException as error:
            os.write(write, f"child raised {type(error).__name__}: {error}".encode())
            code = 1
        os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text


def test_an_unreadable_folder_is_one_failed_entry_and_the_rest_go_on() -> None:
    base = Path(tempfile.mkdtemp(prefix="envsolve-locked-", dir="/tmp"))
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir()
        (locked / "x.wav").write_bytes(b"RIFF")
        locked.chmod(0)
        good = base / "good.wav"
        good.write_bytes(b"RIFF")

        def collect() -> str:
            found = collect_inputs((str(locked), str(good), str(locked / "*.wav")))
            return json.dumps([[name, target.reference if isinstance(target, EnvsolveError) else str(target)]
                               for name, target in found])

        found = dict(json.loads(_as_nobody(collect)))
        assert found[str(locked)] == "input-folder-unreadable" and found[str(good)] == str(good)
        assert found[str(locked / "*.wav")] in ("input-no-match", "input-glob-failed")
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)


@needs_speech
@PIPELINE[0]
@PIPELINE[1]
def test_a_hostile_batch_carries_on_and_summarises(tmp_path: Path) -> None:
    good = tmp_path / "in" / "good.wav"
    good.parent.mkdir()
    shutil.copy(conversation(".wav").path, good)
    (tmp_path / "in" / "linked.wav").symlink_to(good)
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    odd = tmp_path / "odd \x1b]0;owned\x07\nname.wav"
    odd.write_bytes(b"not audio at all")
    tree = tmp_path / "tree" / "a"
    tree.mkdir(parents=True)
    (tree / "up").symlink_to("..")
    (tree / "up2").symlink_to("../..")
    out = tmp_path / "out"
    result = envsolve("run", tmp_path / "loop.wav", tmp_path / "in", odd, str(tmp_path / "tree" / "**" / "*.wav"),
                      "-o", out, "--no-diarize", "-f", "txt,json", "--progress", "none", timeout=300)
    text = assert_clean(result, 1, "skipped 1 symbolic link(s) (linked.wav)", "1 transcribed", "audio-not-audio",
                        "\\x1b]0;owned\\x07\\nname.wav")
    assert "Too many levels of symbolic links" in text or "loop" in text
    assert (out / "good.txt").read_text().strip() and stray_files(out) == []
    failed = [line for line in result.stdout.splitlines() if "error[audio-not-audio]" in line]
    assert len(failed) == 1 and "name.wav" in failed[0]  # the newline in the name did not split it


@pytest.mark.parametrize("where", ["file", "under-file", "read-only"])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path: Path, where: str) -> None:
    (tmp_path / "taken").write_text("a file")
    # /sys refuses new folders even to root, so it stands in for an unwritable folder whoever runs the tests.
    output = {"file": tmp_path / "taken", "under-file": tmp_path / "taken" / "sub",
              "read-only": Path("/sys/envsolve-test-output")}[where]
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    started = time.monotonic()
    result = envsolve("run", audio, "-o", output, "--no-diarize", "--progress", "none", timeout=60)
    assert "output-unwritable" in one_line_error(result)
    assert_clean(result, 2)
    assert "model" not in result.stderr and time.monotonic() - started < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "taken"]


@pytest.mark.parametrize("line", ["SPEAKER a 1 abc 1.0 <NA> <NA> A <NA> <NA>", "SPEAKER a 1 0.5",
                                  "SPEAKER a 1 0.5 -2 <NA> <NA> A <NA> <NA>", "\x1b[2J"])
def test_a_malformed_rttm_is_refused_before_any_work(tmp_path: Path, line: str) -> None:
    rttm = tmp_path / "turns.rttm"
    rttm.write_text(line + "\n")
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    result = envsolve("run", audio, "-o", tmp_path / "out", "--diarization", rttm, timeout=60)
    assert "rttm-" in one_line_error(result)
    assert_clean(result, 2)
    assert not (tmp_path / "out").exists()


def test_a_fifo_as_diarization_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "turns.rttm")
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    result = envsolve("run", audio, "-o", tmp_path / "out", "--diarization", tmp_path / "turns.rttm", timeout=60)
    assert "not a regular file" in one_line_error(result)
    assert_clean(result, 2)


@pytest.mark.skipif(not NO_DRIVER, reason="this machine has an NVIDIA driver")
@pytest.mark.parametrize("count", [1, 2])
def test_device_cuda_without_a_driver_is_one_gpu_not_visible(tmp_path: Path, count: int) -> None:
    inputs = []
    for index in range(count):
        inputs.append(tmp_path / f"a{index}.wav")
        inputs[-1].write_bytes(b"RIFF")
    result = envsolve("run", *inputs, "-o", tmp_path / "out", "--device", "cuda", "--no-diarize", timeout=60)
    assert "error[gpu-not-visible]" in one_line_error(result)
    assert_clean(result, 2, "--device cpu")
    assert not (tmp_path / "out").exists()
