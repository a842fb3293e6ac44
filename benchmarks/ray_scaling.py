"""Throughput of `envsolve run --ray` with 1 and 2 local workers (CPU, tiny.en, no diarization).

A batch of identical synthesized two-voice recordings goes through run_on_ray twice, into fresh output
folders, with one worker and then two; each worker loads the model once. Throughput is seconds of audio per
wall-clock second for the whole batch, model loads and Ray's start included (the cluster is started once,
before both). On a CPU-only box the workers share the cores: with CTranslate2 given one thread per worker,
two workers on two cores approach 2x; they cannot exceed what the cores allow.

    .venv/bin/python benchmarks/ray_scaling.py [--files 8] [--seconds 26] [--threads 1]

Needs: pip install 'envsolve[pipeline,demo-model,ray]'; apt-get install -y espeak-ng sox.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
from pathlib import Path

from envsolve.pipeline.asr import AsrOptions
from envsolve.pipeline.cluster import run_on_ray
from envsolve.pipeline.progress import Progress
from envsolve.pipeline.runner import RunOptions
from envsolve.pipeline.sample import SAMPLE_SCRIPT, synthesize


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=26.0, help="approximate length of each recording")
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 threads per worker")
    args = parser.parse_args()
    import ray

    work = Path(tempfile.mkdtemp(prefix="envsolve-ray-bench-"))
    talk = synthesize(SAMPLE_SCRIPT * max(1, round(args.seconds / 12.9)), work / "talk.flac")
    inputs = work / "in"
    inputs.mkdir()
    for i in range(args.files):
        shutil.copy(talk.path, inputs / f"talk{i:03}.flac")
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    print(f"{args.files} files of {talk.duration:.1f} s; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; CTranslate2 threads per worker: {args.threads}")
    rates = {}
    for workers in (1, 2):
        options = RunOptions(inputs=(str(inputs),), asr=AsrOptions(device="cpu", compute_type="int8",
                                                                   cpu_threads=args.threads),
                             output_dir=work / f"out{workers}", diarize=False)
        run = run_on_ray(options, Progress(), workers=workers)
        audio = sum(r.duration for r in run.results if r.status == "ok")
        rates[workers] = audio / run.wall_s
        shares = ", ".join(f"{w.files} files" for w in run.workers.values())
        print(f"{workers} worker(s): {audio:.0f} s of audio in {run.wall_s:.1f} s = {rates[workers]:.2f}x realtime "
              f"({shares})")
    print(f"scaling 2 vs 1 workers: {rates[2] / rates[1]:.2f}x")
    ray.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
