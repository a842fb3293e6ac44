"""Driver and GPU parsers on canned kernel-module text, NVML records, and fake roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envsolve.resolver.host import GPU, Driver
from envsolve.resolver.probe.nvml import (
    cuda_from_int,
    gpu_passthrough_note,
    parse_gpu_information,
    parse_nvml_record,
    parse_proc_driver_version,
    probe_driver,
    read_nvml,
    redact_uuids,
)
from envsolve.resolver.probe.platforms import ContainerMarkers

DATA = Path(__file__).parent / "data" / "probe"


@pytest.mark.parametrize(("name", "version"), [
    ("proc-version-550.txt", "550.54.15"),
    ("proc-version-570-open.txt", "570.124.06"),
    ("proc-version-535-aarch64.txt", "535.161.08"),
    ("sys-module-version.txt", "580.65.06"),
])
def test_driver_version_from_kernel_module_text(name: str, version: str) -> None:
    assert parse_proc_driver_version((DATA / name).read_text()) == version


@pytest.mark.parametrize("text", ["", "NVRM version: garbage", "Kernel Module", "550", "abc.def"])
def test_driver_version_rejects_garbage(text: str) -> None:
    assert parse_proc_driver_version(text) is None


def test_cuda_version_integer() -> None:
    assert cuda_from_int(12040) == "12.4"
    assert cuda_from_int(13000) == "13.0"
    assert cuda_from_int(11080) == "11.8"
    for bad in (None, -1, 0, 999, True, "12040", 10**9):
        assert cuda_from_int(bad) is None


def test_gpu_model_without_uuid() -> None:
    text = (DATA / "gpu-information-l4.txt").read_text()
    assert parse_gpu_information(text) == "NVIDIA L4"
    assert parse_gpu_information("GPU UUID: GPU-5b3ad6d4-8c6e-1f6a-2c1d-000000000000\n") is None


def test_nvml_record_parses_and_drops_malformed_gpus() -> None:
    record = {"driver": b"550.54.15", "cuda": 12040, "gpus": [
        {"name": b"NVIDIA L4", "cc": (8, 9), "memory_total": 23034 * 2**20},
        {"name": "Tesla T4", "cc": [7, 5], "memory_total": -5},
        {"name": None, "cc": (8, 0)},
        {"name": "GPU-5b3ad6d4-8c6e-1f6a-2c1d-000000000000"},
        "not a gpu",
        {"error": "GPU is lost"},
    ]}
    driver, gpus = parse_nvml_record(record)
    assert driver == Driver("550.54.15", "12.4")
    assert gpus == (GPU("NVIDIA L4", "8.9", 23034), GPU("Tesla T4", "7.5", None))


UUID = "5b3ad6d4-8c6e-1f6a-2c1d-0123456789ab"


@pytest.mark.parametrize(("text", "redacted"), [
    (f"GPU-{UUID} has fallen off the bus", "<redacted> has fallen off the bus"),
    (f"MIG-{UUID}", "MIG-<redacted>"),  # all of it: no tail of the UUID is left
    (f"uuid={UUID.upper()};", "uuid=<redacted>;"),
    (f"({UUID})", "(<redacted>)"),
])
def test_uuids_are_redacted_whole(text: str, redacted: str) -> None:
    assert redact_uuids(text) == redacted


@pytest.mark.parametrize("text", [
    "driver 550.54.15, 00000000:00:03.0",  # versions and PCI bus ids
    "git 3c9a2b1d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
    "build 20240101-1234-5678 of NVIDIA A100-SXM4-80GB",  # shaped like the start of a UUID only
    f"{UUID}0",  # a longer run of hex is not a UUID
])
def test_what_is_not_a_uuid_is_kept(text: str) -> None:
    assert redact_uuids(text) == text


def test_nvml_record_without_driver_version() -> None:
    assert parse_nvml_record({"driver": "n/a", "gpus": []}) == (None, ())


def test_passthrough_note_says_container_without_gpu() -> None:
    markers = ContainerMarkers(True, ("/.dockerenv",), (), "all")
    note = gpu_passthrough_note(markers, "550.54.15")
    assert note is not None
    assert note.startswith("This is a container started without a GPU")
    assert "not mean the GPU is unsupported" in note and "--gpus all" in note
    assert "NVIDIA_VISIBLE_DEVICES=all" in note
    assert gpu_passthrough_note(ContainerMarkers(True, ("/.dockerenv",), ("/dev/nvidia0",), None), None) is None
    assert gpu_passthrough_note(ContainerMarkers(False, (), (), None), None) is None


def test_nvml_absent_here_reports_why() -> None:
    record, why = read_nvml()
    if record is not None:
        pytest.skip("this machine has a working NVML")
    assert why.startswith(("NVML", "nvidia-ml-py"))


def _root(tmp_path: Path, *, driver: str | None = None, container: bool = False, devices: bool = False) -> str:
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/cgroup").write_text("0::/\n")
    (tmp_path / "dev").mkdir()
    if driver:
        gpus = tmp_path / "proc/driver/nvidia/gpus/0000:00:03.0"
        gpus.mkdir(parents=True)
        (tmp_path / "proc/driver/nvidia/version").write_text((DATA / driver).read_text())
        (gpus / "information").write_text((DATA / "gpu-information-l4.txt").read_text())
    if container:
        (tmp_path / ".dockerenv").write_text("")
    if devices:
        (tmp_path / "dev/nvidia0").write_text("")
        (tmp_path / "dev/nvidiactl").write_text("")
    return str(tmp_path)


def test_probe_driver_nothing_at_all(tmp_path: Path) -> None:
    facts = probe_driver({}, _root(tmp_path))
    if facts.source == "NVML":
        pytest.skip("this machine has a working NVML")
    assert facts.driver is None and facts.gpus == ()
    assert facts.notes[0].startswith("no NVIDIA driver reachable")


def test_probe_driver_kernel_module_without_nvml(tmp_path: Path) -> None:
    facts = probe_driver({}, _root(tmp_path, driver="proc-version-550.txt", devices=True))
    if facts.source == "NVML":
        pytest.skip("this machine has a working NVML")
    assert facts.driver == Driver("550.54.15")
    assert facts.gpus == (GPU("NVIDIA L4"),)
    assert "GPU-" not in " ".join(facts.notes)


def test_probe_driver_container_started_without_gpu(tmp_path: Path) -> None:
    root = _root(tmp_path, driver="proc-version-550.txt", container=True)
    facts = probe_driver({"NVIDIA_VISIBLE_DEVICES": "all"}, root)
    if facts.source == "NVML":
        pytest.skip("this machine has a working NVML")
    assert facts.driver is None and facts.gpus == ()
    assert any(n.startswith("This is a container started without a GPU") for n in facts.notes)


@given(st.text(max_size=300))
def test_fuzz_text_parsers(text: str) -> None:
    version = parse_proc_driver_version(text)
    assert version is None or version.replace(".", "").isdigit()
    name = parse_gpu_information(text)
    assert name is None or ("GPU-" not in name and "\n" not in name)


_values = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.binary(max_size=20), st.booleans())


@given(st.dictionaries(st.sampled_from(["driver", "cuda", "gpus"]),
                       st.one_of(_values, st.lists(st.dictionaries(
                           st.sampled_from(["name", "cc", "memory_total", "error"]),
                           st.one_of(_values, st.tuples(st.integers(), st.integers()))), max_size=4))))
def test_fuzz_nvml_record(record: dict[str, object]) -> None:
    driver, gpus = parse_nvml_record(record)
    assert driver is None or driver.version
    assert all(isinstance(g, GPU) and g.name for g in gpus)


def test_no_uuid_calls_in_source() -> None:
    source = (Path(__file__).parent.parent / "resolver" / "probe" / "nvml.py").read_text()
    assert "GetUUID" not in source and "GetSerial" not in source
    assert os.path.exists(DATA)
