"""Decode any audio or video file once, to 16 kHz mono float32, for every stage of the pipeline.

PyAV bundles FFmpeg's libraries, so no system ffmpeg is needed, and the same array goes to
faster-whisper and to pyannote (an in-memory waveform is 5-20x faster for pyannote's embeddings
than a path, and needs no torchcodec). The decode follows faster_whisper.audio.decode_audio, with
two differences: frames are resampled straight to float32 (no int16 round trip), and every way a
file can be wrong ends in an EnvsolveError that names the file and the problem.

Decisions about odd input:
- Silence only is valid input. The audio decodes; `Audio.silent` is set and the runner writes an
  empty transcript without running Whisper, which otherwise tends to invent text ("Thank you.").
- Shorter than MIN_SECONDS, or no samples at all, is an error: there is nothing to transcribe.
- A file whose decoded length falls short of what its container declares is truncated and is an
  error, as are packets that fail to decode beyond a small tolerance: transcribing a damaged file
  silently would give a transcript that looks complete and is not.
"""

from __future__ import annotations

import gc
import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envsolve.errors import EnvsolveError
from envsolve.terminal import printable

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MIN_SECONDS", "SAMPLE_RATE", "Audio", "decode"]

SAMPLE_RATE = 16000  # what Whisper and pyannote's models were trained on
MIN_SECONDS = 0.1  # shorter than any spoken word
SILENCE_PEAK = 1e-4  # about -80 dBFS: below one step of 16-bit audio's dither noise
# Truncation: the decoded audio may fall short of the declared length by container rounding
# (an MP3's duration is estimated from its bitrate), so allow a little before calling it damage.
_TRUNCATION_SLACK_S = 0.5
_TRUNCATION_SLACK_FRACTION = 0.02
# A handful of bad packets in a long recording is normal (a glitch in a stream capture);
# faster-whisper skips them silently. More than this share of all packets is a damaged file.
_BAD_PACKET_FRACTION = 0.01


@dataclass(frozen=True)
class Audio:
    """A decoded file: `samples` is 16 kHz mono float32 in [-1, 1]."""

    samples: np.ndarray
    source: Path
    source_rate: int
    source_channels: int
    codec: str
    bad_packets: int = 0
    warnings: tuple[str, ...] = field(default=())

    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def silent(self) -> bool:
        return bool(len(self.samples) == 0 or float(abs(self.samples).max()) < SILENCE_PEAK)


def _fail(reference: str, path: Path, problem: str, hint: str) -> EnvsolveError:
    # exit_code 1: a bad input file fails that file, not the command line.
    # The path is escaped: a file name holding a newline or an escape sequence stays one printable line.
    return EnvsolveError(reference, f"{printable(path)}: {problem}.", hint=printable(hint), exit_code=1)


def unreadable_hint(path: Path) -> str:
    """The fix for an unreadable input: a command that is safe to paste whatever the file is called."""
    return f"Run `chmod a+r {shlex.quote(str(path))}`."


def _check_path(path: Path) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise _fail("audio-not-found", path, "no such file", "Check the path (and quote paths with spaces).") from None
    except OSError as error:
        raise _fail("audio-unreadable", path, f"cannot be read ({error.strerror})", "Check the path.") from None
    if not path.is_file():
        raise _fail("audio-not-a-file", path, "is not a regular file", "Give an audio or video file (a folder's "
                    "audio files are found when the folder is passed to `envsolve run` directly).")
    if not os.access(path, os.R_OK):
        raise _fail("audio-unreadable", path, "is not readable by this user", unreadable_hint(path))
    if info.st_size == 0:
        raise _fail("audio-empty", path, "is empty (0 bytes)", "The file was not written completely; copy it again.")


def _wav_shortfall(path: Path, size: int) -> int:
    """Bytes missing from a RIFF/WAVE file's data chunk (0 when complete or not a WAV).

    FFmpeg's WAV demuxer trusts the file size over the header, so a cut-off WAV decodes "fine";
    the header's data size is the only record of how long the recording was meant to be.
    """
    with path.open("rb") as handle:
        head = handle.read(4096)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    offset = 12
    while offset + 8 <= len(head):
        chunk, length = head[offset : offset + 4], int.from_bytes(head[offset + 4 : offset + 8], "little")
        if chunk == b"data":
            # Streaming writers (ffmpeg to a pipe) leave 0 or 0xFFFFFFFF: the length is unknown.
            if length in (0, 0xFFFFFFFF):
                return 0
            return max(0, offset + 8 + length - size)
        offset += 8 + length + (length & 1)
    return 0


def _declared_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        import av

        return float(container.duration / av.time_base)
    return None


def decode(path: Path | str) -> Audio:
    """Decode `path` to 16 kHz mono float32, or raise an EnvsolveError naming what is wrong."""
    import av
    import numpy as np

    path = Path(path)
    _check_path(path)
    shortfall = _wav_shortfall(path, path.stat().st_size)
    if shortfall:
        raise _fail("audio-truncated", path, f"is truncated: its WAV header promises {shortfall} more bytes than "
                    "the file holds", "Copy the file again; if the recorder crashed, `sox INPUT FIXED.wav` keeps "
                    "what is there.")
    chunks: list[np.ndarray] = []
    packets = bad = 0
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as error:  # InvalidDataError, PermissionError and friends
        raise _fail("audio-not-audio", path, f"is not an audio or video file FFmpeg can read ({error.strerror})",
                    "Convert it with `ffmpeg -i INPUT -ar 16000 -ac 1 OUTPUT.wav`, or leave it out.") from None
    with container:
        if not container.streams.audio:
            # FFmpeg opens nearly anything (a text file as "tty" art), so "no audio stream" is how
            # most non-audio files show up; one reference for both keeps scripts simple.
            raise _fail("audio-not-audio", path, f"has no audio stream (FFmpeg reads it as {container.format.name})",
                        "Give a file with sound (a video file works when it carries an audio track).")
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        source_rate, source_channels = stream.rate or 0, stream.channels or 0
        declared = _declared_seconds(container, stream)
        resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        shape: tuple[str, str, int] | None = None
        try:
            for packet in container.demux(stream):
                packets += 1
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    bad += 1  # as faster-whisper does: skip the damaged packet, count it
                    continue
                for frame in frames:
                    frame.pts = None  # resample by content; broken timestamps must not stall it
                    # A stream may change rate or layout mid-way (two MP3s concatenated): ffmpeg decodes that,
                    # while PyAV's resampler is fixed to the first frame's format. Flush it and start another.
                    now = (frame.format.name, frame.layout.name, frame.sample_rate)
                    if shape is not None and now != shape:
                        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
                        del resampler
                        resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                    shape = now
                    chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as error:  # ValueError: a frame PyAV cannot convert
            why = getattr(error, "strerror", None) or str(error)
            raise _fail("audio-corrupt", path, f"failed to decode after {sum(map(len, chunks)) / SAMPLE_RATE:.1f} s "
                        f"({why})", "The file is damaged; re-export or copy it again.") from None
        finally:
            # PyAV's resampler graphs are freed only by the collector (faster-whisper #390).
            del resampler
            gc.collect()
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    seconds = len(samples) / SAMPLE_RATE
    if packets and bad / packets > _BAD_PACKET_FRACTION and bad > 1:
        raise _fail("audio-corrupt", path, f"{bad} of {packets} packets are damaged and could not be decoded",
                    "The file is damaged; re-export or copy it again.")
    if len(samples) == 0:
        raise _fail("audio-no-samples", path, "decodes to no audio at all (zero length)",
                    "The recording is empty; check that it was saved completely.")
    if declared is not None and math.isfinite(declared):
        missing = declared - seconds
        if missing > max(_TRUNCATION_SLACK_S, _TRUNCATION_SLACK_FRACTION * declared):
            raise _fail("audio-truncated", path, f"is truncated: it declares {declared:.1f} s but only "
                        f"{seconds:.1f} s could be decoded", "Copy or download the file again; if only the "
                        "start matters, re-mux it with `ffmpeg -i INPUT -c copy FIXED.ext`.")
    if seconds < MIN_SECONDS:
        raise _fail("audio-too-short", path, f"is {seconds * 1000:.0f} ms long, shorter than any word "
                    f"({MIN_SECONDS * 1000:.0f} ms)", "Leave it out of the batch.")
    warnings = (f"{bad} damaged packet(s) skipped",) if bad else ()
    return Audio(samples, path, source_rate, source_channels, codec, bad, warnings)
