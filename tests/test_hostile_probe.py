"""The probe on a hostile machine: special files where libraries should be never hang it, truncated files are
judged as glibc judges them, and no external step runs unbounded."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from envsolve.resolver.probe.elf import open_regular
from envsolve.resolver.probe.ldcache import read_ld_so_cache
from envsolve.resolver.probe.loader import dlopen_names, resolve
from envsolve.resolver.probe.platforms import FFMPEG_TIMEOUT_S, read_text
from hostile import assert_clean, envsolve

from fixtures_elf import consumer, fake_lib

SONAMES = ("libcublas.so.12", "libcudnn.so.9", "libnccl.so.2", "libavutil.so.58")


def _fifo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "fifos"
    folder.mkdir()
    for soname in SONAMES:
        os.mkfifo(folder / soname)
    return folder


@pytest.mark.parametrize("command", [("probe",), ("probe", "--json"), ("doctor",)])
def test_fifos_named_like_libraries_do_not_hang_the_probe(command: tuple[str, ...], tmp_path: Path) -> None:
    folder = _fifo_dir(tmp_path)
    started = time.monotonic()
    result = envsolve(*command, env={"LD_LIBRARY_PATH": str(folder)}, timeout=90)
    assert_clean(result, result.returncode if result.returncode in (0, 1) else 0)
    assert time.monotonic() - started < 90


def test_the_readers_refuse_special_files(tmp_path: Path) -> None:
    fifo = _fifo_dir(tmp_path) / "libcublas.so.12"
    with pytest.raises(OSError, match="not a regular file"):
        open_regular(fifo)
    assert read_text(fifo) is None and read_text("/dev/zero") is None
    assert dlopen_names(str(fifo)) == ()
    assert read_ld_so_cache(str(fifo)).reason


def test_the_loader_simulation_names_a_fifo_instead_of_blocking(tmp_path: Path) -> None:
    folder = _fifo_dir(tmp_path)
    lib = fake_lib(tmp_path / "dep" / "libcudnn.so.9", "libcudnn.so.9", "x")
    user = consumer(tmp_path / "app" / "libuser.so", link_dir=lib.parent, needed="libcudnn.so.9")
    found = resolve(str(user), "libcudnn.so.9", env_ld_library_path=str(folder), ld_cache=read_ld_so_cache())
    assert found.resolved is None and found.error and "not a regular file" in found.error


def test_a_truncated_elf_is_not_resolved(tmp_path: Path) -> None:
    """glibc's dlopen says "cannot read file data" for a 64-byte head of a library (tests/test_loader.py
    compares this with the real loader); the simulation must not report it resolved."""
    whole = fake_lib(tmp_path / "whole" / "libnccl.so.2", "libnccl.so.2", "x")
    folder = tmp_path / "llp"
    folder.mkdir()
    (folder / "libnccl.so.2").write_bytes(whole.read_bytes()[:64])
    user = consumer(tmp_path / "app" / "libuser.so", link_dir=whole.parent, needed="libnccl.so.2")
    found = resolve(str(user), "libnccl.so.2", env_ld_library_path=str(folder), ld_cache=read_ld_so_cache())
    assert found.resolved is None and found.error and found.error.endswith("cannot read file data")


def test_a_hung_ffmpeg_is_bounded(tmp_path: Path) -> None:
    """An ffmpeg on PATH that never answers costs the probe at most FFMPEG_TIMEOUT_S."""
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nsleep 60\n")
    fake.chmod(0o755)
    started = time.monotonic()
    result = envsolve("probe", env={"PATH": f"{fake.parent}:{os.environ['PATH']}"}, timeout=60)
    assert_clean(result, 0, "did not answer")
    assert time.monotonic() - started < 30 and FFMPEG_TIMEOUT_S <= 2


def test_a_home_reached_through_a_symlink_is_scrubbed_under_both_names(tmp_path: Path) -> None:
    """The probe records resolved paths; with HOME=/link -> /real the real spelling must become ~ too."""
    import json
    import subprocess
    import sys

    real = tmp_path / "real-home"
    real.mkdir()
    link = tmp_path / "home-link"
    link.symlink_to(real)
    libs = real / "libs"
    libs.mkdir()
    fake_lib(libs / "libcudnn.so.9", "libcudnn.so.9", "x")
    env = {**os.environ, "HOME": str(link), "LD_LIBRARY_PATH": f"{link}/libs:{real}/libs", "container": "s3cr3t-x"}
    proc = subprocess.run([sys.executable, "-m", "envsolve", "probe", "--json"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert str(real) not in proc.stdout and str(link) not in proc.stdout
    assert "s3cr3t-x" not in proc.stdout
    data = json.loads(proc.stdout)
    assert data["env"]["LD_LIBRARY_PATH"] == "~/libs:~/libs"


def test_the_container_variable_is_classified_not_copied() -> None:
    from envsolve.resolver.probe.platforms import classify_container_variable, container_markers

    assert classify_container_variable("podman") == "podman"
    assert classify_container_variable("hf_abc; rm -rf /") == "set"
    markers = container_markers({"container": "token-123"}, root="/nonexistent-root")
    assert "token-123" not in repr(markers) and markers.in_container
