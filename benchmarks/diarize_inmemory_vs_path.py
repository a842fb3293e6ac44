"""pyannote given an in-memory waveform vs the same audio as a file path: same pipeline, same audio.

    python benchmarks/diarize_inmemory_vs_path.py [--minutes 2] [--formats wav,mp3,m4a] [--embedding tiny|resnet34]

Builds the random-weight pipeline of envsolve.pipeline.tinymodels (with `--embedding resnet34`,
the embedding is WeSpeaker ResNet34 as in community-1, random weights, so the compute per crop is
the real model's), synthesizes espeak-ng speech, writes it as 16 kHz WAV (and, with FFmpeg's CLI,
as MP3 and AAC/M4A, where a crop cannot be read without decoding from an earlier frame), and times
`pipeline(path)` against `pipeline({"waveform": ..., "sample_rate": 16000})`. The path variant
needs torchcodec and the FFmpeg shared libraries (pyannote 4.x decodes files only through them);
it reads a new decoder per crop, which is the cost being measured (pyannote #1442, #1955).
The tiny embedding makes the model cost almost nothing, so its ratio is mostly decoding overhead;
resnet34 shows what the overhead is worth next to a real model. Weights are random: only timing
matters here. Prints the median of `--repeat` runs each, after one warm-up run of each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from importlib.metadata import version
from pathlib import Path
from typing import Any

os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

import numpy as np

from envsolve.pipeline.sample import Line, synthesize

RATE = 16000
LINES = (
    Line("SPEAKER_00", "Good morning, this is the first speaker talking about the weather and the trains."),
    Line("SPEAKER_01", "And this is the second voice, answering with a higher pitch and a different accent."),
)


def speech(seconds: float) -> np.ndarray:
    """Two espeak-ng voices taking turns (envsolve.pipeline.sample.synthesize), cut to `seconds`."""
    repeats = 1
    with tempfile.TemporaryDirectory() as tmp:
        while True:
            talk = synthesize(LINES * repeats, Path(tmp) / f"talk-{repeats}.wav", sample_rate=RATE)
            if talk.duration >= seconds:
                break
            repeats = max(repeats + 1, int(repeats * seconds / max(talk.duration, 0.1)) + 1)
        with wave.open(str(talk.path)) as wav:
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return (samples.astype(np.float32) / 32768)[: int(seconds * RATE)]


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def build(folder: Path, embedding: str) -> None:
    from envsolve.pipeline import tinymodels

    tinymodels.build_pipeline_folder(folder)
    if embedding == "resnet34":
        from pyannote.audio.core.task import Problem, Resolution, Specifications
        from pyannote.audio.models.embedding import WeSpeakerResNet34

        model = WeSpeakerResNet34()
        model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0)
        tinymodels.save_checkpoint(model, folder / "embedding" / "pytorch_model.bin")


def timed(pipeline: Any, file: Any, repeat: int) -> float:
    pipeline(file)  # warm-up: lazy initialisation, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        pipeline(file)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--embedding", choices=["tiny", "resnet34"], default="tiny")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="wav,mp3,m4a", help="comma-separated: wav, mp3, m4a")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        print("needs espeak-ng and sox (apt-get install -y espeak-ng sox)", file=sys.stderr)
        return 2
    import torch
    from pyannote.audio import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        folder, path = Path(tmp) / "pipeline", Path(tmp) / "speech.wav"
        build(folder, args.embedding)
        audio = speech(args.minutes * 60)
        write_wav(path, audio)
        pipeline = Pipeline.from_pretrained(folder).to(torch.device(args.device))
        results: dict[str, tuple[float, float | str]] = {}
        for fmt in args.formats.split(","):
            encoded = path.with_suffix(f".{fmt}")
            if fmt != "wav":
                subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(path), str(encoded)], check=True)
            # In memory: the same file decoded once (lossy formats change the samples, and with random
            # weights the samples decide how much work clustering gets), so both sides see equal input.
            decoded = subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-i", str(encoded), "-f", "f32le", "-ac", "1", "-ar", str(RATE), "-"],
                check=True,
                capture_output=True,
            ).stdout
            waveform = torch.from_numpy(np.frombuffer(decoded, dtype="<f4").copy())[None]
            in_memory = timed(pipeline, {"waveform": waveform, "sample_rate": RATE}, args.repeat)
            try:
                results[fmt] = (in_memory, timed(pipeline, str(encoded), args.repeat))
            except Exception as exc:  # pyannote's per-crop decoding refuses some files; that is a result too
                results[fmt] = (in_memory, f"failed: {type(exc).__name__}: {exc}")
    seconds = len(audio) / RATE
    print(f"pyannote.audio {version('pyannote.audio')}")
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads")
    print(f"audio {seconds:.0f} s of espeak-ng speech, embedding {args.embedding}, median of {args.repeat}")
    for fmt, (in_memory, took) in results.items():
        print(f"{fmt}: in-memory waveform {in_memory:7.2f} s ({seconds / in_memory:5.1f}x real time)")
        if isinstance(took, str):
            print(f"{fmt}: file path {took}")
        else:
            ratio = took / in_memory
            print(f"{fmt}: file path          {took:7.2f} s ({seconds / took:5.1f}x real time), {ratio:.2f}x in-memory")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
