"""Decoding: one 16 kHz mono float32 array from any input, and a named error for every bad one."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from envsolve.errors import EnvsolveError
from envsolve.pipeline.sample import sample_files

from speech import conversation, needs_av, needs_speech, sox

pytestmark = [needs_av]


def decode(path: Path | str):  # type: ignore[no-untyped-def]
    from envsolve.pipeline.audio import decode as real

    return real(path)


def test_bundled_sample_decodes_to_16k_mono_float32() -> None:
    audio = decode(sample_files().audio)
    assert audio.samples.dtype.name == "float32" and audio.samples.ndim == 1
    assert audio.sample_rate == 16000 and 8 <= audio.duration <= 14
    assert float(abs(audio.samples).max()) <= 1.0
    assert not audio.silent and audio.warnings == ()


@needs_speech
@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (8000, 1), (22050, 2), (48000, 1)])
def test_stereo_and_odd_rates_are_resampled_to_the_same_timeline(rate: int, channels: int) -> None:
    reference = decode(conversation().path)
    other = decode(conversation(".wav", rate, channels).path)
    assert (other.source_rate, other.source_channels) == (rate, channels)
    assert other.samples.ndim == 1
    # Same speech, same length: resampling must not stretch time (turn times depend on it).
    assert abs(other.duration - reference.duration) < 0.01
    loud = float(abs(reference.samples).mean())
    assert 0.5 * loud < float(abs(other.samples).mean()) < 1.5 * loud


@needs_speech
def test_silence_is_valid_input_flagged_silent(tmp_path: Path) -> None:
    sox("-n", "-r", "16000", "-c", "1", str(tmp_path / "quiet.wav"), "trim", "0", "3")
    audio = decode(tmp_path / "quiet.wav")
    assert audio.silent and audio.duration == pytest.approx(3.0)


def _damage(source: Path, target: Path, every: int) -> Path:
    data = bytearray(source.read_bytes())
    rng = random.Random(1)
    for index in range(len(data) // 5, len(data) - 100, every):
        data[index] = rng.randrange(256)
    target.write_bytes(bytes(data))
    return target


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = sample_files().audio
    wav = tmp / "good.wav"
    sox(str(good), str(wav))
    (tmp / "empty.wav").write_bytes(b"")
    (tmp / "notes.txt").write_text("hello, this is not audio at all\n" * 20)
    (tmp / "cut.wav").write_bytes(wav.read_bytes()[: wav.stat().st_size // 3])
    (tmp / "cut.flac").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    sox("-n", "-r", "16000", str(tmp / "zero.wav"), "trim", "0", "0")
    sox("-n", "-r", "16000", str(tmp / "blip.wav"), "synth", "0.03", "sine", "440")
    (tmp / "folder.wav").mkdir()
    return {
        "missing": (tmp / "nope.wav", "audio-not-found"),
        "folder": (tmp / "folder.wav", "audio-not-a-file"),
        "empty": (tmp / "empty.wav", "audio-empty"),
        "not audio": (tmp / "notes.txt", "audio-not-audio"),
        "truncated wav": (tmp / "cut.wav", "audio-truncated"),
        "truncated flac": (tmp / "cut.flac", "audio-truncated"),
        "corrupt flac": (_damage(good, tmp / "noise.flac", 40), "audio-corrupt"),
        "zero length": (tmp / "zero.wav", "audio-no-samples"),
        "very short": (tmp / "blip.wav", "audio-too-short"),
        "name too long": (tmp / ("x" * 300 + ".wav"), "audio-unreadable"),
    }


BAD = ["missing", "folder", "empty", "not audio", "truncated wav", "truncated flac", "corrupt flac", "zero length",
       "very short", "name too long"]


@needs_speech
@pytest.mark.parametrize("case", BAD)
def test_every_bad_input_gets_its_own_error(tmp_path: Path, case: str) -> None:
    path, reference = _bad_inputs(tmp_path)[case]
    with pytest.raises(EnvsolveError) as caught:
        decode(path)
    assert caught.value.reference == reference
    assert caught.value.exit_code == 1  # a bad file fails that file, not the command line
    assert str(path.name)[:50] in caught.value.message and caught.value.hint


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.flac"
    path.write_bytes(sample_files().audio.read_bytes())
    path.chmod(0)
    with pytest.raises(EnvsolveError, match="not readable") as caught:
        decode(path)
    assert caught.value.reference == "audio-unreadable"


def test_a_few_damaged_packets_are_skipped_with_a_warning(tmp_path: Path) -> None:
    data = bytearray(sample_files().audio.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # one damaged FLAC frame in a dozen seconds
    path = tmp_path / "scratched.flac"
    path.write_bytes(bytes(data))
    audio = decode(path)
    assert audio.duration > 10
    assert audio.bad_packets <= 1 and (audio.warnings == () or "damaged" in audio.warnings[0])
