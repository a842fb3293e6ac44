"""The bundled two-speaker sample and the speech synthesizer that made it.

The sample is a short English conversation spoken by two espeak-ng voices, with its text and its
turn times known exactly because they come from the script below and from the synthesized audio
itself. `envsolve run --sample` transcribes it offline; the tests synthesize fresh conversations
with the same code, so the sample and the tests cannot drift apart.

Regenerate the committed files (needs espeak-ng and sox, both from Debian):

    python -m envsolve.pipeline.sample envsolve/data

numpy is imported inside functions: this module is reachable from the light CLI.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from envsolve.errors import EnvsolveError
from envsolve.pipeline.model import Turn
from envsolve.pipeline.rttm import format_rttm, read_rttm

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SAMPLE_NAME",
    "SAMPLE_SCRIPT",
    "VOICES",
    "Conversation",
    "Line",
    "SampleFiles",
    "reference_text",
    "sample_files",
    "synthesize",
]

SAMPLE_NAME = "two-speakers"

# Two espeak-ng voice variants that differ in accent and pitch, so a diarizer has something to
# separate; mbrola voices would sound better but need Debian packages that are not always there.
VOICES = {"SPEAKER_00": "en-us+m3", "SPEAKER_01": "en-gb+f2"}
_WORDS_PER_MINUTE = 160  # espeak-ng -s
_LEAD_S = 0.3  # silence before the first line
_GAP_S = 0.4  # silence after each line


@dataclass(frozen=True)
class Line:
    """One turn of a script: who says what."""

    speaker: str
    text: str


SAMPLE_SCRIPT: tuple[Line, ...] = (
    Line("SPEAKER_00", "Good morning. Did you get the report I sent yesterday?"),
    Line("SPEAKER_01", "Yes, I read it last night. The numbers look much better."),
    Line("SPEAKER_00", "Great. Let us share it with the team today."),
    Line("SPEAKER_01", "I will send it after lunch."),
)


@dataclass(frozen=True)
class Conversation:
    """A synthesized conversation: the audio file, what was said, and when each speaker spoke."""

    path: Path
    lines: tuple[Line, ...]
    turns: tuple[Turn, ...]
    duration: float

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines)


@dataclass(frozen=True)
class SampleFiles:
    """Where the bundled sample's audio, reference RTTM and reference text are."""

    audio: Path
    rttm: Path
    text: Path


def sample_files() -> SampleFiles:
    """The bundled sample (package data under envsolve/data)."""
    data = Path(str(resources.files("envsolve") / "data"))
    files = SampleFiles(data / f"{SAMPLE_NAME}.flac", data / f"{SAMPLE_NAME}.rttm", data / f"{SAMPLE_NAME}.txt")
    missing = [str(path) for path in (files.audio, files.rttm, files.text) if not path.is_file()]
    if missing:
        raise EnvsolveError(
            "sample-missing",
            f"The bundled sample is not installed ({', '.join(missing)}).",
            hint="Reinstall envsolve (`pip install --force-reinstall envsolve`), or regenerate it with "
            "`python -m envsolve.pipeline.sample envsolve/data` in a source checkout.",
        )
    return files


def reference_text(path: Path) -> list[Line]:
    """Read a reference text written by `write_sample` (`SPEAKER: text` per line)."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        speaker, _, text = raw.partition(": ")
        if text:
            lines.append(Line(speaker, text))
    return lines


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise EnvsolveError(
            "speech-tool-missing",
            f"{name} is not installed; it is needed to synthesize test speech.",
            hint="Install it with `apt-get install -y espeak-ng sox` (Debian/Ubuntu).",
        )
    return found


def _speak(text: str, voice: str, workdir: Path) -> tuple[np.ndarray, int]:
    import numpy as np

    target = workdir / "line.wav"
    subprocess.run([_tool("espeak-ng"), "-v", voice, "-s", str(_WORDS_PER_MINUTE), "-w", str(target), text], check=True,
                   timeout=60)
    with wave.open(str(target), "rb") as handle:
        frames = handle.readframes(handle.getnframes())
        rate_hz = handle.getframerate()
    samples = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    # espeak pads each utterance with silence; trim it so that turn times are speech times.
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    if loud.size:
        samples = samples[loud[0] : loud[-1] + 1]
    return samples, rate_hz


def synthesize(
    script: Sequence[Line],
    path: Path,
    *,
    sample_rate: int = 16000,
    channels: int = 1,
) -> Conversation:
    """Speak `script` with one espeak-ng voice per speaker into `path` (format from its suffix, via sox).

    Turns are the trimmed speech of each line, separated by 0.4 s of silence and preceded by
    0.3 s. `sample_rate` and `channels` shape the written file, so tests can
    produce stereo or odd-rate audio of known content.
    """
    import numpy as np

    pieces: list[np.ndarray] = []
    turns: list[Turn] = []
    source_rate = 0
    with tempfile.TemporaryDirectory(prefix="envsolve-speech-") as tmp:
        workdir = Path(tmp)
        for line in script:
            samples, source_rate = _speak(line.text, VOICES[line.speaker], workdir)
            if not pieces:
                pieces.append(np.zeros(round(_LEAD_S * source_rate), dtype=np.int16))
            offset = sum(piece.size for piece in pieces)
            turns.append(Turn(offset / source_rate, (offset + samples.size) / source_rate, line.speaker))
            pieces.extend([samples, np.zeros(round(_GAP_S * source_rate), dtype=np.int16)])
        audio = np.concatenate(pieces)
        joined = workdir / "joined.wav"
        with wave.open(str(joined), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(source_rate)
            handle.writeframes(audio.astype("<i2").tobytes())
        path.parent.mkdir(parents=True, exist_ok=True)
        # sox resamples with a proper low-pass filter and picks the container from the suffix.
        subprocess.run(
            [_tool("sox"), str(joined), "-r", str(sample_rate), "-c", str(channels), "-b", "16", str(path)],
            check=True, timeout=120,
        )
    return Conversation(path, tuple(script), tuple(turns), audio.size / source_rate)


def write_sample(directory: Path) -> Conversation:
    """Synthesize the bundled sample into `directory`, with its reference RTTM and text."""
    conversation = synthesize(SAMPLE_SCRIPT, directory / f"{SAMPLE_NAME}.flac")
    (directory / f"{SAMPLE_NAME}.rttm").write_text(format_rttm(conversation.turns, SAMPLE_NAME), encoding="utf-8")
    text = "".join(f"{line.speaker}: {line.text}\n" for line in conversation.lines)
    (directory / f"{SAMPLE_NAME}.txt").write_text(text, encoding="utf-8")
    return conversation


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the bundled two-speaker sample.")
    parser.add_argument("directory", type=Path, help="where to write it (envsolve/data in a checkout)")
    args = parser.parse_args(argv)
    conversation = write_sample(args.directory)
    turns = read_rttm(args.directory / f"{SAMPLE_NAME}.rttm")[SAMPLE_NAME]
    print(f"wrote {conversation.path} ({conversation.duration:.2f} s, {len(turns)} turns)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
