"""Typed reads of untrusted JSON: each accessor returns what it promises or fails naming the field.

Host snapshots and transcripts are files people edit by hand and other programs write, so a
wrong value must come back as one EnvsolveError saying which field, what it should be and what
was found, e.g. `host.json: field 'gpus[0].compute_capability' should be a compute capability
such as "8.9", not 89.` Each document type gives its own error reference and hint.

Field paths: `where` is the path of the object being read ("" at the top level, then `os`,
`segments[3]`, `segments[3].words[0]`); a key inside it is `where.key`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from envsolve.errors import EnvsolveError

__all__ = ["Reader", "field_path"]

_SHOWN = 80  # characters of a bad value quoted in the message


def field_path(where: str, key: str) -> str:
    """`key` inside the object at `where` ("" is the top level)."""
    return f"{where}.{key}" if where else key


class Reader:
    """Reads one JSON document from `source`; failures are EnvsolveError(`reference`, ..., hint=`hint`)."""

    def __init__(self, source: str, reference: str, hint: str) -> None:
        self.source = source
        self.reference = reference
        self.hint = hint

    def fail(self, where: str, expected: str, got: object) -> EnvsolveError:
        """The error for field `where` holding `got` where `expected` was due (raise it)."""
        shown = repr(got) if isinstance(got, str) else json.dumps(got, default=repr)
        return EnvsolveError(
            self.reference,
            f"{self.source}: field {where or '(top level)'!r} should be {expected}, not {shown[:_SHOWN]}.",
            hint=self.hint,
        )

    def mapping(self, value: object, where: str) -> Mapping[str, Any]:
        """`value` (found at `where`) as an object."""
        if not isinstance(value, Mapping):
            raise self.fail(where, "an object", value)
        return value

    def listing(self, value: object, where: str) -> list[Any]:
        """`value` (found at `where`) as a list."""
        if not isinstance(value, list):
            raise self.fail(where, "a list", value)
        return value

    def optional_text(
        self,
        data: Mapping[str, Any],
        key: str,
        where: str,
        pattern: re.Pattern[str] | None = None,
        expected: str = "a string",
    ) -> str | None:
        """`data[key]` as a string matching `pattern`, or None when absent or null.

        Where a pattern is given, a bare number is read as its text: `"python": 3.11` is a common
        hand-written slip for `"3.11"`.
        """
        value = data.get(key)
        if value is None:
            return None
        if pattern is not None and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise self.fail(field_path(where, key), expected, value)
        return value

    def text(
        self,
        data: Mapping[str, Any],
        key: str,
        where: str,
        pattern: re.Pattern[str] | None = None,
        expected: str = "a string",
    ) -> str:
        """`data[key]` as a string matching `pattern`; absent or null is an error too."""
        value = self.optional_text(data, key, where, pattern, expected)
        if value is None:
            raise self.fail(field_path(where, key), expected, None)
        return value

    def optional_number(self, data: Mapping[str, Any], key: str, where: str) -> float | None:
        """`data[key]` as a finite float, or None when absent or null."""
        return None if data.get(key) is None else self.number(data, key, where)

    def number(self, data: Mapping[str, Any], key: str, where: str) -> float:
        """`data[key]` as a finite float; absent, null, true/false, NaN or infinite is an error."""
        value = data.get(key)
        # bool is an int subclass; `true` as a time is a bug in whatever wrote the file.
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(field_path(where, key), "a finite number", value)
        return float(value)
