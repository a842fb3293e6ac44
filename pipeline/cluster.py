"""`envsolve run --ray`: the same batch over a Ray cluster, one worker per GPU (or per CPU slot).

Ray schedules; nothing here is a scheduler. Each worker is a Ray actor holding one `Runner`, so it loads the
models once and takes many files; the driver hands out one file at a time, longest first (by the container's
duration, read from the header), so a long recording does not start last. A worker runs exactly the local
code path (`Runner.run` on one input), so its outputs are the files a local run writes, written atomically: a
worker killed mid-file leaves the old file or none. Its file goes back to the queue for another worker (a new
one is started in its place), at most `retries` times, then it is reported failed.

Finished files are skipped before dispatch (resume), exactly as a local run skips them. Paths must mean the
same on every node: a local cluster shares this machine's files; a multi-node cluster needs the inputs and
-o on a shared file system (or run from the rendered image with it mounted).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envsolve.errors import EnvsolveError
from envsolve.pipeline.outputs import select_formats
from envsolve.pipeline.progress import Progress
from envsolve.pipeline.runner import SKIPPED_NOTE, FileResult, RunOptions, check_name_clash, collect_inputs, finished

__all__ = ["ClusterRun", "WorkerFigures", "run_on_ray"]

INSTALL_HINT = ("Install Ray beside envsolve: pip install 'envsolve[ray]' (or pip install 'ray>=2.40'), "
                "then start a cluster (`ray start --head`) or let --ray start a local one.")


@dataclass
class WorkerFigures:
    worker: str
    files: int = 0
    audio_s: float = 0.0
    busy_s: float = 0.0
    lost: int = 0  # files this worker was holding when it died


@dataclass
class ClusterRun:
    results: list[FileResult]
    workers: dict[str, WorkerFigures]
    wall_s: float
    address: str
    output_dir: Path
    retried: list[str] = field(default_factory=list)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EnvsolveError("ray-not-installed", "--ray needs Ray, which is not installed here.",
                            hint=INSTALL_HINT) from None
    return ray


def _duration(path: Path) -> float:
    """Seconds of audio from the container header (no decoding); the file size stands in when unknown."""
    try:
        import av

        with av.open(str(path)) as container:
            if container.duration:
                return float(container.duration) / 1_000_000
    except Exception:  # a file the worker will classify properly; here it only orders the queue
        pass
    try:
        return path.stat().st_size / 32_000  # about 16 kHz 16-bit mono
    except OSError:
        return 0.0


class _Worker:
    """The actor's body: one Runner, reused for every file it is given."""

    def __init__(self, options: RunOptions) -> None:
        from envsolve.pipeline.runner import Runner

        self.runner = Runner(options, Progress())
        self.name = f"{os.uname().nodename}:{os.getpid()}"

    def label(self) -> str:
        return self.name

    def process(self, path: str) -> tuple[str, FileResult, float]:
        started = time.monotonic()
        self.runner.options = dataclasses.replace(self.runner.options, inputs=(path,))
        result = next(iter(self.runner.run()))
        return self.name, result, time.monotonic() - started


def run_on_ray(options: RunOptions, progress: Progress, *, address: str = "local", workers: int | None = None,
               retries: int = 2, on_dispatch: Callable[[str, str], None] | None = None) -> ClusterRun:
    """Run the batch on Ray at `address` ("local" starts a cluster on this machine, "auto" joins the running
    one, ray://HOST:PORT connects a client). `on_dispatch(file, worker)` sees each hand-out (tests kill a
    worker there)."""
    ray = _ray()
    started = time.monotonic()
    formats = select_formats(options.formats)
    pending: list[tuple[float, str]] = []
    results: list[FileResult] = []
    stems: dict[str, str] = {}
    notes: list[str] = []
    for name, target in collect_inputs(options.inputs, notes):
        try:
            if isinstance(target, EnvsolveError):
                raise target
            check_name_clash(stems, name, target, options.output_dir)
        except EnvsolveError as error:
            results.append(FileResult(name, "failed", error.render(), error.reference))
            continue
        if finished(options, formats, target.stem):
            results.append(FileResult(name, "skipped", notes=[SKIPPED_NOTE]))
        else:
            pending.append((_duration(target), name))
    for note in notes:
        progress.note(note)
    pending.sort(key=lambda item: (-item[0], item[1]))  # longest first
    total_audio = sum(d for d, _ in pending)
    for result in results:
        progress.result(result.record())
    if not pending:
        return ClusterRun(results, {}, time.monotonic() - started, address, options.output_dir)

    if not ray.is_initialized():
        import logging

        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
        if address != "local":
            kwargs["address"] = address
        ray.init(**kwargs)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    gpu = options.asr.device != "cpu" and gpus > 0
    slots = workers or (gpus if gpu else max(1, int(resources.get("CPU", 1))))
    actor_class = ray.remote(num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1, max_restarts=0)(_Worker)
    asr = dataclasses.replace(options.asr, device="cuda" if gpu else "cpu") if options.asr.device == "auto" \
        else options.asr
    if not gpu and not asr.cpu_threads:
        # A CPU worker holds one CPU slot: one CTranslate2 thread, not the machine's default per worker (which
        # oversubscribes the cores several workers share).
        asr = dataclasses.replace(asr, cpu_threads=1)
    worker_options = dataclasses.replace(options, asr=asr)

    actors: dict[Any, str] = {}
    running: dict[Any, tuple[Any, str]] = {}  # ref -> (actor, file)
    attempts: dict[str, int] = {}
    figures: dict[str, WorkerFigures] = {}
    retried: list[str] = []
    done_audio = 0.0
    durations = {name: d for d, name in pending}

    def spawn() -> Any:
        actor = actor_class.remote(worker_options)
        actors[actor] = ray.get(actor.label.remote())  # waits for the worker process to start
        return actor

    idle = [spawn() for _ in range(min(slots, len(pending)))]
    queue = [name for _, name in pending]
    while queue or running:
        while queue and idle:
            actor, name = idle.pop(), queue.pop(0)
            attempts[name] = attempts.get(name, 0) + 1
            running[actor.process.remote(name)] = (actor, name)
            if on_dispatch:
                on_dispatch(name, actors[actor])
        ready, _ = ray.wait(list(running), num_returns=1)
        ref = ready[0]
        actor, name = running.pop(ref)
        try:
            worker, result, busy = ray.get(ref)
        except ray.exceptions.RayActorError:
            # The worker died (killed, out of memory, its node lost): the file goes back for another worker.
            label = actors.pop(actor, "") or "lost worker"
            figures.setdefault(label, WorkerFigures(label)).lost += 1
            if attempts[name] <= retries:
                retried.append(name)
                queue.insert(0, name)
                progress.note(f"a worker died while on {name}; it goes to another worker "
                              f"(attempt {attempts[name] + 1} of {retries + 1})")
            else:
                results.append(FileResult(name, "failed", f"the worker died {attempts[name]} times on this file",
                                          "worker-lost"))
            idle.append(spawn())
            continue
        except ray.exceptions.RayTaskError as error:
            result, worker, busy = FileResult(name, "failed", f"internal error on a worker: {error}",
                                              "internal-error"), actors.get(actor, "?"), 0.0
        actors[actor] = worker
        figure = figures.setdefault(worker, WorkerFigures(worker))
        figure.files += 1
        figure.audio_s += result.duration
        figure.busy_s += busy
        results.append(result)
        done_audio += durations.get(name, 0.0)
        progress.result(result.record())
        elapsed = time.monotonic() - started
        rate = done_audio / elapsed if elapsed > 0 else 0.0
        eta = (total_audio - done_audio) / rate if rate > 0 else None
        progress.note(f"{len(results)} files done, {done_audio / 3600:.3f} of {total_audio / 3600:.3f} h of audio, "
                      f"{rate:.1f}x realtime" + (f", ETA {eta:.0f} s" if eta is not None else ""))
        idle.append(actor)
    for actor in actors:
        ray.kill(actor)
    return ClusterRun(results, figures, time.monotonic() - started, address, options.output_dir, retried)
