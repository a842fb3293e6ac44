"""What envsolve's pipeline costs on top of calling faster-whisper directly (CPU, tiny.en, no diarization).

Both sides transcribe the same synthesized ~60 s two-voice conversation with the same options
(beam 5, word timestamps, Silero VAD, int8 on the CPU, one model load each). faster-whisper gets
the file path and decodes it itself; envsolve runs its whole per-file path: decode (PyAV), ASR,
attribution, and all six output formats written atomically. Runs alternate between the two so
that a noisy neighbour slows both alike; medians are reported.

    .venv/bin/python benchmarks/pipeline_overhead.py [--repeats 5] [--seconds 60]

Needs: pip install 'envsolve[pipeline,demo-model]'; apt-get install -y espeak-ng sox.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from envsolve.pipeline.asr import AsrOptions, default_model_path, load_model
from envsolve.pipeline.progress import Progress
from envsolve.pipeline.runner import Runner, RunOptions
from envsolve.pipeline.sample import SAMPLE_SCRIPT, synthesize


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0, help="approximate length of the test audio")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    work = Path(tempfile.mkdtemp(prefix="envsolve-bench-"))
    repeat = max(1, round(args.seconds / 12.9))  # the sample script speaks for about 12.9 s
    talk = synthesize(SAMPLE_SCRIPT * repeat, work / "talk.flac")
    model_dir = str(default_model_path())

    started = time.perf_counter()
    direct = WhisperModel(model_dir, device="cpu", compute_type="int8")
    direct_load = time.perf_counter() - started
    loaded = load_model(AsrOptions(device="cpu"))  # int8 on the CPU, as above

    options = RunOptions(inputs=(str(talk.path),), asr=AsrOptions(device="cpu"), output_dir=work / "out",
                         diarize=False, overwrite=True)
    direct_times: list[float] = []
    envsolve_times: list[float] = []
    stages: dict[str, list[float]] = {}
    words = 0
    for _ in range(args.repeats):
        started = time.perf_counter()
        segments, _info = direct.transcribe(str(talk.path), beam_size=5, word_timestamps=True, vad_filter=True)
        words = sum(len(segment.words or ()) for segment in segments)  # consuming the generator does the work
        direct_times.append(time.perf_counter() - started)

        started = time.perf_counter()
        results = list(Runner(options, Progress(), model=loaded).run())
        envsolve_times.append(time.perf_counter() - started)
        assert results[0].status == "ok", results[0].error
        for stage, seconds in results[0].stages.items():
            stages.setdefault(stage, []).append(seconds)

    audio = talk.duration
    fw, es = statistics.median(direct_times), statistics.median(envsolve_times)
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")
    print(f"audio: {audio:.1f} s synthesized speech, {words} words; model tiny.en int8 on CPU; "
          f"{args.repeats} alternating runs, medians")
    print(f"model load: faster-whisper {direct_load:.2f} s, envsolve {loaded.load_seconds:.2f} s")
    print(f"faster-whisper direct : {fw:6.2f} s  RTF {fw / audio:.3f}  ({audio / fw:.1f}x realtime)  "
          f"runs {', '.join(f'{t:.2f}' for t in direct_times)}")
    print(f"envsolve pipeline     : {es:6.2f} s  RTF {es / audio:.3f}  ({audio / es:.1f}x realtime)  "
          f"runs {', '.join(f'{t:.2f}' for t in envsolve_times)}")
    print(f"ratio envsolve / faster-whisper: {es / fw:.3f}  (overhead {es - fw:+.2f} s)")
    print("envsolve stages (median s): " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in stages.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
