"""`envsolve run` on audio built to exhaust it (issue 21, items 1 and 7): a header's sample rate never decides how
much memory a run takes, decoding keeps a bounded footprint however long the file, long files are transcribed in
windows cut between words, a stream FFmpeg cannot decode is a failed file rather than a bug, and speaker names
reach the terminal escaped."""

from __future__ import annotations

import itertools
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hostile import assert_clean, envsolve

from speech import PIPELINE, conversation, needs_av, needs_speech, tiny_model, word_error_rate


def _wav(path: Path, rate: int, *, tag: int = 1, bits: int = 16, size: int = 32_000) -> Path:
    """A RIFF/WAVE file with the header's fields as given and `size` bytes of (noisy) data."""
    data = bytes((i * 97) % 256 for i in range(size))
    align = max(bits, 8) // 8
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * align, align, bits)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" + b"fmt "
                     + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    return path


@needs_av
@pytest.mark.parametrize("rate", [1, 100, 3999, 10_000_000])
def test_a_header_claiming_an_absurd_rate_is_refused_before_decoding(tmp_path: Path, rate: int) -> None:
    """32 KB at 1 Hz declares 16,000 s: it peaked at 4.2 GB (15.6 GB with --no-vad) and ended in MemoryError."""
    audio = _wav(tmp_path / "claims.wav", rate)
    for extra in ((), ("--no-vad",)):
        result = envsolve("run", audio, "-o", tmp_path / "out", "--no-diarize", "--progress", "none", *extra,
                          timeout=120)
        assert_clean(result, 1, "error[audio-bad-rate]", f"{rate} Hz", "4000..768000")


@needs_av
@pytest.mark.parametrize(("tag", "bits"), [(0x1234, 16), (1, 0), (0, 16)])
def test_a_stream_ffmpeg_cannot_decode_is_a_failed_file_not_a_bug(tmp_path: Path, tag: int, bits: int) -> None:
    audio = _wav(tmp_path / "odd.wav", 16000, tag=tag, bits=bits)
    result = envsolve("run", audio, "-o", tmp_path / "out", "--no-diarize", "--progress", "none", timeout=120)
    assert_clean(result, 1, "error[audio-unsupported]")


MEASURE = """
import resource, sys
from envsolve.pipeline.audio import decode
import av, numpy
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
audio = decode(sys.argv[1])
assert audio.duration > 1700 and not audio.silent
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@needs_av
def test_decoding_half_an_hour_does_not_hold_it_in_memory(tmp_path: Path) -> None:
    """30 min of 16 kHz float32 is 115 MB; holding it, its pieces and |x| at once took 350 MB more than the
    imports. Decoding to the spool grows the peak by a few MB however long the file."""
    path = tmp_path / "long.flac"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "anoisesrc=a=0.01:d=1800:r=16000", "-ac", "1", str(path)], check=True, timeout=120)
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    before, after = (int(x) for x in done.stdout.split())
    assert (after - before) / 1024 < 60, f"decoding 30 min grew the peak RSS by {(after - before) / 1024:.0f} MB"


def test_windows_cover_the_audio_and_cut_in_the_quietest_frame() -> None:
    import numpy as np

    from envsolve.pipeline.asr import windows

    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(16000 * 95) * 0.3).astype(np.float32)
    quiet = [16000 * 27, 16000 * 55, 16000 * 83]  # 100 ms pauses inside each window's last 20 s
    for at in quiet:
        samples[at : at + 1600] *= 0.001
    spans = windows(samples, 16000, 30.0)
    assert spans[0][0] == 0 and spans[-1][1] == len(samples)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert all(end - start <= 30 * 16000 for start, end in spans)
    cuts = [end for _, end in spans[:-1]]
    assert len(cuts) == 3 and all(at <= cut <= at + 1600 for at, cut in zip(quiet, cuts, strict=True))
    assert windows(samples[:16000], 16000, 30.0) == [(0, 16000)]
    short = windows(samples, 16000, 4.0)  # shorter than the 20 s searched: each cut lies in its window's second half
    assert all(2 * 16000 <= end - start <= 4 * 16000 for start, end in short[:-1]) and short[-1][1] == len(samples)


@needs_speech
@PIPELINE[0]
def test_a_long_recording_is_transcribed_in_windows_with_times_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """The conversation three times over, in windows of under a third of it (about 12 s; espeak-ng's speed sets
    the length): every window's words land at their own times, in order, and the text is as good as in one piece."""
    from envsolve.pipeline import asr
    from envsolve.pipeline.audio import decode

    talk = conversation(repeat=3)
    audio = decode(talk.path)
    released: list[tuple[int, int]] = []
    monkeypatch.setattr(asr, "WINDOW_S", audio.duration / 3)  # windows end at a pause before it: three or more
    model = tiny_model()
    result = asr.transcribe(model, audio.samples, asr.AsrOptions(device="cpu"),  # type: ignore[arg-type]
                            release=lambda a, b: released.append((a, b)))
    assert len(released) >= 3 and released[-1][1] == len(audio.samples)
    words = [w for s in result.segments for w in s.words]
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert words[-1].end > audio.duration - 20 and all(0 <= w.start <= w.end <= audio.duration for w in words)
    hypothesis = " ".join(s.text for s in result.segments)
    assert word_error_rate(talk.text, hypothesis) <= 0.15, hypothesis


@needs_speech
@PIPELINE[0]
def test_sample_speaker_names_reach_the_terminal_escaped(tmp_path: Path) -> None:
    result = envsolve("run", "--sample", "-o", tmp_path / "out", "--progress", "none", "--speaker-names",
                      "SPEAKER_00=\x1b]0;owned\x07Al\x1b[2Jice,SPEAKER_01=B\u202eob", timeout=300)
    text = assert_clean(result, 0, "\\x1b]0;owned\\x07Al\\x1b[2Jice", "B\\u202eob")
    assert "owned" in text


SPOOL_LIMIT = """
import resource, signal, sys
from envsolve.errors import EnvsolveError
from envsolve.pipeline.audio import decode
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
try:
    decode(sys.argv[1])
except EnvsolveError as error:
    print(error.reference, error.exit_code)
"""


@needs_av
def test_a_temporary_folder_that_gives_out_is_a_failed_file(tmp_path: Path) -> None:
    """The spool needs 230 MB an hour in $TMPDIR; a full disk (here a 1 MB file size limit) fails the file."""
    path = tmp_path / "two-minutes.flac"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "anoisesrc=a=0.01:d=120:r=16000", "-ac", "1", str(path)], check=True, timeout=60)
    done = subprocess.run([sys.executable, "-c", SPOOL_LIMIT, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["audio-spool-failed", "1"], done.stdout + done.stderr


def _mp3(path: Path, rate: int, channels: int, seconds: float, bitrate: str | None = None) -> bytes:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}",
                    "-ar", str(rate), "-ac", str(channels), *(["-b:a", bitrate] if bitrate else []), str(path)],
                   check=True, timeout=60)
    return path.read_bytes()


@needs_av
@pytest.mark.parametrize(("first", "second"), [((22050, 1, 10, None), (44100, 2, 1, None)),
                                               ((44100, 1, 1, None), (11025, 1, 10, None)),
                                               ((16000, 1, 5, "8k"), (48000, 2, 5, "320k"))])
def test_mp3s_of_different_rates_joined_are_not_called_truncated(
        tmp_path: Path, first: tuple[int, int, float, str | None], second: tuple[int, int, float, str | None]) -> None:
    """FFmpeg estimates such a file's length from the first part's bitrate; that estimate proves no truncation."""
    from envsolve.pipeline.audio import decode

    joined = tmp_path / "joined.mp3"
    joined.write_bytes(_mp3(tmp_path / "a.mp3", *first) + _mp3(tmp_path / "b.mp3", *second))
    assert decode(joined).duration == pytest.approx(first[2] + second[2], abs=0.3)
