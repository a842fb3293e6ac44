"""The host snapshot schema: round trips, unknown vs absent, precise errors, no secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import HOSTS, host_data
from envsolve.errors import EnvsolveError
from envsolve.resolver.host import host_to_json, parse_host, read_host


@pytest.mark.parametrize("path", sorted(HOSTS.glob("*.json")), ids=lambda p: p.stem)
def test_round_trip(path: Path) -> None:
    host = read_host(path)
    assert parse_host(host_to_json(host)) == host


def test_unknown_driver_differs_from_no_driver() -> None:
    unknown = parse_host({"python": "3.11"})
    absent = parse_host({"python": "3.11", "driver": None})
    assert not unknown.driver_known and absent.driver_known
    assert "driver" not in host_to_json(unknown) and host_to_json(absent)["driver"] is None


@pytest.mark.parametrize(("patch", "field", "expected"), [
    ({"gpus": [{"name": "L4", "compute_capability": 89}]}, "gpus[0].compute_capability", "8.9"),
    ({"driver": {"version": "five-fifty", "cuda": "12.4"}}, "driver.version", "driver version"),
    ({"os": {"arch": "riscv64"}}, "os.arch", "x86_64 or aarch64"),
    ({"platform": "laptop"}, "platform", "colab"),
    ({"libraries": [{"name": "cudnn", "origin": "apt"}]}, "libraries[0].origin", "system or pip or conda"),
    ({"packages": {"torch": 2.5}}, "packages.torch", "version string"),
    ({"schema": "envsolve.host/2"}, "schema", "envsolve.host/1"),
    ({"gpus": {"name": "L4"}}, "gpus", "a list"),
])
def test_malformed_fields_are_named(patch: dict[str, Any], field: str, expected: str) -> None:
    with pytest.raises(EnvsolveError) as caught:
        parse_host(host_data("cpu-box.json", patch), "host.json")
    error = caught.value
    assert error.reference == "bad-snapshot"
    assert repr(field) in error.message and expected in error.message, error.message
    assert error.hint and "envsolve probe --json" in error.hint


def test_python_as_a_number_is_accepted() -> None:
    assert parse_host({"python": 3.11}).python == "3.11"


def test_tokens_never_enter_a_snapshot() -> None:
    host = parse_host({"env": {"HF_TOKEN": "hf_secret", "LD_LIBRARY_PATH": "/x", "AWS_SECRET_ACCESS_KEY": "k"}})
    assert host.env == {"LD_LIBRARY_PATH": "/x"}
    assert "secret" not in json.dumps(host_to_json(host))


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(EnvsolveError, match="No host snapshot"):
        read_host(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"python": "3.11",}')
    with pytest.raises(EnvsolveError, match=r"not JSON.*line 1"):
        read_host(bad)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(EnvsolveError):
        read_host(binary)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
KEYS = st.sampled_from(["os", "python", "platform", "gpus", "driver", "cuda_toolkits", "libraries", "packages",
                        "env", "loader", "ffmpeg", "notes", "schema", "packages_complete"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSONISH, max_size=6))
def test_fuzz_parse_host_raises_only_envsolve_errors(data: dict[str, Any]) -> None:
    try:
        host = parse_host(data)
    except EnvsolveError:
        return
    assert parse_host(host_to_json(host)) == host


def test_partial_snapshots_are_accepted_and_round_trip() -> None:
    """Bug reports say "installed" without versions: null means installed, version unknown."""
    data = {"schema": "envsolve.host/1", "driver": {"version": None, "cuda": None},
            "cuda_toolkits": [{"version": None, "path": "/usr/local/cuda"}],
            "libraries": [{"name": "cudnn", "version": None, "soname": "libcudnn.so.9"}], "libraries_complete": False,
            "packages": {"faster-whisper": None, "ctranslate2": "4.6.2"}}
    host = parse_host(data)
    assert host.has_driver and host.driver is not None and host.driver.version is None
    assert host.packages == {"faster-whisper": None, "ctranslate2": "4.6.2"}
    assert host.libraries is not None and host.libraries[0].major == 9 and not host.libraries_complete
    assert parse_host(json.loads(json.dumps(host_to_json(host)))) == host
