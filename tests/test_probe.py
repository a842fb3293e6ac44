"""The probe on this machine: it finishes, says there is no driver (no GPU here or in CI), keeps
secrets and the home directory out, and its snapshot plans and doctors like the live host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from envsolve.cli import main
from envsolve.resolver.doctor import diagnose
from envsolve.resolver.host import KEPT_ENV, Host, LoaderLink, host_to_json, parse_host, read_host
from envsolve.resolver.plan import make_plan
from envsolve.resolver.probe import probe_host
from envsolve.resolver.probe.compose import collect, scrub_home
from envsolve.resolver.request import Request

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def live() -> Host:
    return probe_host()


def _no_gpu(host: Host) -> None:
    if host.driver is not None:
        pytest.skip("this machine has an NVIDIA driver")


def test_probe_finishes_and_says_no_driver(live: Host) -> None:
    _no_gpu(live)
    assert live.driver_known and live.gpus == ()
    assert any(n.startswith("no NVIDIA driver reachable") for n in live.notes)
    assert live.packages_complete and live.package("envsolve") is not None
    assert live.python and live.os.arch in ("x86_64", "aarch64", None)


def test_snapshot_round_trip_gives_same_plan_and_findings(live: Host, tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text(json.dumps(host_to_json(live)))
    back = read_host(path)
    assert back == live
    assert diagnose(back).to_json() == diagnose(live).to_json()
    for device in ("auto", "cpu"):
        request = Request(device=device)
        try:
            a = make_plan(live, request).to_json()
        except Exception as e:  # an impossible request must be impossible for both
            with pytest.raises(type(e)):
                make_plan(back, request)
            continue
        assert make_plan(back, request).to_json() == a


def test_cli_doctor_exit_code_matches_report(live: Host, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == (0 if out["healthy"] else 1)
    assert out == diagnose(live).to_json()


def test_cli_probe_report_and_atomic_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe"]) == 0
    text = capsys.readouterr().out
    assert "GPU and driver:" in text and "Libraries (where they live):" in text
    target = tmp_path / "snap.json"
    assert main(["probe", "--json", "--output", str(target)]) == 0
    assert parse_host(json.loads(target.read_text())) == probe_host()
    assert [p.name for p in tmp_path.iterdir()] == ["snap.json"]
    assert main(["probe", "--json", "--output", str(tmp_path / "missing-dir" / "x.json")]) == 2


def test_no_secret_and_no_home_in_snapshot(tmp_path: Path) -> None:
    home = str(ROOT)  # every path under the repository (the venv included) is then "under home"
    env = {**os.environ, "HF_TOKEN": "hf_secret_token_123", "HUGGING_FACE_HUB_TOKEN": "hf_other_456",
           "AWS_SECRET_ACCESS_KEY": "aws-secret-789", "HOME": home,
           "LD_LIBRARY_PATH": f"{home}/libs:/usr/local/nvidia/lib64"}
    proc = subprocess.run([sys.executable, "-m", "envsolve", "probe", "--json"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for secret in ("hf_secret_token_123", "hf_other_456", "aws-secret-789", home + "/"):
        assert secret not in proc.stdout
    data = json.loads(proc.stdout)
    assert set(data.get("env", {})) <= set(KEPT_ENV)
    assert data["env"]["LD_LIBRARY_PATH"] == "~/libs:/usr/local/nvidia/lib64"
    assert "GPU-" not in proc.stdout


def test_scrub_home_is_exact() -> None:
    host = Host(notes=("/home/ann/x", "/home/anna/y", "/home/ann"),
                loader=(LoaderLink("torch", "libcudnn.so.9", "/home/ann/v/libcudnn.so.9",
                                   searched=("/home/ann/a",)),))
    out = scrub_home(host, "/home/ann")
    assert out.notes == ("~/x", "/home/anna/y", "~")
    assert out.loader is not None and out.loader[0].resolved == "~/v/libcudnn.so.9"
    assert scrub_home(host, "/") == host


def test_huge_and_odd_ld_library_path(tmp_path: Path) -> None:
    (tmp_path / "broken.so.9").symlink_to("nowhere")
    llp = ":".join([f"/nonexistent/{i}" for i in range(10_000)] + [str(tmp_path), "", "rel", "$ORIGIN/x"])
    result = collect({"LD_LIBRARY_PATH": llp}, home="/nonexistent-home")
    host = result.host
    assert host.env["LD_LIBRARY_PATH"] == llp
    assert all(len(x.searched) <= 41 for x in host.loader or ())
    assert parse_host(json.loads(json.dumps(host_to_json(host)))) == host


def test_help_lists_probe_and_stays_light() -> None:
    code = ("import sys, envsolve.cli as c; c.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pynvml', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]"
    proc = subprocess.run([sys.executable, "-m", "envsolve", "--help"], capture_output=True, text=True, timeout=60)
    assert "probe" in proc.stdout


def test_driver_present_snapshot_fields_survive(live: Host) -> None:
    # The probe's output shape with a driver (as on a GPU host) reads back equal too.
    from envsolve.resolver.host import GPU, Driver

    gpu_host = replace(live, driver=Driver("550.54.15", "12.4"), gpus=(GPU("NVIDIA L4", "8.9", 23034),))
    assert parse_host(json.loads(json.dumps(host_to_json(gpu_host)))) == gpu_host
