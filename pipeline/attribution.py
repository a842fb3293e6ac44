"""Give every word a speaker from the diarization, then split segments where the speaker changes.

The rule, for a word spanning [s, e] (a segment without word timings counts as one word):

1. Overlap. Each speaker scores the summed length of the intersections of [s, e] with that
   speaker's turns (summed, as WhisperX does, so that one speaker's turn broken by a short
   interjection still counts whole). The highest score wins if it is above zero.
   Ties go to the speaker whose overlapping turn starts first, then to the smaller label.
2. Nearest turn. With no overlap (the word lies in a gap between turns, or has zero length),
   the turn at the smallest distance max(turn.start - e, s - turn.end, 0) wins if that
   distance is at most `max_gap` seconds; ties go to the earlier turn start, then the smaller
   label. A zero-length word inside a turn is at distance 0 from it, so it takes that turn.
3. Otherwise the word gets no speaker (None).

Turns of zero length are ignored: they cover no time and pyannote never emits them on purpose.

WhisperX (`whisperx/diarize.py`, 3.8.6) queries every turn that starts before each word ends,
which costs O((W + S) * T). Here one sweep walks words and turns in time order: sorting costs
O((W + T) log(W + T)); the sweep visits each turn once, plus, for each word, the turns that
actually overlap it (bounded by how many speakers talk at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from envsolve.errors import EnvsolveError
from envsolve.pipeline.model import Segment, Transcript, Turn, Word

__all__ = [
    "DEFAULT_MAX_GAP",
    "assign_speakers",
    "attribute",
    "parse_speaker_names",
    "rename_speakers",
    "rename_turns",
    "split_at_speaker_changes",
]

# A word more than a second away from any turn is more likely noise the diarizer skipped than a
# continuation of the nearest speaker; a second still bridges the usual pause between words.
DEFAULT_MAX_GAP = 1.0


def _pick(
    s: float, e: float, active: list[Turn], latest_ended: Turn | None, upcoming: Turn | None, max_gap: float
) -> str | None:
    totals: dict[str, float] = {}
    first_start: dict[str, float] = {}
    for turn in active:
        overlap = min(e, turn.end) - max(s, turn.start)
        if overlap > 0:
            if turn.speaker in totals:
                totals[turn.speaker] += overlap
            else:
                # `active` is in start order, so the first turn seen is the speaker's earliest.
                totals[turn.speaker] = overlap
                first_start[turn.speaker] = turn.start
    if len(totals) == 1:
        return next(iter(totals))
    if totals:
        return min(totals, key=lambda speaker: (-totals[speaker], first_start[speaker], speaker))
    # No overlap: the nearest turn is among those still active (touching, or starting after e),
    # the latest one that ended before s, and the next one not yet reached by the sweep.
    best: tuple[float, float, str] | None = None
    candidates: list[Turn | None] = [*active, latest_ended, upcoming]
    for near in candidates:
        if near is not None:
            key = (max(near.start - e, s - near.end, 0.0), near.start, near.speaker)
            if best is None or key < best:
                best = key
    if best is not None and best[0] <= max_gap:
        return best[2]
    return None


def assign_speakers(
    spans: Sequence[tuple[float, float]], turns: Iterable[Turn], *, max_gap: float = DEFAULT_MAX_GAP
) -> list[str | None]:
    """The speaker of each (start, end) span, in the order given, by the rule in this module's doc.

    The answer depends only on the set of turns, not on their order.
    """
    if not max_gap >= 0:  # also refuses NaN
        raise ValueError(f"max_gap must be >= 0 seconds, got {max_gap!r}")
    ordered = sorted((t for t in turns if t.end > t.start), key=lambda t: (t.start, t.speaker, t.end))
    result: list[str | None] = [None] * len(spans)
    active: list[Turn] = []
    latest_ended: Turn | None = None
    reached = 0
    for index in sorted(range(len(spans)), key=spans.__getitem__):
        s, e = spans[index]
        while reached < len(ordered) and ordered[reached].start <= e:
            active.append(ordered[reached])
            reached += 1
        # Words come in start order, so a turn that ended before this word cannot overlap any
        # later word either; it stays only as the best "previous turn" for words in gaps.
        if any(turn.end < s for turn in active):
            still: list[Turn] = []
            for turn in active:
                if turn.end >= s:
                    still.append(turn)
                elif latest_ended is None or (-turn.end, turn.start, turn.speaker) < (
                    -latest_ended.end,
                    latest_ended.start,
                    latest_ended.speaker,
                ):
                    latest_ended = turn
            active = still
        upcoming = ordered[reached] if reached < len(ordered) else None
        result[index] = _pick(s, e, active, latest_ended, upcoming, max_gap)
    return result


def split_at_speaker_changes(segment: Segment) -> list[Segment]:
    """The segment cut into runs of words with the same speaker (None counts as a speaker).

    Words keep their times; a piece's text is rebuilt from its words. The first piece keeps the
    segment's start and the last its end, so the pieces still cover what the segment covered.
    """
    if not segment.words:
        return [segment]
    runs: list[list[Word]] = [[segment.words[0]]]
    for word in segment.words[1:]:
        if word.speaker == runs[-1][-1].speaker:
            runs[-1].append(word)
        else:
            runs.append([word])
    if len(runs) == 1:
        return [replace(segment, speaker=segment.words[0].speaker)]
    pieces = []
    for number, run in enumerate(runs):
        start = min(segment.start, run[0].start) if number == 0 else run[0].start
        end = max(segment.end, run[-1].end) if number == len(runs) - 1 else run[-1].end
        text = "".join(word.text for word in run).strip()
        pieces.append(Segment(start, max(start, end), text, tuple(run), run[0].speaker))
    return pieces


def attribute(
    transcript: Transcript,
    turns: Sequence[Turn],
    *,
    exclusive: Sequence[Turn] | None = None,
    max_gap: float = DEFAULT_MAX_GAP,
) -> Transcript:
    """Assign speakers to every word (or wordless segment) and split segments at speaker changes.

    `exclusive` is pyannote 4's exclusive diarization (at most one speaker at a time); when given
    it is used instead of `turns`, because it was built for matching words to speakers. `turns`
    itself is not changed and stays the source for RTTM. The transcript's `speakers` lists every
    label found in either diarization, sorted.
    """
    source = turns if exclusive is None else exclusive
    spans: list[tuple[float, float]] = []
    for segment in transcript.segments:
        if segment.words:
            spans.extend((word.start, word.end) for word in segment.words)
        else:
            spans.append((segment.start, segment.end))
    labels = iter(assign_speakers(spans, source, max_gap=max_gap))
    segments: list[Segment] = []
    for segment in transcript.segments:
        if segment.words:
            # The constructor, not dataclasses.replace: three times faster over 90k words.
            words = tuple(Word(w.start, w.end, w.text, w.probability, next(labels)) for w in segment.words)
            segments.extend(split_at_speaker_changes(replace(segment, words=words)))
        else:
            segments.append(replace(segment, speaker=next(labels)))
    speakers = {turn.speaker for turn in turns} | {turn.speaker for turn in exclusive or ()}
    return replace(transcript, segments=tuple(segments), speakers=tuple(sorted(speakers)))


def parse_speaker_names(spec: str) -> dict[str, str]:
    """Read `SPEAKER_00=Alice,SPEAKER_01=Bob` into a mapping from diarization label to name."""
    names: dict[str, str] = {}
    for number, item in enumerate(spec.split(","), start=1):
        label, equals, name = (part.strip() for part in item.partition("="))
        if not equals or not label or not name:
            raise EnvsolveError(
                "speaker-names-invalid",
                f"Speaker name entry {number} ({item.strip()!r}) is not LABEL=Name.",
                hint="Write the names as SPEAKER_00=Alice,SPEAKER_01=Bob (labels as in the RTTM).",
            )
        if label in names:
            raise EnvsolveError(
                "speaker-names-invalid",
                f"Speaker label {label} is named twice ({names[label]!r} and {name!r}).",
                hint=f"Keep one entry for {label}.",
            )
        names[label] = name
    return names


def _rename(label: str | None, names: Mapping[str, str]) -> str | None:
    return None if label is None else names.get(label, label)


def rename_speakers(transcript: Transcript, names: Mapping[str, str]) -> Transcript:
    """The transcript with diarization labels replaced by names; labels not in `names` stay."""
    segments = tuple(
        replace(
            segment,
            speaker=_rename(segment.speaker, names),
            words=tuple(replace(word, speaker=_rename(word.speaker, names)) for word in segment.words),
        )
        for segment in transcript.segments
    )
    # Two labels may be given one name (the diarizer split one person); list the name once.
    speakers = tuple(dict.fromkeys(names.get(label, label) for label in transcript.speakers))
    return replace(transcript, segments=segments, speakers=speakers)


def rename_turns(turns: Iterable[Turn], names: Mapping[str, str]) -> list[Turn]:
    """The turns with labels replaced by names, for RTTM written with the same names."""
    return [replace(turn, speaker=names.get(turn.speaker, turn.speaker)) for turn in turns]
