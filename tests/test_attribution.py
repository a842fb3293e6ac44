"""Word-to-speaker attribution: properties against a brute-force reference, and the documented rules.

Times are drawn on a 1/8 s grid: binary fractions add exactly in floating point, so genuine ties
occur (and exercise the tie-breaking) and the sweep and the reference cannot differ by rounding.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envsolve.errors import EnvsolveError
from envsolve.pipeline.attribution import (
    assign_speakers,
    attribute,
    parse_speaker_names,
    rename_speakers,
    rename_turns,
    split_at_speaker_changes,
)
from envsolve.pipeline.model import Segment, Transcript, Turn, Word

times = st.integers(min_value=0, max_value=160).map(lambda eighths: eighths / 8)
lengths = st.integers(min_value=0, max_value=24).map(lambda eighths: eighths / 8)
labels = st.sampled_from(["A", "B", "C", "SPEAKER_00"])


@st.composite
def spans(draw: st.DrawFn) -> tuple[float, float]:
    start = draw(times)
    return start, start + draw(lengths)


@st.composite
def turns(draw: st.DrawFn) -> Turn:
    start, end = draw(spans())
    return Turn(start, end, draw(labels))


turn_lists = st.lists(turns(), max_size=25)
span_lists = st.lists(spans(), max_size=40)
gaps = st.sampled_from([0.0, 0.5, 1.0, 3.0])


def distance(span: tuple[float, float], turn: Turn) -> float:
    return max(turn.start - span[1], span[0] - turn.end, 0.0)


def reference(span: tuple[float, float], all_turns: list[Turn], max_gap: float) -> str | None:
    """The rule of attribution.py's docstring, checked against every turn: O(W*T)."""
    real = [turn for turn in all_turns if turn.end > turn.start]
    totals: dict[str, float] = {}
    first: dict[str, float] = {}
    for turn in real:
        overlap = min(span[1], turn.end) - max(span[0], turn.start)
        if overlap > 0:
            totals[turn.speaker] = totals.get(turn.speaker, 0.0) + overlap
            first[turn.speaker] = min(first.get(turn.speaker, turn.start), turn.start)
    if totals:
        return min(totals, key=lambda speaker: (-totals[speaker], first[speaker], speaker))
    near = [(distance(span, turn), turn.start, turn.speaker) for turn in real]
    if near and min(near)[0] <= max_gap:
        return min(near)[2]
    return None


@settings(max_examples=400)
@given(span_lists, turn_lists, gaps)
def test_matches_brute_force_reference(words: list[tuple[float, float]], diar: list[Turn], gap: float) -> None:
    assert assign_speakers(words, diar, max_gap=gap) == [reference(w, diar, gap) for w in words]


@given(span_lists, turn_lists, gaps)
def test_none_exactly_when_no_turn_within_bound(words: list[tuple[float, float]], diar: list[Turn], gap: float) -> None:
    real = [turn for turn in diar if turn.end > turn.start]
    for word, speaker in zip(words, assign_speakers(words, diar, max_gap=gap), strict=True):
        within = [turn for turn in real if distance(word, turn) <= gap]
        assert (speaker is None) == (not within)
        if speaker is not None:
            assert speaker in {turn.speaker for turn in within}


@given(span_lists, turn_lists, st.randoms(use_true_random=False))
def test_independent_of_turn_order(words: list[tuple[float, float]], diar: list[Turn], rng: random.Random) -> None:
    shuffled = list(diar)
    rng.shuffle(shuffled)
    assert assign_speakers(words, shuffled) == assign_speakers(words, diar)


@given(span_lists, turn_lists, st.randoms(use_true_random=False))
def test_word_order_only_permutes_answers(
    words: list[tuple[float, float]], diar: list[Turn], rng: random.Random
) -> None:
    order = list(range(len(words)))
    rng.shuffle(order)
    answers = assign_speakers(words, diar)
    assert assign_speakers([words[i] for i in order], diar) == [answers[i] for i in order]


def test_tie_on_overlap_goes_to_earlier_turn_then_smaller_label() -> None:
    # Half of the word each: the turn that started first wins, whichever way the list is given.
    assert assign_speakers([(0.0, 1.0)], [Turn(0.5, 2.0, "A"), Turn(-1.0, 0.5, "Z")]) == ["Z"]
    assert assign_speakers([(0.0, 1.0)], [Turn(-1.0, 0.5, "Z"), Turn(0.5, 2.0, "A")]) == ["Z"]
    # Same start, same overlap (overlapping speech): the smaller label.
    for diar in ([Turn(0.0, 1.0, "B"), Turn(0.0, 1.0, "A")], [Turn(0.0, 1.0, "A"), Turn(0.0, 1.0, "B")]):
        assert assign_speakers([(0.0, 1.0)], diar) == ["A"]


def test_overlap_is_summed_per_speaker() -> None:
    # A's two pieces (0.3 + 0.3) beat B's one longer piece (0.4).
    diar = [Turn(0.0, 0.3, "A"), Turn(0.3, 0.7, "B"), Turn(0.7, 1.0, "A")]
    assert assign_speakers([(0.0, 1.0)], diar) == ["A"]


def test_gap_words_take_nearest_turn_within_bound() -> None:
    diar = [Turn(0.0, 1.0, "A"), Turn(3.0, 4.0, "B")]
    words = [(1.25, 1.5), (2.5, 2.75), (1.75, 2.25), (6.0, 6.5), (-2.0, -1.5)]
    # nearer A; nearer B; equidistant -> earlier turn (A); 2 s from B; 1.5 s before A.
    assert assign_speakers(words, diar) == ["A", "B", "A", None, None]
    assert assign_speakers(words, diar, max_gap=2.0) == ["A", "B", "A", "B", "A"]


def test_zero_length_word_takes_the_turn_around_it() -> None:
    diar = [Turn(0.0, 1.0, "A"), Turn(1.0, 2.0, "B"), Turn(5.0, 6.0, "C")]
    assert assign_speakers([(0.5, 0.5), (1.5, 1.5), (1.0, 1.0)], diar, max_gap=0.0) == ["A", "B", "A"]


def test_zero_length_turns_are_ignored() -> None:
    assert assign_speakers([(1.0, 1.0), (0.0, 2.0)], [Turn(1.0, 1.0, "A")]) == [None, None]


def test_bad_max_gap_is_refused() -> None:
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="max_gap"):
            assign_speakers([(0.0, 1.0)], [], max_gap=bad)


def make_transcript() -> Transcript:
    words = (
        Word(0.0, 0.5, " Hello", 0.9),
        Word(0.5, 1.0, " there.", 0.8),
        Word(1.5, 2.0, " Hi", 0.9),
        Word(2.0, 2.5, " Alice.", 0.7),
    )
    return Transcript(
        segments=(Segment(0.0, 2.75, " Hello there. Hi Alice.", words), Segment(9.0, 10.0, " No words.")),
        language="en",
        model="tiny.en",
    )


def test_exclusive_diarization_is_preferred() -> None:
    overlapping = [Turn(0.0, 3.0, "SPEAKER_00"), Turn(1.2, 2.6, "SPEAKER_01")]
    exclusive = [Turn(0.0, 1.2, "SPEAKER_00"), Turn(1.2, 2.6, "SPEAKER_01")]
    plain = attribute(make_transcript(), overlapping)
    preferred = attribute(make_transcript(), overlapping, exclusive=exclusive)
    assert [s.speaker for s in plain.segments] == ["SPEAKER_00", None]
    assert [s.speaker for s in preferred.segments] == ["SPEAKER_00", "SPEAKER_01", None]
    assert preferred.segments[:2] == attribute(make_transcript(), exclusive).segments[:2]


def test_segments_split_where_speaker_changes() -> None:
    diar = [Turn(0.0, 1.2, "SPEAKER_00"), Turn(1.2, 2.6, "SPEAKER_01"), Turn(8.5, 10.0, "SPEAKER_00")]
    result = attribute(make_transcript(), diar)
    assert [(s.start, s.end, s.text, s.speaker) for s in result.segments] == [
        (0.0, 1.0, "Hello there.", "SPEAKER_00"),
        (1.5, 2.75, "Hi Alice.", "SPEAKER_01"),
        (9.0, 10.0, " No words.", "SPEAKER_00"),
    ]
    assert [w.speaker for s in result.segments for w in s.words] == ["SPEAKER_00"] * 2 + ["SPEAKER_01"] * 2
    assert result.speakers == ("SPEAKER_00", "SPEAKER_01")
    assert result.language == "en" and result.model == "tiny.en"


@given(st.lists(st.sampled_from(["A", "B", None]), min_size=1, max_size=30))
def test_split_keeps_every_word_once_and_never_mixes_speakers(speakers: list[str | None]) -> None:
    words = tuple(Word(i, i + 0.5, f" w{i}", speaker=s) for i, s in enumerate(speakers))
    segment = Segment(-1.0, len(words) + 1.0, "".join(w.text for w in words), words)
    pieces = split_at_speaker_changes(segment)
    assert tuple(w for piece in pieces for w in piece.words) == words
    for before, after in itertools.pairwise(pieces):
        assert before.speaker != after.speaker
        assert before.end <= after.start
    for piece in pieces:
        assert {w.speaker for w in piece.words} == {piece.speaker}
        assert piece.text == "".join(w.text for w in piece.words).strip() or len(pieces) == 1
    assert pieces[0].start == segment.start and pieces[-1].end == segment.end


def test_speaker_names_are_parsed_and_applied_everywhere() -> None:
    names = parse_speaker_names("SPEAKER_00=Alice, SPEAKER_01 = Bob Smith")
    assert names == {"SPEAKER_00": "Alice", "SPEAKER_01": "Bob Smith"}
    diar = [Turn(0.0, 1.2, "SPEAKER_00"), Turn(1.2, 2.6, "SPEAKER_01"), Turn(3.0, 4.0, "SPEAKER_02")]
    renamed = rename_speakers(attribute(make_transcript(), diar), names)
    assert renamed.speakers == ("Alice", "Bob Smith", "SPEAKER_02")
    assert [s.speaker for s in renamed.segments] == ["Alice", "Bob Smith", None]
    assert {w.speaker for s in renamed.segments for w in s.words} == {"Alice", "Bob Smith"}
    assert [t.speaker for t in rename_turns(diar, names)] == ["Alice", "Bob Smith", "SPEAKER_02"]


@pytest.mark.parametrize("spec", ["SPEAKER_00", "SPEAKER_00=", "=Alice", "A=x,A=y", "A=x,,B=y"])
def test_bad_speaker_names_say_the_expected_form(spec: str) -> None:
    with pytest.raises(EnvsolveError) as caught:
        parse_speaker_names(spec)
    assert caught.value.reference == "speaker-names-invalid"
    assert "SPEAKER_00=Alice" in (caught.value.hint or "") or "named twice" in caught.value.message
