"""Diarization: the real pyannote.audio pipeline classes on espeak-ng speech, with tiny local models.

Tests that need pyannote.audio are marked `diarize` and skip with the reason when it is missing or
does not import (in CI, with CI=true, an installed pyannote that does not import fails instead); the
version rules (from matrices/pyannote_audio.toml), the folder checks and the option checks run everywhere.
The tiny models have random weights: these tests check the shape of the output and the flow, never who
spoke when.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from envsolve.errors import EnvsolveError
from envsolve.pipeline import diarize
from envsolve.pipeline.diarize import DiarizationOptions, DiarizationResult, Diarizer, loader_profile
from envsolve.pipeline.model import Turn
from envsolve.resolver import matrices

from speech import conversation

HAS_PYANNOTE = (
    importlib.util.find_spec("pyannote") is not None and importlib.util.find_spec("pyannote.audio") is not None
)
_requires = pytest.mark.skipif(
    not HAS_PYANNOTE, reason='pyannote.audio is not installed (pip install "envsolve[diarize]")'
)
F = TypeVar("F", bound=Callable[..., Any])


def real(test: F) -> F:
    """Marks a test `diarize` and skips it where pyannote.audio is not installed."""
    marked: F = pytest.mark.diarize(_requires(test))
    return marked


SECRET = "hf_envsolveTESTsecret0123456789"
RATE = 16000


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pyannote_ok() -> None:
    ok, why = diarize.available()
    if not ok:
        # Skipping is for a machine without the extra; in CI an installed extra that does not import is a
        # broken stack (torchaudio 2.11.1 beside torch 2.11.0 once did this), and that must fail loudly.
        if HAS_PYANNOTE and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"pyannote.audio is installed but unusable in CI: {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory, pyannote_ok: None) -> Path:
    from envsolve.pipeline.tinymodels import build_pipeline_folder

    return build_pipeline_folder(tmp_path_factory.mktemp("pyannote") / "tiny-community-1")


@pytest.fixture(scope="module")
def speech() -> tuple[Any, list[Turn]]:
    """Two voices taking turns at 16 kHz (tests/speech.py's conversation), and the turns as spoken."""
    np = pytest.importorskip("numpy")
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install -y espeak-ng sox)")
    talk = conversation(suffix=".wav", sample_rate=RATE)
    with wave.open(str(talk.path)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return samples.astype(np.float32) / 32768.0, list(talk.turns)


@pytest.fixture(scope="module")
def diarizer(tiny_folder: Path) -> Diarizer:
    return Diarizer(DiarizationOptions(model=str(tiny_folder), device="cpu"))


@pytest.fixture
def no_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token anywhere: not in the environment, not in the Hugging Face login."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    if importlib.util.find_spec("huggingface_hub") is not None:
        monkeypatch.setattr("huggingface_hub.get_token", lambda: None)


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make hub calls fail at once (no hub is reachable here; this keeps the failure fast)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    yield


def _check_turns(turns: list[Turn], duration: float) -> None:
    assert all(isinstance(turn, Turn) for turn in turns)
    assert turns == sorted(turns, key=lambda t: (t.start, t.end, t.speaker))
    assert all(0.0 <= turn.start < turn.end <= duration for turn in turns)
    assert all(re.fullmatch(r"SPEAKER_\d\d", turn.speaker) for turn in turns)


# ---------------------------------------------------------------- version rules, from the matrix


@pytest.mark.parametrize("row", list(matrices.load("pyannote_audio")), ids=lambda row: str(row["version"]))
def test_profile_follows_the_matrix_row(row: Any) -> None:
    profile = loader_profile(str(row["version"]))
    assert profile.auth_keyword == row["auth_keyword"]
    assert profile.default_pipeline == row["default_pipeline"]
    assert profile.exclusive == row.get("exclusive_diarization", False)


@pytest.mark.parametrize(
    ("version", "keyword", "default", "exclusive"),
    [
        ("3.1.1", "use_auth_token", "pyannote/speaker-diarization-3.1", False),
        ("3.3.2", "use_auth_token", "pyannote/speaker-diarization-3.1", False),
        ("4.0.7", "token", "pyannote/speaker-diarization-community-1", True),
        ("4.3.0", "token", "pyannote/speaker-diarization-community-1", True),  # newer than the matrix
        ("4.0.8.dev1", "token", "pyannote/speaker-diarization-community-1", True),
        ("2.1.1", "use_auth_token", "pyannote/speaker-diarization", False),  # older than the matrix
    ],
)
def test_profile_for_versions(version: str, keyword: str, default: str, exclusive: bool) -> None:
    profile = loader_profile(version)
    assert (profile.auth_keyword, profile.default_pipeline, profile.exclusive) == (keyword, default, exclusive)


class _FakePipeline:
    """Stands in for what Pipeline.from_pretrained returns; answers with a fixed Annotation."""

    def __init__(self, output: Any) -> None:
        self.output = output
        self.calls: list[dict[str, Any]] = []

    def to(self, device: Any) -> _FakePipeline:
        return self

    def __call__(self, file: Any, **kwargs: Any) -> Any:
        assert set(file) == {"waveform", "sample_rate"}  # in memory, never a path
        self.calls.append(kwargs)
        return self.output


@real
@pytest.mark.parametrize(
    ("version", "keyword", "default"),
    [("3.1.1", "use_auth_token", "pyannote/speaker-diarization-3.1"), ("4.0.7", "token", None)],
)
def test_loader_keyword_by_version(
    version: str, keyword: str, default: str | None, monkeypatch: pytest.MonkeyPatch, pyannote_ok: None
) -> None:
    import numpy as np
    import pyannote.audio
    from pyannote.core import Annotation, Segment

    annotation = Annotation()
    annotation[Segment(0.5, 1.5)] = "SPEAKER_00"
    annotation[Segment(1.0, 9.0)] = "SPEAKER_01"
    fake = _FakePipeline(annotation)  # a bare Annotation is what 3.x returns
    seen: dict[str, Any] = {}

    def from_pretrained(checkpoint: Any, **kwargs: Any) -> _FakePipeline:
        seen.update(kwargs, checkpoint=checkpoint)
        return fake

    monkeypatch.setattr(diarize, "_installed_version", lambda: version)
    monkeypatch.setattr(pyannote.audio.Pipeline, "from_pretrained", from_pretrained)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    result = Diarizer(DiarizationOptions(device="cpu", max_speakers=3))(np.zeros(RATE * 2, np.float32), RATE)
    assert seen == {"checkpoint": default or loader_profile(version).default_pipeline, keyword: SECRET}
    assert fake.calls == [{"max_speakers": 3}]
    assert result.exclusive is None  # no exclusive diarization in a bare Annotation
    assert result.turns == [Turn(0.5, 1.5, "SPEAKER_00"), Turn(1.0, 2.0, "SPEAKER_01")]  # clipped to 2 s
    assert f"pyannote.audio {version}" in result.pipeline


# ---------------------------------------------------------------- options and folders, no pyannote needed


@pytest.mark.parametrize(
    "options",
    [
        DiarizationOptions(num_speakers=0),
        DiarizationOptions(min_speakers=3, max_speakers=2),
        DiarizationOptions(num_speakers=5, max_speakers=4),
    ],
)
def test_bad_speaker_counts(options: DiarizationOptions) -> None:
    with pytest.raises(EnvsolveError) as caught:
        Diarizer(options)
    assert caught.value.reference == "diarization-speakers"


def test_options_repr_hides_token() -> None:
    assert SECRET not in repr(DiarizationOptions(token=SECRET))


def test_import_is_light() -> None:
    code = (
        "import sys, envsolve.pipeline.diarize; print(sorted({'torch', 'pyannote.audio', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_available_says_how_to_enable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diarize.util, "find_spec", lambda name: None)
    ok, why = diarize.available()
    assert not ok
    assert 'pip install "envsolve[diarize]"' in why and "--no-diarize" in why


def _write(folder: Path, config: str, files: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(config)
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    return folder


COMMUNITY = """\
pipeline:
  name: pyannote.audio.pipelines.SpeakerDiarization
  params:
    clustering: VBxClustering
    embedding: $model/embedding
    plda: $model/plda
    segmentation: $model/segmentation
"""
ALL_FILES = (
    "segmentation/pytorch_model.bin",
    "embedding/pytorch_model.bin",
    "plda/xvec_transform.npz",
    "plda/plda.npz",
)


def test_check_folder(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    v4 = loader_profile("4.0.7")
    assert diarize.check_folder(_write(tmp_path / "ok", COMMUNITY, ALL_FILES), v4) == []
    assert diarize.check_folder(tmp_path / "ok" / "config.yaml", v4) == []
    assert diarize.check_folder(tmp_path / "empty", v4) == [
        f"{tmp_path / 'empty' / 'config.yaml'} (the pipeline's config.yaml)"
    ]
    partial = _write(tmp_path / "partial", COMMUNITY, ALL_FILES[:2] + ALL_FILES[3:])
    assert diarize.check_folder(partial, v4) == [str(partial / "plda" / "xvec_transform.npz")]
    no_plda = _write(tmp_path / "v31", COMMUNITY.replace("    plda: $model/plda\n", ""), ALL_FILES)
    assert ["plda: $model/plda" in line for line in diarize.check_folder(no_plda, v4)] == [True]
    assert diarize.check_folder(no_plda, loader_profile("3.1.1")) == []  # 3.x has no PLDA
    relative = _write(tmp_path / "rel", COMMUNITY.replace("$model/segmentation", "models/seg.bin"), ALL_FILES)
    assert ["models/seg.bin" in line for line in diarize.check_folder(relative, v4)] == [True]
    assert "pipeline:" in diarize.check_folder(_write(tmp_path / "junk", "[1, 2]\n"), v4)[0]


# ---------------------------------------------------------------- the real pipeline on speech


@real
def test_tiny_models_load_as_pyannote_checkpoints(tiny_folder: Path) -> None:
    import numpy as np
    from pyannote.audio import Model
    from pyannote.audio.core.plda import PLDA

    segmentation = Model.from_pretrained(tiny_folder / "segmentation")
    assert segmentation.specifications.powerset and len(segmentation.specifications.classes) == 3
    embedding = Model.from_pretrained(tiny_folder, subfolder="embedding")
    assert embedding.dimension == 256
    plda = PLDA.from_pretrained(tiny_folder, subfolder="plda")
    assert plda(np.random.default_rng(0).standard_normal((5, 256))).shape == (5, 128)
    assert sorted(p.name for p in tiny_folder.rglob("*") if p.is_file()) == [
        "README.md",
        "config.yaml",
        "plda.npz",
        "pytorch_model.bin",
        "pytorch_model.bin",
        "xvec_transform.npz",
    ]


@real
def test_diarize_speech(diarizer: Diarizer, speech: tuple[Any, list[Turn]], tiny_folder: Path) -> None:
    audio, _spoken = speech
    steps: list[str] = []
    result = diarizer(audio, RATE, progress=lambda step, done, total: steps.append(step))
    duration = len(audio) / RATE
    assert isinstance(result, DiarizationResult)
    assert result.turns
    _check_turns(result.turns, duration)
    assert str(tiny_folder) in result.pipeline and "pyannote.audio 4." in result.pipeline
    assert result.exclusive is not None and result.exclusive
    _check_turns(result.exclusive, duration)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(result.exclusive, result.exclusive[1:], strict=False))
    assert {"segmentation", "embeddings"} <= set(steps)


@real
def test_speaker_counts_reach_pyannote(tiny_folder: Path, speech: tuple[Any, list[Turn]]) -> None:
    audio, _spoken = speech
    one = Diarizer(DiarizationOptions(model=str(tiny_folder), device="cpu", max_speakers=1))(audio, RATE)
    assert len({turn.speaker for turn in one.turns}) == 1
    options = DiarizationOptions(model=str(tiny_folder), num_speakers=2, min_speakers=1, max_speakers=3)
    two = Diarizer(options)
    seen: list[dict[str, Any]] = []
    real = two._pipeline
    two._pipeline = lambda file, **kwargs: seen.append(kwargs) or real(file, **kwargs)
    two(audio, RATE)
    assert seen == [{"num_speakers": 2, "min_speakers": 1, "max_speakers": 3}]


@real
def test_odd_inputs(diarizer: Diarizer, speech: tuple[Any, list[Turn]]) -> None:
    import numpy as np

    audio, _spoken = speech
    empty = diarizer(np.zeros(0, np.float32), RATE)
    assert empty.turns == [] and empty.exclusive == []
    at_8k = diarizer(audio[::2].copy(), 8000)  # resampled once to 16 kHz
    _check_turns(at_8k.turns, len(audio[::2]) / 8000)
    stereo = diarizer(np.stack([audio, audio * 0.5]), RATE)
    _check_turns(stereo.turns, len(audio) / RATE)
    short = diarizer(audio[: RATE // 5], RATE)  # 0.2 s: pyannote pads it to a 10 s chunk
    _check_turns(short.turns, 0.2)
    with pytest.raises(ValueError, match="shaped"):
        diarizer(np.zeros((1, 2, 3), np.float32), RATE)


@real
def test_local_folder_loads_offline(tiny_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access while loading a local folder: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_TOKEN", SECRET)  # present, but a folder needs none
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    loaded = Diarizer(DiarizationOptions(model=str(tiny_folder)))
    assert "HF_HUB_OFFLINE" not in os.environ  # restored for the ASR side
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "0"
    from pyannote.audio.telemetry.metrics import is_metrics_enabled

    assert not is_metrics_enabled()
    assert loaded.device == "cpu" or loaded.device == "cuda"


@real
def test_legacy_output_has_no_exclusive(tiny_folder: Path, tmp_path: Path, speech: tuple[Any, list[Turn]]) -> None:
    legacy = tmp_path / "legacy"
    shutil.copytree(tiny_folder, legacy)
    config = (legacy / "config.yaml").read_text()
    (legacy / "config.yaml").write_text(config.replace("  params:\n", "  params:\n    legacy: true\n", 1))
    result = Diarizer(DiarizationOptions(model=str(legacy), device="cpu"))(speech[0], RATE)
    assert result.exclusive is None
    _check_turns(result.turns, len(speech[0]) / RATE)


# ---------------------------------------------------------------- errors people can act on


@real
def test_missing_folder(tmp_path: Path, pyannote_ok: None) -> None:
    with pytest.raises(EnvsolveError) as caught:
        Diarizer(DiarizationOptions(model=str(tmp_path / "nowhere" / "pyannote")))
    assert caught.value.reference == "diarization-model-missing"
    assert "git clone https://hf.co/pyannote/speaker-diarization-community-1" in caught.value.render()


@real
def test_incomplete_folder_names_the_file_and_the_fix_works(tiny_folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_folder, broken)
    (broken / "embedding" / "pytorch_model.bin").unlink()
    with pytest.raises(EnvsolveError) as caught:
        Diarizer(DiarizationOptions(model=str(broken), device="cpu"))
    assert caught.value.reference == "diarization-model-incomplete"
    assert str(broken / "embedding" / "pytorch_model.bin") in caught.value.message
    # a 3.1-style config on 4.x: the hint says to add `plda: $model/plda`; doing so makes it load
    shutil.copy(tiny_folder / "embedding" / "pytorch_model.bin", broken / "embedding" / "pytorch_model.bin")
    config = (broken / "config.yaml").read_text()
    (broken / "config.yaml").write_text(config.replace("    plda: $model/plda\n", ""))
    with pytest.raises(EnvsolveError) as caught:
        Diarizer(DiarizationOptions(model=str(broken), device="cpu"))
    assert "`plda: $model/plda`" in caught.value.message
    (broken / "config.yaml").write_text(config)
    assert Diarizer(DiarizationOptions(model=str(broken), device="cpu")).pipeline_name.startswith(str(broken))


@real
def test_gated_model_without_token(no_login: None, pyannote_ok: None) -> None:
    with pytest.raises(EnvsolveError) as caught:
        Diarizer(DiarizationOptions())  # the installed version's default, a gated hub pipeline
    text = caught.value.render()
    assert caught.value.reference == "diarization-token-missing"
    assert "https://hf.co/pyannote/speaker-diarization-community-1" in text
    assert "export HF_TOKEN=hf_..." in text and "git clone" in text


@real
@pytest.mark.parametrize("via", ["option", "environment"])
def test_token_never_shown(
    via: str,
    hub_offline: None,
    no_login: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    pyannote_ok: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    if via == "environment":
        monkeypatch.setenv("HF_TOKEN", SECRET)
    options = DiarizationOptions(
        model="pyannote/speaker-diarization-community-1", token=SECRET if via == "option" else None
    )
    with pytest.raises(EnvsolveError) as caught:
        Diarizer(options)
    assert caught.value.reference == "diarization-model-unavailable"
    captured = capsys.readouterr()
    for text in (
        caught.value.render(),
        repr(caught.value.args),
        caplog.text,
        captured.out,
        captured.err,
        repr(options),
    ):
        assert SECRET not in text


@real
def test_cuda_without_gpu(tiny_folder: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    with pytest.raises(EnvsolveError) as caught:
        Diarizer(DiarizationOptions(model=str(tiny_folder), device="cuda"))
    assert caught.value.reference == "cuda-not-visible" and "--device cpu" in caught.value.render()


@real
def test_run_no_asr_writes_rttm_without_whisper(tiny_folder: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20.7: `envsolve run --no-asr` (the diarization workload) diarizes real speech with the real pyannote
    pipeline and writes STEM.rttm only, with faster-whisper impossible to import (a diarization-only environment
    has none) and no Whisper model loaded."""
    from envsolve.cli import main
    from envsolve.pipeline.rttm import read_rttm

    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox make the test speech")
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # `import faster_whisper` raises ImportError
    monkeypatch.setattr("envsolve.pipeline.runner.load_model",
                        lambda *a, **k: pytest.fail("--no-asr loaded a Whisper model"))
    talk = conversation(suffix=".wav")
    out = tmp_path / "out"
    code = main(["run", str(talk.path), "--no-asr", "--diarization-model", str(tiny_folder), "--device", "cpu",
                 "-o", str(out), "--progress", "none"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{talk.path.stem}.rttm"]
    turns = [t for per_file in read_rttm(out / f"{talk.path.stem}.rttm").values() for t in per_file]
    assert turns and all(t.end > t.start for t in turns)


def test_run_no_asr_refuses_what_leaves_nothing_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from envsolve.cli import main

    for extra in (["--no-diarize"], ["-f", "json"]):
        assert main(["run", str(tmp_path / "a.wav"), "--no-asr", *extra]) == 2
        assert "error[usage]" in capsys.readouterr().err
