"""Read and write RTTM, the NIST diarization format that pyannote, dscore and md-eval use.

One line per turn, ten whitespace-separated fields:

    SPEAKER <uri> <channel> <start> <duration> <NA> <NA> <speaker> <NA> <NA>

Reading is tolerant where tools differ (runs of spaces or tabs, `;;` comment lines, blank lines,
the other NIST record types such as SPKR-INFO, which carry no turn, and writers that stop after
the speaker field) and strict where a mistake would shift the timeline: a bad number, a negative
time or an unknown record type stops the read with the line number and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from envsolve import atomic
from envsolve.errors import EnvsolveError
from envsolve.pipeline.model import Turn

__all__ = ["format_rttm", "parse_rttm", "read_rttm", "write_rttm"]

_LAYOUT = "SPEAKER <uri> <channel> <start> <duration> <NA> <NA> <speaker> <NA> <NA>"

# Record types of the full RTTM specification (NIST RT-09 evaluation plan, appendix A) that
# describe something other than a speaker turn; diarization files may carry them.
_OTHER_TYPES = frozenset(
    {
        "SEGMENT", "NOSCORE", "NO_RT_METADATA", "LEXEME", "NON-LEX", "NON-SPEECH", "FILLER",
        "EDIT", "IP", "END-OF-SENTENCE", "SU", "CB", "A/P", "SPKR-INFO",
    }
)  # fmt: skip


def _malformed(source: str, number: int, line: str, problem: str) -> EnvsolveError:
    return EnvsolveError(
        "rttm-malformed-line",
        f"{source}, line {number}: {problem}.",
        context=f"The line reads: {line.strip()!r}. Expected: {_LAYOUT}.",
        hint=f"Fix or delete line {number} of {source}.",
    )


def _seconds(source: str, number: int, line: str, field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _malformed(source, number, line, f"{field} {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise _malformed(source, number, line, f"{field} {text!r} must be a finite number >= 0")
    return value


def parse_rttm(text: str, *, source: str = "<rttm>") -> dict[str, list[Turn]]:
    """The SPEAKER turns in RTTM text, grouped by file id (uri) in the order the file gives them."""
    turns: dict[str, list[Turn]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith(";;"):
            continue
        if fields[0] in _OTHER_TYPES:
            continue
        if fields[0] != "SPEAKER":
            raise _malformed(source, number, line, f"record type {fields[0]!r} is not SPEAKER")
        # The trailing <NA> fields carry nothing; some writers leave them out, so 8 is enough.
        if len(fields) not in (8, 9, 10):
            raise _malformed(source, number, line, f"{len(fields)} fields where 10 were expected")
        start = _seconds(source, number, line, "start", fields[3])
        duration = _seconds(source, number, line, "duration", fields[4])
        turns.setdefault(fields[1], []).append(Turn(start, start + duration, fields[7]))
    return turns


def read_rttm(path: Path | str) -> dict[str, list[Turn]]:
    """Read an RTTM file (UTF-8); see `parse_rttm`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EnvsolveError(
            "rttm-not-utf8",
            f"{path} is not UTF-8 text (byte {error.start}).",
            hint="Re-encode the file as UTF-8, e.g. with `iconv -t UTF-8`.",
        ) from None
    return parse_rttm(text, source=str(path))


def _token(value: str) -> str:
    # RTTM fields are split on whitespace, so "Alice Smith" would shift every later field for the
    # reader. Renamed speakers often have spaces; joining them with "_" beats failing the run.
    return "_".join(value.split()) or "<NA>"


def format_rttm(turns: Iterable[Turn], uri: str) -> str:
    """RTTM text for `turns` of file `uri`, sorted by time, with millisecond precision.

    Whitespace inside the uri or a speaker label becomes "_" (RTTM cannot hold it).
    """
    lines, uri = [], _token(uri)
    for turn in sorted(turns, key=lambda t: (t.start, t.end, t.speaker)):
        duration, speaker = turn.end - turn.start, _token(turn.speaker)
        lines.append(f"SPEAKER {uri} 1 {turn.start:.3f} {duration:.3f} <NA> <NA> {speaker} <NA> <NA>\n")
    return "".join(lines)


def write_rttm(path: Path | str, turns: Iterable[Turn], uri: str) -> None:
    """Write `turns` to `path` as RTTM, atomically (an unwritable path is EnvsolveError `output-unwritable`)."""
    atomic.write_text(path, format_rttm(turns, uri))
