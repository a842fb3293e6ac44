"""envsolve run --ray on a real local Ray cluster (2 CPU workers) with the tiny.en model: the same outputs as a
local run, a worker killed in the middle loses no file and leaves no partial output, a rerun skips finished
files, and without Ray --ray says how to install it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from envsolve.cli import main
from envsolve.pipeline.asr import AsrOptions
from envsolve.pipeline.progress import Progress
from envsolve.pipeline.runner import RunOptions

from speech import conversation, needs_model, needs_speech

pytestmark = [pytest.mark.ray, pytest.mark.pipeline, needs_speech, needs_model,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                 reason="the ray extra is not installed (pip install 'envsolve[ray]')")]


@pytest.fixture(scope="module")
def cluster() -> object:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _inputs(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    talk = conversation().path
    for i in range(count):
        shutil.copy(talk, folder / f"talk{i}{talk.suffix}")
    return folder


def _options(inputs: Path, out: Path) -> RunOptions:
    return RunOptions(inputs=(str(inputs),), asr=AsrOptions(device="cpu", compute_type="int8"), output_dir=out,
                      diarize=False)


def _without_timings(path: Path) -> object:
    if path.suffix != ".json":
        return path.read_bytes()
    data = json.loads(path.read_text())
    data.pop("timings", None)
    return data


def test_ray_outputs_are_the_local_run_s(cluster: object, tmp_path: Path) -> None:
    from envsolve.pipeline.cluster import run_on_ray

    inputs = _inputs(tmp_path / "in", 3)
    argv = ["run", str(inputs), "--no-diarize", "--device", "cpu", "--compute-type", "int8", "--progress", "none"]
    # As each Ray worker here runs: one CPU, so one CTranslate2 thread and OMP_NUM_THREADS=1 (Ray sets it; numpy's
    # BLAS reads it when it loads). Thread counts change float sums (word scores in the third decimal), so byte
    # equality needs the same counts: the local run is a process of its own with them.
    local = subprocess.run([sys.executable, "-m", "envsolve", *argv, "--threads", "1", "-o", str(tmp_path / "local")],
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert local.returncode == 0, local.stderr[-2000:]
    run = run_on_ray(_options(inputs, tmp_path / "ray"), Progress(), workers=2)
    assert [r.status for r in run.results] == ["ok"] * 3 and len(run.workers) == 2
    local, remote = sorted((tmp_path / "local").iterdir()), sorted((tmp_path / "ray").iterdir())
    assert [p.name for p in local] == [p.name for p in remote] and len(local) == 18
    for a, b in zip(local, remote, strict=True):
        assert _without_timings(a) == _without_timings(b), a.name


def test_a_killed_worker_loses_no_file_and_a_rerun_skips(cluster: object, tmp_path: Path) -> None:
    from envsolve.pipeline.cluster import run_on_ray

    inputs, out = _inputs(tmp_path / "in", 4), tmp_path / "out"
    killed: list[str] = []

    def kill_the_third(name: str, worker: str) -> None:
        if len(killed) == 0 and name.endswith(("talk2.flac", "talk1.flac")):
            os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)  # the worker process, mid-batch
            killed.append(name)

    run = run_on_ray(_options(inputs, out), Progress(), workers=2, on_dispatch=kill_the_third)
    assert killed and run.retried == killed
    assert sorted(r.status for r in run.results) == ["ok"] * 4
    assert sum(w.lost for w in run.workers.values()) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(f"talk{i}{s}" for i in range(4) for s in (
        ".json", ".rttm", ".srt", ".tsv", ".txt", ".vtt"))  # no temporary or half-written file
    again = run_on_ray(_options(inputs, out), Progress(), workers=2)
    assert [r.status for r in again.results] == ["skipped"] * 4 and not again.workers


def test_cli_summary_names_each_worker(cluster: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = _inputs(tmp_path / "in", 2)
    assert main(["run", "--ray", "--ray-workers", "2", str(inputs), "-o", str(tmp_path / "o"), "--no-diarize",
                 "--device", "cpu", "--progress", "none"]) == 0
    out = capsys.readouterr().out
    assert "Summary (Ray at local)" in out and "Workers" in out and "x realtime for the whole batch" in out


def test_without_ray_the_flag_says_how_to_install_it(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None; from envsolve.cli import main; "
            f"sys.exit(main(['run', '--ray', {str(conversation().path)!r}, '-o', {str(tmp_path)!r}, '--no-diarize', "
            "'--device', 'cpu']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "error[ray-not-installed]" in done.stderr and "envsolve[ray]" in done.stderr
    assert "Traceback" not in done.stderr
