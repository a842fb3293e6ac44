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
from collections.abc import Callable, Mapping
from typing import Any

from envsolve.errors import EnvsolveError

__all__ = ["MAX_DEPTH", "MAX_TEXT", "NumberText", "Reader", "field_path", "load_json"]

_SHOWN = 80  # characters of a bad value quoted in the message
MAX_DEPTH = 64  # nesting levels; no envsolve document needs more than 6
MAX_TEXT = 65536  # characters in one string (a path, a note); versions have their own, shorter limit


class NumberText(float):
    """A JSON number that remembers how it was written: `3.10` stays "3.10" when read as version text."""

    text: str

    def __new__(cls, literal: str) -> NumberText:
        number = super().__new__(cls, literal)
        number.text = literal
        return number


def _no_duplicates(source: str, reference: str, hint: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise EnvsolveError(reference, f"{source}: key {_show(key)} appears twice in one object, so "
                                    "which value was meant is unknown.", hint=hint)
            out[key] = value
        return out

    return build


def _show(value: str) -> str:
    return ascii(value[:_SHOWN])


MAX_INT_DIGITS = 30  # far above any count, size or id a snapshot or plan holds; int() refuses 4,300 with a traceback


class _HugeInteger:
    """An integer literal too long to be anything real, kept as its length so the field can be named."""

    def __init__(self, literal: str) -> None:
        self.digits = len(literal.lstrip("-"))


def _integer(literal: str) -> int | _HugeInteger:
    return int(literal) if len(literal) <= MAX_INT_DIGITS else _HugeInteger(literal)


def load_json(text: str, source: str, reference: str, hint: str) -> Any:
    """Parse untrusted JSON text: syntax, duplicate keys, nesting deeper than MAX_DEPTH, strings longer than
    MAX_TEXT or holding a lone surrogate (`\\ud800`, which no UTF-8 file can hold) are EnvsolveError
    `reference` naming the place. Floats come back as NumberText."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates(source, reference, hint), parse_float=NumberText,
                          parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise EnvsolveError(reference, f"{source} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                            hint=hint) from None
    except RecursionError:
        raise EnvsolveError(reference, f"{source}: nested deeper than {MAX_DEPTH} levels.", hint=hint) from None
    _check_values(data, source, reference, hint)
    return data


def _check_values(data: Any, source: str, reference: str, hint: str) -> None:
    # Iterative, so a document at the recursion limit cannot blow the stack here either.
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise EnvsolveError(reference, f"{source}: nested deeper than {MAX_DEPTH} levels (at "
                                f"{_show(where or '(top level)')}).", hint=hint)
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, f"{where}.{key}" if where else key, source, reference, hint, is_key=True)
                stack.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, where, source, reference, hint)
        elif isinstance(value, _HugeInteger):
            raise EnvsolveError(reference, f"{source}: field {_show(where or '(top level)')} is a number of "
                                f"{value.digits} digits; the limit is {MAX_INT_DIGITS}.", hint=hint)


def _check_text(value: str, where: str, source: str, reference: str, hint: str, *, is_key: bool = False) -> None:
    what = "key" if is_key else "field"
    if len(value) > MAX_TEXT:
        raise EnvsolveError(reference, f"{source}: {what} {_show(where or '(top level)')} holds {len(value)} "
                            f"characters; the limit is {MAX_TEXT}.", hint=hint)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EnvsolveError(reference, f"{source}: {what} {_show(where or '(top level)')} holds a lone UTF-16 "
                            "surrogate escape (such as \\ud800), which is not text.", hint=hint) from None


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
        hand-written slip for `"3.11"`. A number parsed by `load_json` keeps the text it was written as,
        so `3.10` reads as "3.10", not "3.1".
        """
        value = data.get(key)
        if value is None:
            return None
        if pattern is not None and isinstance(value, int | float) and not isinstance(value, bool):
            value = value.text if isinstance(value, NumberText) else str(value)
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
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
