"""Platform, container, OS and FFmpeg parsers on canned text; fuzzed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envsolve.resolver.probe.platforms import (
    arch,
    container_markers,
    detect_platform,
    parse_cgroup,
    parse_ffmpeg_version,
    parse_os_release,
    read_ffmpeg_version,
)

DATA = Path(__file__).parent / "data" / "probe"


@pytest.mark.parametrize(("env", "expected"), [
    ({"COLAB_RELEASE_TAG": "release-colab_20240626"}, "colab"),
    ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle"),
    ({"MODAL_TASK_ID": "ta-1"}, "modal"),
    ({"SM_CURRENT_HOST": "algo-1"}, "sagemaker"),
    ({"RUNPOD_POD_ID": "abc"}, "runpod"),
    ({}, "bare"),
])
def test_platform_from_env(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    assert detect_platform(env, str(tmp_path)) == expected


def test_platform_from_files(tmp_path: Path) -> None:
    (tmp_path / "opt/aws/dlami").mkdir(parents=True)
    assert detect_platform({}, str(tmp_path)) == "aws-dlami"
    other = tmp_path / "c"
    other.mkdir()
    (other / ".dockerenv").write_text("")
    assert detect_platform({}, str(other)) == "docker"


def test_container_markers(tmp_path: Path) -> None:
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/cgroup").write_text("12:devices:/kubepods/burstable/pod1/abc\n")
    (tmp_path / "dev").mkdir()
    markers = container_markers({"NVIDIA_VISIBLE_DEVICES": "void"}, str(tmp_path))
    assert markers.in_container and markers.evidence == ("/proc/1/cgroup names kubepods",)
    assert markers.device_nodes == () and markers.visible_devices == "void"


def test_cgroup_v2_root_is_not_a_container() -> None:
    assert parse_cgroup("0::/\n") is None
    assert parse_cgroup("11:cpuset:/docker/0123abcd\n") == "docker"


def test_os_release() -> None:
    assert parse_os_release((DATA / "os-release-ubuntu.txt").read_text()) == "ubuntu-22.04"
    assert parse_os_release("ID=debian\nVERSION_ID=\"12\"\n") == "debian-12"
    assert parse_os_release("ID=arch\n") == "arch"
    assert parse_os_release("ID=../../etc\n") is None


@pytest.mark.parametrize(("name", "release", "avutil"), [
    ("ffmpeg-debian12.txt", "5.1.6", "57.28.100"),
    ("ffmpeg-ubuntu24.txt", "6.1.1", "58.29.100"),
    ("ffmpeg-git.txt", None, "59.8.100"),
])
def test_ffmpeg_version(name: str, release: str | None, avutil: str) -> None:
    assert parse_ffmpeg_version((DATA / name).read_text()) == (release, avutil)


def test_ffmpeg_here_is_quick_and_clean() -> None:
    text, how = read_ffmpeg_version(timeout=10)
    if text is None:
        assert how
    else:
        release, avutil = parse_ffmpeg_version(text)
        assert release or avutil


def test_arch() -> None:
    assert arch("AMD64") == "x86_64" and arch("arm64") == "aarch64" and arch("riscv64") is None


@given(st.text(max_size=400))
def test_fuzz_parsers(text: str) -> None:
    parse_cgroup(text)
    distro = parse_os_release(text)
    assert distro is None or "/" not in distro
    release, _avutil = parse_ffmpeg_version(text)
    assert release is None or release[0].isdigit()
