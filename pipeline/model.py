"""The pipeline's data: words, segments, diarization turns and the transcript that holds them.

Plain frozen dataclasses with no third-party imports, so the attribution and the writers can be
imported and tested where torch and faster-whisper are absent. Times are seconds from the start
of the audio, as floats, exactly as faster-whisper and pyannote report them.

The JSON form is schema `envsolve.transcript/1` (docs/transcript-json.md). Its field names are
WhisperX's (`segments[].words[].word`, `score`, `speaker`; `word_segments`), so scripts written
for WhisperX's JSON read it unchanged.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from envsolve.errors import EnvsolveError
from envsolve.typedjson import Reader, load_json

__all__ = [
    "SCHEMA",
    "Segment",
    "Transcript",
    "Turn",
    "Word",
    "transcript_from_dict",
    "transcript_from_json",
    "transcript_to_dict",
    "transcript_to_json",
]

# Written into every JSON transcript so that a later reader can refuse a shape it does not know.
SCHEMA = "envsolve.transcript/1"
_SCHEMA_NAME = re.compile(r"envsolve\.transcript/(\d+)")

_T = TypeVar("_T")


def _check_span(kind: str, start: float, end: float) -> None:
    # A NaN or a reversed span would silently break the sorted sweep in attribution; refuse it here.
    # One chained comparison (false for NaN) because this runs for every word of a 10-hour file.
    if not -math.inf < start <= end < math.inf:
        finite = math.isfinite(start) and math.isfinite(end)
        problem = "ends before it starts" if finite else "times must be finite"
        raise ValueError(f"{kind} {problem}: start={start!r} end={end!r}")


@dataclass(frozen=True)
class Word:
    """One recognised word; `text` keeps Whisper's leading space so that words join back into text."""

    start: float
    end: float
    text: str
    probability: float | None = None
    speaker: str | None = None

    def __post_init__(self) -> None:
        _check_span("word", self.start, self.end)


@dataclass(frozen=True)
class Segment:
    """A stretch of text, as Whisper cut it or as attribution split it at a speaker change."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None

    def __post_init__(self) -> None:
        _check_span("segment", self.start, self.end)


@dataclass(frozen=True)
class Turn:
    """One diarization turn: `speaker` talks from `start` to `end`. Turns may overlap each other."""

    start: float
    end: float
    speaker: str

    def __post_init__(self) -> None:
        _check_span("turn", self.start, self.end)


@dataclass(frozen=True)
class Transcript:
    """A whole file's result, with what produced it (model, library versions, per-stage timings)."""

    segments: tuple[Segment, ...]
    language: str | None = None
    language_probability: float | None = None
    duration: float = 0.0
    model: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    speakers: tuple[str, ...] = ()

    # dict fields make the generated hash raise; a transcript is a value to compare, not a key.
    __hash__ = None  # type: ignore[assignment]


def _word_to_dict(word: Word) -> dict[str, Any]:
    # `word` and `score` are WhisperX's names (faster-whisper's Word says word and probability).
    return {
        "word": word.text,
        "start": word.start,
        "end": word.end,
        "score": word.probability,
        "speaker": word.speaker,
    }


def _segment_to_dict(segment: Segment) -> dict[str, Any]:
    return {
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "words": [_word_to_dict(word) for word in segment.words],
        "speaker": segment.speaker,
    }


def _turn_to_dict(turn: Turn) -> dict[str, Any]:
    return {"start": turn.start, "end": turn.end, "speaker": turn.speaker}


def transcript_to_dict(transcript: Transcript, turns: Iterable[Turn] = ()) -> dict[str, Any]:
    """The transcript as a JSON-ready dict, with the (possibly overlapping) diarization `turns`.

    `transcript_from_dict` reads the transcript back unchanged; `word_segments` (every word, in
    order, as WhisperX lists them) and `diarization` are written for readers, not read back.
    """
    segments = [_segment_to_dict(segment) for segment in transcript.segments]
    return {
        "schema": SCHEMA,
        "language": transcript.language,
        "language_probability": transcript.language_probability,
        "duration": transcript.duration,
        "model": transcript.model,
        "versions": dict(sorted(transcript.versions.items())),
        "timings": dict(transcript.timings),
        "speakers": list(transcript.speakers),
        "segments": segments,
        "word_segments": [dict(word) for segment in segments for word in segment["words"]],
        "diarization": [_turn_to_dict(t) for t in sorted(turns, key=lambda t: (t.start, t.end, t.speaker))],
    }


def transcript_to_json(transcript: Transcript, turns: Iterable[Turn] = ()) -> str:
    """`transcript_to_dict` as indented UTF-8 JSON text (non-ASCII kept as is)."""
    return json.dumps(transcript_to_dict(transcript, turns), ensure_ascii=False, indent=2) + "\n"


_HINT = "Regenerate the file with `envsolve run`, or fix that field by hand."


def _reader(source: str) -> Reader:
    return Reader(source, "transcript-json-invalid", _HINT)


def _build(read: Reader, where: str, build: Callable[..., _T], *args: Any) -> _T:
    """`build(*args)`, with the dataclasses' span check (start <= end, finite) reported against `where`."""
    try:
        return build(*args)
    except ValueError as error:
        raise read.fail(where, "a span with start <= end", str(error)) from None


def _word_from_dict(read: Reader, data: object, where: str) -> Word:
    data = read.mapping(data, where)
    return _build(
        read,
        where,
        Word,
        read.number(data, "start", where),
        read.number(data, "end", where),
        read.text(data, "word", where),
        read.optional_number(data, "score", where),
        read.optional_text(data, "speaker", where),
    )


def _segment_from_dict(read: Reader, data: object, where: str) -> Segment:
    data = read.mapping(data, where)
    words = tuple(
        _word_from_dict(read, item, f"{where}.words[{index}]")
        for index, item in enumerate(read.listing(data.get("words", []), f"{where}.words"))
    )
    return _build(
        read,
        where,
        Segment,
        read.number(data, "start", where),
        read.number(data, "end", where),
        read.text(data, "text", where),
        words,
        read.optional_text(data, "speaker", where),
    )


def transcript_from_dict(data: Mapping[str, Any], *, source: str = "<json>") -> Transcript:
    """Read a transcript written by `transcript_to_dict`; a wrong shape raises `EnvsolveError`.

    Fields this version does not know are ignored (they may be added within a schema version);
    another schema version is refused, since its fields may mean something else.
    """
    read = _reader(source)
    data = read.mapping(data, "")
    _check_schema(read, data.get("schema"))
    segments = tuple(
        _segment_from_dict(read, item, f"segments[{index}]")
        for index, item in enumerate(read.listing(data.get("segments"), "segments"))
    )
    versions = read.mapping(data.get("versions", {}), "versions")
    timings = read.mapping(data.get("timings", {}), "timings")
    speakers = read.listing(data.get("speakers", []), "speakers")
    if not all(isinstance(value, str) for value in versions.values()):
        raise read.fail("versions", "an object of strings", versions)
    if not all(isinstance(s, str) for s in speakers):
        raise read.fail("speakers", "a list of strings", speakers)
    return Transcript(
        segments=segments,
        language=read.optional_text(data, "language", ""),
        language_probability=read.optional_number(data, "language_probability", ""),
        duration=read.number(data, "duration", ""),
        model=read.text(data, "model", ""),
        versions={str(k): str(v) for k, v in versions.items()},
        timings={str(k): read.number(timings, k, "timings") for k in timings},
        speakers=tuple(speakers),
    )


def _check_schema(read: Reader, schema: object) -> None:
    if schema == SCHEMA:
        return
    if isinstance(schema, str) and _SCHEMA_NAME.fullmatch(schema):
        raise EnvsolveError(
            "transcript-schema-unsupported",
            f"{read.source} is written in schema {schema}; this envsolve reads {SCHEMA} only.",
            hint="Read it with the envsolve that wrote it (or a newer one: `pip install -U envsolve`), or "
            "regenerate it from the audio with this one's `envsolve run`.",
        )
    raise read.fail("schema", f'"{SCHEMA}"', schema)


def transcript_from_json(text: str, *, source: str = "<json>") -> Transcript:
    """Parse JSON text written by `transcript_to_json`."""
    data = load_json(text, source, "transcript-json-invalid", "Regenerate the file with `envsolve run`.")
    return transcript_from_dict(data, source=source)
