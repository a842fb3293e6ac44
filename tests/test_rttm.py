"""RTTM: round trips, tolerance for what other tools write, and errors that point at the bad line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envsolve.errors import EnvsolveError
from envsolve.pipeline.model import Turn
from envsolve.pipeline.rttm import format_rttm, parse_rttm, read_rttm, write_rttm

# Millisecond times survive the writer's three decimals exactly.
millis = st.integers(min_value=0, max_value=36_000_000).map(lambda ms: ms / 1000)
speaker_labels = st.text(st.characters(blacklist_categories=["Z", "C"]), min_size=1, max_size=12)


@st.composite
def turns(draw: st.DrawFn) -> Turn:
    start = draw(millis)
    return Turn(start, round(start + draw(millis) / 100, 3), draw(speaker_labels))


@given(st.lists(turns(), max_size=30))
def test_round_trip(drawn: list[Turn]) -> None:
    parsed = parse_rttm(format_rttm(drawn, "meeting_01"))
    expected = sorted(drawn, key=lambda t: (t.start, t.end, t.speaker))
    got = parsed.get("meeting_01", [])
    assert [(t.speaker, t.start) for t in got] == [(t.speaker, t.start) for t in expected]
    # The duration is written, not the end, so the end may move by rounding; never by a millisecond.
    assert all(abs(a.end - b.end) < 1e-3 for a, b in zip(got, expected, strict=True))


def test_written_layout_is_nist() -> None:
    text = format_rttm([Turn(1.5, 2.25, "SPEAKER_01"), Turn(0.0, 1.0, "Dr Alice Smith")], "my file")
    assert text == (
        "SPEAKER my_file 1 0.000 1.000 <NA> <NA> Dr_Alice_Smith <NA> <NA>\n"
        "SPEAKER my_file 1 1.500 0.750 <NA> <NA> SPEAKER_01 <NA> <NA>\n"
    )


def test_reading_tolerates_spacing_comments_other_records_and_short_lines() -> None:
    text = (
        ";; written by some tool\n"
        "\n"
        "SPKR-INFO a 1 <NA> <NA> <NA> unknown A <NA>\n"
        "SPEAKER  a\t1   0.50   1.25 <NA> <NA> A <NA> <NA>  \n"
        "SPEAKER b 1 3 2 <NA> <NA> B\n"
        "SPEAKER a 1 2.0 0.5 <NA> <NA> B <NA> <NA>\r\n"
    )
    assert parse_rttm(text) == {
        "a": [Turn(0.5, 1.75, "A"), Turn(2.0, 2.5, "B")],
        "b": [Turn(3.0, 5.0, "B")],
    }


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("SPEAKER a 1 0.5", "4 fields where 10 were expected"),
        ("SPEAKER a 1 zero 1.0 <NA> <NA> A <NA> <NA>", "start 'zero' is not a number of seconds"),
        ("SPEAKER a 1 0.5 -1 <NA> <NA> A <NA> <NA>", "duration '-1' must be a finite number >= 0"),
        ("SPEAKER a 1 nan 1 <NA> <NA> A <NA> <NA>", "start 'nan' must be a finite number >= 0"),
        ("SPEKAER a 1 0.5 1 <NA> <NA> A <NA> <NA>", "record type 'SPEKAER' is not SPEAKER"),
        ("SPEAKER a 1 0.5 1 <NA> <NA> A <NA> <NA> extra", "11 fields where 10 were expected"),
    ],
)
def test_malformed_line_names_its_number_and_the_layout(line: str, problem: str) -> None:
    text = "SPEAKER a 1 0.0 1.0 <NA> <NA> A <NA> <NA>\n\n" + line + "\n"
    with pytest.raises(EnvsolveError) as caught:
        parse_rttm(text, source="ref.rttm")
    error = caught.value
    assert error.reference == "rttm-malformed-line"
    assert error.message == f"ref.rttm, line 3: {problem}."
    assert "SPEAKER <uri> <channel> <start> <duration>" in (error.context or "")
    assert error.hint == "Fix or delete line 3 of ref.rttm."


def test_file_round_trip_and_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "out.rttm"
    write_rttm(path, [Turn(0.0, 1.0, "Zoë"), Turn(0.5, 2.0, "Bob")], "x")
    assert read_rttm(path) == {"x": [Turn(0.0, 1.0, "Zoë"), Turn(0.5, 2.0, "Bob")]}
    path.write_bytes(b"SPEAKER x 1 0 1 <NA> <NA> Zo\xeb <NA> <NA>\n")
    with pytest.raises(EnvsolveError) as caught:
        read_rttm(path)
    assert caught.value.reference == "rttm-not-utf8"
