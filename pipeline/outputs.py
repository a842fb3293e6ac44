"""Writers for the pipeline's results: JSON, TXT, SRT, VTT, RTTM and TSV, all UTF-8, all atomic.

Every renderer is a pure function from a transcript to text, so the formats are tested as
golden strings; only `write_outputs` touches the disk, through `envsolve.atomic`. A crash or a
full disk while writing leaves the previous file (or none) in place, never half of a new one,
which is what lets a batch resume by trusting every file that exists.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from envsolve import atomic
from envsolve.errors import EnvsolveError
from envsolve.pipeline.model import Segment, Transcript, Turn, transcript_to_json
from envsolve.pipeline.rttm import format_rttm
from envsolve.terminal import printable

__all__ = [
    "ALL",
    "CUE_MAX_CHARS",
    "CUE_MAX_LINES",
    "CUE_MAX_SECONDS",
    "FORMATS",
    "Cue",
    "Format",
    "build_cues",
    "format_json",
    "format_names",
    "format_srt",
    "format_tsv",
    "format_txt",
    "format_vtt",
    "output_paths",
    "select_formats",
    "write_outputs",
]


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}{separator}{millis % 1000:03d}"


def _clock_tenths(seconds: float) -> str:
    tenths = max(0, round(seconds * 10))
    hours, tenths = divmod(tenths, 36_000)
    minutes, tenths = divmod(tenths, 600)
    return f"{hours:02d}:{minutes:02d}:{tenths // 10:02d}.{tenths % 10}"


def format_json(transcript: Transcript, turns: Sequence[Turn] = ()) -> str:
    """The transcript JSON (`envsolve.transcript/1`, docs/transcript-json.md) with the diarization turns."""
    return transcript_to_json(transcript, turns)


def format_txt(transcript: Transcript) -> str:
    """Speaker blocks, one paragraph per change of speaker: `[00:00:01.2] Alice: text ...`."""
    blocks: list[tuple[float, str | None, list[str]]] = []
    for segment in transcript.segments:
        text = " ".join(segment.text.split())  # a newline inside would break the paragraph layout
        if not text:
            continue
        if blocks and blocks[-1][1] == segment.speaker:
            blocks[-1][2].append(text)
        else:
            blocks.append((segment.start, segment.speaker, [text]))
    paragraphs = []
    for start, speaker, texts in blocks:
        label = f" {speaker}:" if speaker is not None else ""
        paragraphs.append(f"[{_clock_tenths(start)}]{label} {' '.join(texts)}\n")
    return "\n".join(paragraphs)


@dataclass(frozen=True)
class Cue:
    """One subtitle of one speaker. `lines` start with `Name: ` after a change of speaker (for
    SRT); `voice_lines` are the same text without it (VTT names the speaker in `<v Name>`)."""

    start: float
    end: float
    speaker: str | None
    lines: tuple[str, ...]
    voice_lines: tuple[str, ...]


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for token in text.split():
        if lines and len(lines[-1]) + 1 + len(token) <= width:
            lines[-1] += " " + token
        else:
            lines.append(token)
    if len(lines) == 2:
        # Greedy filling gives a full line over a stub; viewers read balanced lines faster.
        tokens = text.split()
        splits = [(" ".join(tokens[:cut]), " ".join(tokens[cut:])) for cut in range(1, len(tokens))]
        first, second = min(splits, key=lambda pair: max(len(pair[0]), len(pair[1])))
        lines = [first, second]
    return lines


def _timed_tokens(segment: Segment) -> list[tuple[float, float, str]]:
    if segment.words:
        return [(word.start, word.end, word.text) for word in segment.words if word.text.strip()]
    # No word timings: spread the segment's time over its words in proportion to their length.
    tokens = segment.text.split()
    total = sum(len(token) + 1 for token in tokens) or 1
    timed, offset = [], 0
    for token in tokens:
        start = segment.start + (segment.end - segment.start) * offset / total
        offset += len(token) + 1
        timed.append((start, segment.start + (segment.end - segment.start) * offset / total, " " + token))
    return timed


# Subtitle limits: 42 characters a line, 2 lines, 7 seconds a cue (Netflix's English timed-text style guide).
CUE_MAX_CHARS = 42
CUE_MAX_LINES = 2
CUE_MAX_SECONDS = 7.0


def build_cues(transcript: Transcript) -> list[Cue]:
    """Subtitle cues of at most CUE_MAX_LINES lines of CUE_MAX_CHARS characters and CUE_MAX_SECONDS seconds.

    A cue never spans two segments, so never a change of speaker (attribution splits segments
    there). A single word too long for the limits gets a cue of its own rather than being cut.
    """
    cues: list[Cue] = []
    previous_speaker: str | None = None
    for segment in transcript.segments:
        changed = segment.speaker is not None and segment.speaker != previous_speaker
        prefix = f"{segment.speaker}: " if changed else ""
        pieces: list[tuple[str, list[tuple[float, float, str]]]] = []
        pending: list[tuple[float, float, str]] = []
        for token in _timed_tokens(segment):
            candidate = [*pending, token]
            lines = _wrap(prefix + _join(candidate), CUE_MAX_CHARS)
            fits = len(lines) <= CUE_MAX_LINES and all(len(line) <= CUE_MAX_CHARS for line in lines)
            if pending and not (fits and token[1] - pending[0][0] <= CUE_MAX_SECONDS):
                pieces.append((prefix, pending))
                prefix, candidate = "", [token]
            pending = candidate
        if pending:
            pieces.append((prefix, pending))
            previous_speaker = segment.speaker
        for piece_prefix, tokens in pieces:
            start, end = tokens[0][0], max(token_end for _, token_end, _ in tokens)
            text = _join(tokens)
            cues.append(
                Cue(
                    start,
                    max(start, end),
                    segment.speaker,
                    tuple(_wrap(piece_prefix + text, CUE_MAX_CHARS)),
                    tuple(_wrap(text, CUE_MAX_CHARS)),
                )
            )
    return cues


def _join(tokens: Sequence[tuple[float, float, str]]) -> str:
    # Whisper words carry their own leading space (none in Chinese or Japanese), so concatenate.
    return "".join(token for _, _, token in tokens).strip()


def format_srt(transcript: Transcript) -> str:
    """SubRip subtitles; the first cue after a change of speaker starts with `Name: `."""
    blocks = []
    for number, cue in enumerate(build_cues(transcript), start=1):
        timing = f"{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}"
        blocks.append(f"{number}\n{timing}\n" + "\n".join(cue.lines) + "\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_vtt(transcript: Transcript) -> str:
    """WebVTT subtitles with the speaker as a voice span, `<v Alice>`, on every cue."""
    blocks = ["WEBVTT\n"]
    for cue in build_cues(transcript):
        text = "\n".join(_vtt_escape(line) for line in cue.voice_lines)
        if cue.speaker is not None:
            text = f"<v {_vtt_escape(cue.speaker)}>{text}"
        blocks.append(f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{text}\n")
    return "\n".join(blocks)


def format_tsv(transcript: Transcript) -> str:
    """One row per segment: start and end in seconds, speaker (empty when unknown), text."""
    rows = ["start\tend\tspeaker\ttext\n"]
    for segment in transcript.segments:
        text = " ".join(segment.text.split())  # tabs or newlines inside text would break the columns
        rows.append(f"{segment.start:.3f}\t{segment.end:.3f}\t{segment.speaker or ''}\t{text}\n")
    return "".join(rows)


@dataclass(frozen=True)
class Format:
    """One output format: the file suffix and the renderer (transcript, turns, file stem) -> text."""

    suffix: str
    render: Callable[[Transcript, Sequence[Turn], str], str]


ALL = "all"  # the name that asks for every format

# The one list of formats: the CLI's -f choices and help, the runner's checks and the files written
# all come from here, so a format registered here is a format `envsolve run -f NAME` writes.
# RTTM comes from the turns, not from the words.
FORMATS: dict[str, Format] = {
    "json": Format(".json", lambda transcript, turns, stem: format_json(transcript, turns)),
    "txt": Format(".txt", lambda transcript, turns, stem: format_txt(transcript)),
    "srt": Format(".srt", lambda transcript, turns, stem: format_srt(transcript)),
    "vtt": Format(".vtt", lambda transcript, turns, stem: format_vtt(transcript)),
    "tsv": Format(".tsv", lambda transcript, turns, stem: format_tsv(transcript)),
    "rttm": Format(".rttm", lambda transcript, turns, stem: format_rttm(turns, stem)),
}

_UNWRITABLE = "Choose an output folder you can write to (-o DIR), or free space on that disk."


def format_names() -> list[str]:
    """What `-f` accepts: "all", then every format in FORMATS."""
    return [ALL, *FORMATS]


def select_formats(names: Iterable[str]) -> list[str]:
    """The formats `names` asks for, each once, in order ("all" is every one); unknown names are an error."""
    wanted = list(dict.fromkeys(names))
    unknown = [name for name in wanted if name != ALL and name not in FORMATS]
    if unknown:
        raise EnvsolveError(
            "output-format-unknown",
            f"Unknown output format {', '.join(map(repr, unknown))}.",
            hint=f"Choose from {', '.join(format_names())}.",
        )
    return list(FORMATS) if ALL in wanted else wanted


def output_paths(out_dir: Path | str, stem: str, formats: Iterable[str]) -> dict[str, Path]:
    """Where `write_outputs` puts each of `formats` (already selected) for `stem`."""
    return {name: Path(out_dir) / f"{stem}{FORMATS[name].suffix}" for name in formats}


def check_output_dir(out_dir: Path | str) -> Path:
    """Create `out_dir` if needed and prove it writable (a file made and removed there), before any work:
    `-o` naming a file, a path under a file or a read-only folder is EnvsolveError `output-unwritable` (exit 2)
    instead of one failure per input after each was transcribed."""
    directory = Path(out_dir)
    shown = printable(directory)
    if directory.exists() and not directory.is_dir():
        raise EnvsolveError("output-unwritable", f"The output folder {shown} is a file.",
                            hint="Give -o a folder (it is created when missing), not a file.")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(dir=directory, prefix=".envsolve-check-", suffix=".tmp")
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise EnvsolveError("output-unwritable", f"Cannot write into the output folder {shown}: "
                            f"{error.strerror or error}.", hint=_UNWRITABLE) from None
    return directory


def write_outputs(
    transcript: Transcript,
    turns: Sequence[Turn],
    out_dir: Path | str,
    stem: str,
    formats: Iterable[str] = (ALL,),
) -> dict[str, Path]:
    """Write `stem.<suffix>` in `out_dir` for each format ("all" means every one); return the paths.

    Everything is rendered before the first file is written, so a rendering bug writes nothing.
    """
    wanted = select_formats(formats)
    if not stem or stem in {".", ".."} or "/" in stem or os.sep in stem:
        raise EnvsolveError(
            "output-stem-invalid",
            f"Output name {stem!r} is not a plain file name.",
            hint="Give a name without slashes, such as the audio file's stem (meeting for meeting.wav).",
        )
    directory = Path(out_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EnvsolveError("output-unwritable", f"Cannot create the output folder {directory}: "
                            f"{error.strerror or error}.", hint=_UNWRITABLE) from None
    rendered = {name: FORMATS[name].render(transcript, turns, stem) for name in wanted}
    written = output_paths(directory, stem, wanted)
    for name, text in rendered.items():
        atomic.write_text(written[name], text, hint=_UNWRITABLE)
    return written
