"""Hostile host snapshots (tests/hostile/snapshots.toml): each is one usage error naming the field, in process
and through `plan` and `doctor`, with no traceback, no hang and no raw control character."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import HOSTS
from envsolve.errors import EnvsolveError
from envsolve.resolver.host import MAX_SNAPSHOT_BYTES, parse_host, read_host
from hostile import assert_clean, envsolve, one_line_error

CASES = tomllib.loads((Path(__file__).parent / "hostile" / "snapshots.toml").read_text())["case"]
DEEP = "[" * 1000 + "]" * 1000
DIGITS = "1" * 5000


def snapshot_text(case: dict[str, Any]) -> str:
    if "raw" in case:
        return str(case["raw"]).replace("@DEEP@", DEEP).replace("@DIGITS@", DIGITS)
    data = json.loads((HOSTS / case["base"]).read_text())
    data.update(json.loads(case["patch"].replace("@DIGITS@", DIGITS)))
    return json.dumps(data).replace('"@BIGINT@"', DIGITS)


def write(tmp_path: Path, case: dict[str, Any]) -> Path:
    path = tmp_path / f"{case['name']}.json"
    path.write_text(snapshot_text(case), encoding="utf-8")
    return path


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_read_host_names_the_field(case: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(EnvsolveError) as caught:
        read_host(write(tmp_path, case))
    assert caught.value.reference == case["reference"] and caught.value.exit_code == 2
    assert case["says"] in caught.value.message, caught.value.message
    assert len(caught.value.render()) < 600


@pytest.mark.parametrize("command", ["plan", "doctor"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_commands_refuse_with_exit_2(case: dict[str, Any], command: str, tmp_path: Path) -> None:
    result = envsolve(command, "--host", write(tmp_path, case), timeout=60)
    assert_clean(result, 2, f"error[{case['reference']}]")
    assert case["says"] in one_line_error(result)


def test_the_corpus_says_why() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)) and all(c.get("why") for c in CASES)


def test_a_snapshot_over_the_size_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("w") as handle:  # valid JSON, so only the cap can refuse it
        handle.write('{"schema": "envsolve.host/1", "notes": ["')
        handle.write("x" * (MAX_SNAPSHOT_BYTES + 10))
        handle.write('"]}')
    result = envsolve("doctor", "--host", big, timeout=30)
    assert "16 MiB" in assert_clean(result, 2, "error[snapshot-too-large]")


def test_a_snapshot_with_too_many_packages_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"schema": "envsolve.host/1", "packages": {f"p{i}": "1.0" for i in range(30_000)}}))
    result = envsolve("doctor", "--host", path, timeout=60)
    assert "at most 20000 entries" in assert_clean(result, 2, "error[bad-snapshot]", "'packages'")


def test_a_fifo_or_device_as_snapshot_does_not_hang(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "host.json"
    os.mkfifo(fifo)
    assert_clean(envsolve("plan", "--host", fifo, timeout=30), 2, "not a regular file")
    assert_clean(envsolve("plan", "--host", "/dev/zero", timeout=30), 2, "not a regular file")


def test_distro_glibc_suffix_is_normalised() -> None:
    """`ldd --version` on Ubuntu prints 2.35-0ubuntu3; the rules compare glibc releases."""
    data = json.loads((HOSTS / "colab-l4.json").read_text())
    data["os"]["glibc"] = "2.35-0ubuntu3"
    assert parse_host(data).os.glibc == "2.35"
    for bad in ("2", "2.35 ubuntu", "ubuntu-2.35", "2.35\n"):
        data["os"]["glibc"] = bad
        with pytest.raises(EnvsolveError, match=r"os\.glibc"):
            parse_host(data)


def test_python_written_as_a_json_number_keeps_its_digits(tmp_path: Path) -> None:
    """3.10 as a JSON number is the float 3.1; the reader keeps the text it was written as."""
    path = tmp_path / "host.json"
    path.write_text('{"schema": "envsolve.host/1", "python": 3.10, "os": {"glibc": 2.35}}')
    host = read_host(path)
    assert host.python == "3.10" and host.os.glibc == "2.35"
    result = envsolve("plan", "--host", path, timeout=60)
    assert "Python 3.10" in assert_clean(result, 0)


def test_escape_sequences_in_snapshot_text_are_escaped(tmp_path: Path) -> None:
    data = json.loads((HOSTS / "colab-l4.json").read_text())
    data["gpus"][0]["name"] = "NVIDIA \x1b]0;owned\x07L4\x1b[2J\u202e\x9b"
    data["notes"] = ["line one\nline two\x1b[31m"]
    path = tmp_path / "host.json"
    path.write_text(json.dumps(data))
    for command in ("plan", "doctor"):
        out = assert_clean(envsolve(command, "--host", path, timeout=60), 0)
        assert "\\x1b]0;owned\\x07" in out
