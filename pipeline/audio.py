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
from envsolve.pipeline.spool import Spool, SpoolError
from envsolve.terminal import printable

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MAX_SECONDS", "MAX_SOURCE_RATE", "MIN_SECONDS", "MIN_SOURCE_RATE", "SAMPLE_RATE", "Audio", "decode"]

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
# Sample rates a recording can have: below 4 kHz no speech band survives (telephony is 8 kHz), above 768 kHz no
# converter records. A header outside them is damage or an attack (1 Hz: 32 KB declares 16,000 s).
MIN_SOURCE_RATE = 4000
MAX_SOURCE_RATE = 768_000
# Decoded length: memory no longer grows with it, but the spool on disk does (230 MB an hour) and so does the
# time; a day of audio is far beyond any meeting and stays within a temporary folder's means.
MAX_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Audio:
    """A decoded file: `samples` is 16 kHz mono float32 in [-1, 1], mapped from a spool file (see `decode`)."""

    samples: np.ndarray
    source: Path
    source_rate: int
    source_channels: int
    codec: str
    bad_packets: int = 0
    warnings: tuple[str, ...] = field(default=())
    peak: float = 0.0  # the largest |sample|, measured while decoding (a pass over a 2 h array costs 460 MB)
    spool: Spool | None = field(default=None, repr=False, compare=False)

    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def silent(self) -> bool:
        return bool(len(self.samples) == 0 or self.peak < SILENCE_PEAK)

    def release(self, start: int, end: int) -> None:
        """Let the kernel drop samples [start, end) from this process's memory once a stage is done with them;
        they are read back from the spool if touched again."""
        if self.spool is not None:
            self.spool.release(start, end)


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


def _check_stream(path: Path, stream: Any) -> None:
    """Refuse, before decoding, a stream that is no audio FFmpeg can decode or whose rate is not a recording's:
    a WAV header claiming 1 Hz turns 32 KB into 16,000 s of audio."""
    if stream.codec_context is None:  # an unknown WAV format tag, 0 bits per sample: FFmpeg has no decoder
        raise _fail("audio-unsupported", path, "has an audio stream FFmpeg cannot decode (an unknown codec or format "
                    "tag)", "Convert it with `ffmpeg -i INPUT -ar 16000 -ac 1 OUTPUT.wav`, or leave it out.")
    rate = stream.rate or 0
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise _fail("audio-bad-rate", path, f"declares a sample rate of {rate} Hz; recordings are "
                    f"{MIN_SOURCE_RATE}..{MAX_SOURCE_RATE} Hz", "The header is damaged or the file is not a "
                    "recording; re-export it, or leave it out.")


def decode(path: Path | str) -> Audio:
    """Decode `path` to 16 kHz mono float32, or raise an EnvsolveError naming what is wrong.

    Memory does not grow with the file: each resampled frame is appended to a spool (an unlinked temporary
    file) and the samples come back as a mapping of it, which the stages read window by window and release."""
    import av

    path = Path(path)
    _check_path(path)
    shortfall = _wav_shortfall(path, path.stat().st_size)
    if shortfall:
        raise _fail("audio-truncated", path, f"is truncated: its WAV header promises {shortfall} more bytes than "
                    "the file holds", "Copy the file again; if the recorder crashed, `sox INPUT FIXED.wav` keeps "
                    "what is there.")
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as error:  # InvalidDataError, PermissionError and friends
        raise _fail("audio-not-audio", path, f"is not an audio or video file FFmpeg can read ({error.strerror})",
                    "Convert it with `ffmpeg -i INPUT -ar 16000 -ac 1 OUTPUT.wav`, or leave it out.") from None
    try:
        with container:
            return _decode(path, container)
    except SpoolError as error:
        raise _fail("audio-spool-failed", path, f"cannot be decoded: the temporary folder cannot hold its audio "
                    f"({error})", "Free space where TMPDIR points (230 MB an hour of audio), or point TMPDIR at a "
                    "larger disk.") from None


def _decode(path: Path, container: Any) -> Audio:
    """The decode proper, from an open container; SpoolError when the temporary folder gives out."""
    import av

    packets = bad = 0
    spool = Spool()
    with spool.closing_on_error():
        if not container.streams.audio:
            # FFmpeg opens nearly anything (a text file as "tty" art), so "no audio stream" is how
            # most non-audio files show up; one reference for both keeps scripts simple.
            raise _fail("audio-not-audio", path, f"has no audio stream (FFmpeg reads it as {container.format.name})",
                        "Give a file with sound (a video file works when it carries an audio track).")
        stream = container.streams.audio[0]
        _check_stream(path, stream)
        codec = stream.codec_context.name
        source_rate, source_channels = stream.rate or 0, stream.channels or 0
        declared = _declared_seconds(container, stream)
        resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        shape: tuple[str, str, int] | None = None
        reshaped = False
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
                        spool.extend(resampler.resample(None))
                        del resampler
                        resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                        reshaped = True
                    shape = now
                    spool.extend(resampler.resample(frame))
                    if spool.samples > MAX_SECONDS * SAMPLE_RATE:
                        raise _fail("audio-too-long", path, f"decodes to more than {MAX_SECONDS // 3600} hours",
                                    "Split it first, e.g. `ffmpeg -i INPUT -f segment -segment_time 3600 -c copy "
                                    "part%03d.EXT`, and pass the parts.")
            spool.extend(resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as error:  # ValueError: a frame PyAV cannot convert
            why = getattr(error, "strerror", None) or str(error)
            raise _fail("audio-corrupt", path, f"failed to decode after {spool.samples / SAMPLE_RATE:.1f} s "
                        f"({why})", "The file is damaged; re-export or copy it again.") from None
        finally:
            # PyAV's resampler graphs are freed only by the collector (faster-whisper #390).
            del resampler
            gc.collect()
        seconds = spool.samples / SAMPLE_RATE
        if packets and bad / packets > _BAD_PACKET_FRACTION and bad > 1:
            raise _fail("audio-corrupt", path, f"{bad} of {packets} packets are damaged and could not be decoded",
                        "The file is damaged; re-export or copy it again.")
        if spool.samples == 0:
            raise _fail("audio-no-samples", path, "decodes to no audio at all (zero length)",
                        "The recording is empty; check that it was saved completely.")
        # A stream that changed rate or layout mid-way has no one declared length: FFmpeg estimated it from the
        # first part's bitrate (two MP3s concatenated), so it proves nothing about truncation.
        if declared is not None and math.isfinite(declared) and not reshaped:
            missing = declared - seconds
            if missing > max(_TRUNCATION_SLACK_S, _TRUNCATION_SLACK_FRACTION * declared):
                raise _fail("audio-truncated", path, f"is truncated: it declares {declared:.1f} s but only "
                            f"{seconds:.1f} s could be decoded", "Copy or download the file again; if only the "
                            "start matters, re-mux it with `ffmpeg -i INPUT -c copy FIXED.ext`.")
        if seconds < MIN_SECONDS:
            raise _fail("audio-too-short", path, f"is {seconds * 1000:.0f} ms long, shorter than any word "
                        f"({MIN_SECONDS * 1000:.0f} ms)", "Leave it out of the batch.")
    warnings = (f"{bad} damaged packet(s) skipped",) if bad else ()
    return Audio(spool.mapped(), path, source_rate, source_channels, codec, bad, warnings, peak=spool.peak,
                 spool=spool)
