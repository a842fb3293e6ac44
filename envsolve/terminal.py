"""Text that is safe to put on a terminal.

Snapshot fields, package versions, GPU names and input file names come from files other people wrote.
Printed raw, an escape sequence in one of them sets the window title, clears the screen or rewrites
what the user just read, and a newline splits a one-line error. Every text output goes through here:
`printable` for a value (or a line) that must stay one line, `printable_lines` for a multi-line report
whose own line breaks are kept. Escapes are written as Python writes them (`\\x1b`, `\\n`, `\\u202e`), so
the text stays readable and nothing is lost. JSON outputs need none of this: `json.dumps` escapes
control characters itself.
"""

from __future__ import annotations

import re

__all__ = ["printable", "printable_lines"]

# C0 controls, DEL and C1 controls (0x9b is a one-byte CSI on some terminals), the bidirectional
# overrides and isolates that reorder what is shown (CVE-2021-42574), and lone surrogates, which
# cannot be written as UTF-8 at all.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_LINE_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    if char == "\t":
        return "\\t"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` (str() of it) with every control character escaped, newlines and tabs included: one line."""
    return _UNSAFE.sub(_escape, str(text))


def printable_lines(text: str) -> str:
    """`text` with every control character but the newline escaped: a report keeps its lines."""
    return _LINE_UNSAFE.sub(_escape, text)
