"""The typed JSON reader shared by host snapshots and transcripts: every failure names the field."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from envsolve.errors import EnvsolveError
from envsolve.typedjson import Reader

READ = Reader("doc.json", "doc-invalid", "Fix the field.")
VERSION = re.compile(r"^\d+(\.\d+)*$")


def failure(call: Any) -> EnvsolveError:
    with pytest.raises(EnvsolveError) as caught:
        call()
    assert caught.value.reference == "doc-invalid" and caught.value.hint == "Fix the field."
    return caught.value


def test_nested_paths_and_the_value_found() -> None:
    error = failure(lambda: READ.number({"start": "soon"}, "start", "segments[0]"))
    assert error.message == "doc.json: field 'segments[0].start' should be a finite number, not 'soon'."
    assert "field 'key' " in failure(lambda: READ.text({"key": 1}, "key", "")).message
    assert "field '(top level)' should be an object, not []" in failure(lambda: READ.mapping([], "")).message


@pytest.mark.parametrize("value", [True, math.nan, math.inf, None, "1.0"])
def test_numbers_are_finite_and_not_bool(value: object) -> None:
    failure(lambda: READ.number({"x": value}, "x", ""))


def test_optional_means_absent_or_null() -> None:
    assert READ.optional_number({}, "x", "") is None and READ.optional_number({"x": None}, "x", "") is None
    assert READ.optional_text({"x": None}, "x", "") is None
    assert READ.optional_number({"x": 2}, "x", "") == 2.0
    failure(lambda: READ.text({}, "x", ""))


def test_pattern_and_numbers_as_version_text() -> None:
    assert READ.text({"python": 3.11}, "python", "", VERSION) == "3.11"  # a hand-written slip, accepted
    failure(lambda: READ.text({"name": 3}, "name", ""))  # without a pattern a number is not text
    error = failure(lambda: READ.optional_text({"v": "x1"}, "v", "os", VERSION, 'a version such as "2.35"'))
    assert error.message == "doc.json: field 'os.v' should be a version such as \"2.35\", not 'x1'."


def test_long_values_are_cut() -> None:
    error = failure(lambda: READ.listing({"k": "v" * 500}, "notes"))
    assert len(error.message) < 160
