"""Writers: golden text for every format, subtitle limits, UTF-8, and atomic replacement on failure."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envsolve.errors import EnvsolveError
from envsolve.pipeline import outputs
from envsolve.pipeline.model import Segment, Transcript, Turn, Word, transcript_from_json
from envsolve.pipeline.outputs import (
    build_cues,
    format_json,
    format_srt,
    format_tsv,
    format_txt,
    format_vtt,
    write_outputs,
)


def sample() -> tuple[Transcript, list[Turn]]:
    """Two speakers, non-ASCII text, markup characters, and a long segment without word timings."""
    alice = (Word(0.5, 0.9, " Grüße", 0.91, "Alice"), Word(0.9, 1.8, " aus Köln!", 0.95, "Alice"))
    bob = (Word(2.0, 2.4, " 東京", 0.7, "Bob"), Word(2.4, 3.2, " is <great>", 0.8, "Bob"))
    long_text = " This segment has no word timings and is long enough to need more than one subtitle cue & more."
    segments = (
        Segment(0.4, 1.8, "Grüße aus Köln!", alice, "Alice"),
        Segment(2.0, 3.3, "東京 is <great>", bob, "Bob"),
        Segment(4.0, 12.5, long_text, (), "Alice"),
        Segment(13.0, 14.0, " Nobody\tknown.", (), None),
    )
    transcript = Transcript(
        segments,
        language="de",
        language_probability=0.93,
        duration=14.5,
        model="tiny",
        versions={"faster-whisper": "1.2.1", "envsolve": "0.1.0"},
        timings={"asr": 1.5, "diarize": 2.25},
        speakers=("Alice", "Bob"),
    )
    turns = [Turn(3.8, 12.6, "Alice"), Turn(0.3, 1.9, "Alice"), Turn(1.9, 3.4, "Bob"), Turn(5.0, 6.0, "Bob")]
    return transcript, turns


def test_txt_golden() -> None:
    assert format_txt(sample()[0]) == (
        "[00:00:00.4] Alice: Grüße aus Köln!\n"
        "\n"
        "[00:00:02.0] Bob: 東京 is <great>\n"
        "\n"
        "[00:00:04.0] Alice: This segment has no word timings and is long enough to need more than one"
        " subtitle cue & more.\n"
        "\n"
        "[00:00:13.0] Nobody known.\n"
    )


def test_srt_golden() -> None:
    # Times of a segment without words are spread by character count: 4.0 + 8.5 * 74/95 = 10.621.
    assert format_srt(sample()[0]) == (
        "1\n00:00:00,500 --> 00:00:01,800\nAlice: Grüße aus Köln!\n"
        "\n"
        "2\n00:00:02,000 --> 00:00:03,200\nBob: 東京 is <great>\n"
        "\n"
        "3\n00:00:04,000 --> 00:00:10,621\nAlice: This segment has no word timings\n"
        "and is long enough to need more than one\n"
        "\n"
        "4\n00:00:10,621 --> 00:00:12,500\nsubtitle cue & more.\n"
        "\n"
        "5\n00:00:13,000 --> 00:00:14,000\nNobody known.\n"
    )


def test_vtt_golden() -> None:
    assert format_vtt(sample()[0]) == (
        "WEBVTT\n"
        "\n"
        "00:00:00.500 --> 00:00:01.800\n<v Alice>Grüße aus Köln!\n"
        "\n"
        "00:00:02.000 --> 00:00:03.200\n<v Bob>東京 is &lt;great&gt;\n"
        "\n"
        "00:00:04.000 --> 00:00:10.621\n<v Alice>This segment has no word timings and\n"
        "is long enough to need more than one\n"
        "\n"
        "00:00:10.621 --> 00:00:12.500\n<v Alice>subtitle cue &amp; more.\n"
        "\n"
        "00:00:13.000 --> 00:00:14.000\nNobody known.\n"
    )


def test_tsv_golden() -> None:
    assert format_tsv(sample()[0]) == (
        "start\tend\tspeaker\ttext\n"
        "0.400\t1.800\tAlice\tGrüße aus Köln!\n"
        "2.000\t3.300\tBob\t東京 is <great>\n"
        "4.000\t12.500\tAlice\tThis segment has no word timings and is long enough to need more than one"
        " subtitle cue & more.\n"
        "13.000\t14.000\t\tNobody known.\n"
    )


def test_rttm_comes_from_the_overlapping_turns_sorted() -> None:
    transcript, turns = sample()
    assert outputs.FORMATS["rttm"].render(transcript, turns, "meeting") == (
        "SPEAKER meeting 1 0.300 1.600 <NA> <NA> Alice <NA> <NA>\n"
        "SPEAKER meeting 1 1.900 1.500 <NA> <NA> Bob <NA> <NA>\n"
        "SPEAKER meeting 1 3.800 8.800 <NA> <NA> Alice <NA> <NA>\n"
        "SPEAKER meeting 1 5.000 1.000 <NA> <NA> Bob <NA> <NA>\n"
    )


# The golden transcript JSON; after a deliberate change of the schema (and docs/transcript-json.md), regenerate
# it with: cd tests && python -c "import test_outputs as t; t.GOLDEN_JSON.write_text(t.format_json(*t.sample()))"
GOLDEN_JSON = Path(__file__).parent / "data" / "transcript-sample.json"


def test_json_golden() -> None:
    text = format_json(*sample())
    assert "Grüße" in text and "\\u" not in text  # UTF-8 as is, not escaped
    assert text == GOLDEN_JSON.read_text(encoding="utf-8")


def test_json_reads_back_to_the_same_transcript_and_text() -> None:
    transcript, turns = sample()
    text = format_json(transcript, turns)
    again = transcript_from_json(text)
    assert again == transcript
    assert format_json(again, turns) == text


def test_a_whisperx_script_reads_our_json_unchanged() -> None:
    """What scripts written for WhisperX's JSON (whisperx/alignment.py's result after assign_word_speakers, written
    by utils.WriteJSON) do with it: segments with start/end/text/speaker, words with word/start/end/score/speaker,
    every word again under word_segments, and the language."""
    result = json.loads(format_json(*sample()))
    seg = result["segments"][1]
    assert (seg["start"], seg["end"], seg["text"], seg["speaker"]) == (2.0, 3.3, "東京 is <great>", "Bob")
    assert seg["words"][0]["word"] == " 東京" and seg["words"][0]["score"] == 0.7
    assert seg["words"][0]["speaker"] == "Bob" and (seg["words"][0]["start"], seg["words"][0]["end"]) == (2.0, 2.4)
    assert [w["word"].strip() for w in result["word_segments"]] == ["Grüße", "aus Köln!", "東京", "is <great>"]
    assert result["word_segments"] == [w for s in result["segments"] for w in s["words"]]
    assert result["language"] == "de"
    lines = [f"[{s['speaker']}] {s['text'].strip()}" for s in result["segments"] if s.get("speaker")]
    assert lines[0] == "[Alice] Grüße aus Köln!"
    # Our extra fields sit beside WhisperX's, so a WhisperX reader never trips on them.
    assert {"schema", "duration", "model", "versions", "timings", "speakers", "diarization"} <= set(result)
    assert result["diarization"][0] == {"start": 0.3, "end": 1.9, "speaker": "Alice"}  # sorted by start


times = st.integers(0, 10_000).map(lambda centis: centis / 100)
words = st.builds(
    lambda start, length, text, score, speaker: Word(start, start + length, text, score, speaker),
    times, times, st.text(max_size=8), st.none() | st.floats(0, 1), st.sampled_from([None, "A", "B"]),
)


@given(st.lists(st.tuples(times, times, st.text(max_size=20), st.lists(words, max_size=4),
                          st.sampled_from([None, "A"])), max_size=5),
       st.none() | st.sampled_from(["en", "de"]), st.dictionaries(st.text(max_size=5), times, max_size=3))
def test_json_round_trip(
    drawn: list[tuple[float, float, str, list[Word], str | None]], language: str | None, timings: dict[str, float]
) -> None:
    segments = tuple(Segment(start, start + length, text, tuple(ws), who) for start, length, text, ws, who in drawn)
    transcript = Transcript(segments, language=language, duration=123.0, model="m", versions={"envsolve": "0"},
                            timings=timings, speakers=("A",))
    assert transcript_from_json(format_json(transcript)) == transcript


def test_unknown_fields_are_ignored_and_other_schema_versions_refused() -> None:
    data = json.loads(format_json(*sample()))
    data["added_later"] = {"anything": 1}
    data["segments"][0]["words"][0]["chars"] = []
    assert transcript_from_json(json.dumps(data)) == sample()[0]
    data["schema"] = "envsolve.transcript/2"
    with pytest.raises(EnvsolveError) as caught:
        transcript_from_json(json.dumps(data), source="new.json")
    assert caught.value.reference == "transcript-schema-unsupported"
    assert caught.value.message == (
        "new.json is written in schema envsolve.transcript/2; this envsolve reads envsolve.transcript/1 only."
    )
    assert "pip install -U envsolve" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(schema="other/9"), "schema"),
        (lambda d: d.pop("schema"), "schema"),
        (lambda d: d["segments"][0]["words"][0].pop("word"), "segments[0].words[0].word"),
        (lambda d: d["segments"][0]["words"][0].update(score=True), "segments[0].words[0].score"),
        (lambda d: d["segments"][0].update(start="soon"), "segments[0].start"),
        (lambda d: d["segments"][1]["words"][0].update(end=1.0), "segments[1].words[0]"),
        (lambda d: d.update(segments={}), "segments"),
    ],
)
def test_bad_json_names_the_field(edit: Callable[[dict[str, Any]], None], field: str) -> None:
    data = json.loads(format_json(sample()[0]))
    edit(data)
    with pytest.raises(EnvsolveError) as caught:
        transcript_from_json(json.dumps(data), source="x.json")
    assert caught.value.reference == "transcript-json-invalid"
    assert f"x.json: field {field!r} should be " in caught.value.message


word_lists = st.lists(
    st.tuples(
        st.integers(0, 30).map(lambda tenths: tenths / 10),  # pause before the word
        st.integers(0, 90).map(lambda tenths: tenths / 10),  # the word's length, sometimes > 7 s
        st.text("abcdé東", min_size=1, max_size=50),  # no spaces: one word is one token
        st.sampled_from(["Alice", "Bob", None]),
    ),
    min_size=1,
    max_size=60,
)


@given(word_lists)
def test_cues_respect_limits_and_never_mix_speakers(
    drawn: list[tuple[float, float, str, str | None]],
) -> None:
    segments: list[Segment] = []
    clock = 0.0
    for pause, length, text, speaker in drawn:
        clock += pause
        word = Word(clock, clock + length, " " + text, None, speaker)
        clock += length
        if segments and segments[-1].speaker == speaker:
            last = segments[-1]
            segments[-1] = Segment(last.start, word.end, last.text + word.text, (*last.words, word), speaker)
        else:
            segments.append(Segment(word.start, word.end, word.text, (word,), speaker))
    cues = build_cues(Transcript(tuple(segments)))
    for cue in cues:
        assert any(s.start <= cue.start <= cue.end <= s.end and s.speaker == cue.speaker for s in segments)
        if len(" ".join(cue.voice_lines).split()) > 1:  # one word alone may break the limits
            assert len(cue.lines) <= outputs.CUE_MAX_LINES == 2
            assert all(len(line) <= outputs.CUE_MAX_CHARS == 42 for line in cue.lines)
            assert cue.end - cue.start <= outputs.CUE_MAX_SECONDS == 7.0
    said = [token for cue in cues for token in " ".join(cue.voice_lines).split()]
    assert said == [w.text.strip() for s in segments for w in s.words]


def test_write_outputs_writes_every_format_in_utf8(tmp_path: Path) -> None:
    transcript, turns = sample()
    written = write_outputs(transcript, turns, tmp_path / "new", "meeting", ["all"])
    assert sorted(written) == ["json", "rttm", "srt", "tsv", "txt", "vtt"]
    for name, path in written.items():
        assert path == tmp_path / "new" / f"meeting.{name}"
        data = path.read_bytes()
        assert data.decode("utf-8") == outputs.FORMATS[name].render(transcript, turns, "meeting")
        assert name == "rttm" or "Grüße".encode() in data
    assert sorted(os.listdir(tmp_path / "new")) == sorted(p.name for p in written.values())


def test_write_outputs_refuses_unknown_format_or_path_stem_before_writing(tmp_path: Path) -> None:
    transcript, turns = sample()
    with pytest.raises(EnvsolveError) as caught:
        write_outputs(transcript, turns, tmp_path, "meeting", ["srt", "docx"])
    assert caught.value.reference == "output-format-unknown" and "docx" in caught.value.message
    with pytest.raises(EnvsolveError, match="plain file name"):
        write_outputs(transcript, turns, tmp_path, "../escape", ["srt"])
    assert list(tmp_path.iterdir()) == []


def test_a_failing_renderer_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(transcript: Transcript, turns: object, stem: str) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setitem(outputs.FORMATS, "vtt", outputs.Format(".vtt", broken))
    with pytest.raises(RuntimeError):
        write_outputs(*sample(), tmp_path, "meeting", ["json", "vtt"])
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_folder_is_a_user_error(tmp_path: Path) -> None:
    # A file where the folder should be: an EnvsolveError the runner records, not an "internal error".
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(EnvsolveError) as caught:
        write_outputs(*sample(), tmp_path / "taken", "meeting", ["txt"])
    assert caught.value.reference == "output-unwritable" and "-o DIR" in (caught.value.hint or "")


def _documented_fields() -> set[str]:
    # The first cell of each table row: `name`, `name[]`, or siblings such as `segments[].start`, `.end`.
    text = (Path(__file__).parent.parent / "docs" / "transcript-json.md").read_text(encoding="utf-8")
    fields: set[str] = set()
    for cell in re.findall(r"^\| (`[^|]+`) \|", text, re.M):
        names = re.findall(r"`([^`]+)`", cell)
        parent = names[0].rpartition(".")[0]
        fields |= {(parent + name if name.startswith(".") else name).removesuffix("[]") for name in names}
    return fields


def test_every_json_field_is_documented() -> None:
    data = json.loads(format_json(*sample()))
    written = set(data) | {f"segments[].{key}" for key in data["segments"][0]}
    written |= {f"words[].{key}" for key in data["segments"][0]["words"][0]}
    assert sorted(written - _documented_fields()) == [], "add these fields to docs/transcript-json.md"
