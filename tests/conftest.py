"""Shared fixtures: the host snapshots under tests/hosts and the case files under tests/cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from envsolve.resolver.host import Host, parse_host

TESTS = Path(__file__).parent
HOSTS = TESTS / "hosts"
CASES = TESTS / "cases"


def host_data(name: str, patch: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HOSTS / name).read_text())
    data.update(patch or {})
    return data


def load_host(name: str, patch: dict[str, Any] | None = None) -> Host:
    return parse_host(host_data(name, patch), name)


def case_files(kind: str) -> list[Path]:
    return sorted((CASES / kind).glob("*.json"))


@pytest.fixture
def cpu_host() -> Host:
    return load_host("cpu-box.json")
