"""Speaker diarization with pyannote.audio 3.1 or 4.x, given a waveform already in memory.

`Diarizer` loads one pipeline for a batch and is called once per file with decoded samples.
pyannote never sees a path: that needs no torchcodec/FFmpeg libraries, avoids pyannote 4.0.7
refusing MP3 paths (its per-crop decoding comes up short), and was reported 5-20x faster on GPUs
(pyannote #1442, #1955; benchmarks/diarize_inmemory_vs_path.py measures it).

The release differences (token keyword `use_auth_token` up to 3.x, `token` from 4.0; default
pipeline; exclusive diarization) come from matrices/pyannote_audio.toml, the installed version's
row or the newest row below it. Local folders are checked for every file and load with
HF_HUB_OFFLINE=1; hub names need a token (the pipelines are gated) unless already cached. The
token goes to pyannote only for hub names, is never logged, and is scrubbed from error text.
Telemetry is switched off. torch and pyannote are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from envsolve.errors import EnvsolveError
from envsolve.pipeline.device import pick_device
from envsolve.pipeline.model import Turn

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DiarizationOptions",
    "DiarizationResult",
    "Diarizer",
    "LoaderProfile",
    "available",
    "check_folder",
    "loader_profile",
]

log = logging.getLogger(__name__)

ENABLE_HINT = (
    'Install the diarization extra: pip install "envsolve[diarize]" (then `envsolve doctor` checks that '
    "torch and torchaudio match), or give an existing diarization with --diarization FILE.rttm, or --no-diarize."
)
CLONE_HINT = (
    "Clone the pipeline once where the hub is reachable (git lfs install && git clone "
    "https://hf.co/pyannote/speaker-diarization-community-1 /models/pyannote-community-1) and pass that folder."
)
# "owner/name" as the hub spells repository ids; anything else that does not exist is a missing folder.
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# Files that pyannote reads for a `$model/<sub>` entry, by the config key that names it.
_FOLDER_FILES = {"plda": ("xvec_transform.npz", "plda.npz")}
_MODEL_FILES = ("pytorch_model.bin",)


@dataclass(frozen=True)
class DiarizationOptions:
    """What to load and how many speakers to look for; `token` is never printed or logged."""

    model: str | None = None  # local pipeline folder, or a hub name; None: the version's default
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    device: str = "auto"  # auto | cpu | cuda
    # else HF_TOKEN or the Hugging Face login; repr=False keeps it out of tracebacks and debug logs
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DiarizationResult:
    """Turns sorted by (start, end, speaker), clipped to the audio; overlapping speech kept."""

    turns: list[Turn]
    exclusive: list[Turn] | None  # at most one speaker at a time (pyannote 4.x); None before 4.0
    pipeline: str  # what ran: folder or hub name, and the pyannote.audio version


@dataclass(frozen=True)
class LoaderProfile:
    """How one pyannote.audio release loads pipelines, as matrices/pyannote_audio.toml records it."""

    version: str
    auth_keyword: str
    default_pipeline: str
    exclusive: bool
    needs_plda: bool


def loader_profile(version: str) -> LoaderProfile:
    """The profile of pyannote.audio `version`: its matrix row, or the newest row below it."""
    from envsolve.resolver import matrices

    wanted = Version(version).release
    best: Mapping[str, Any] | None = None
    for row in matrices.load("pyannote_audio"):
        try:
            release = Version(str(row["version"])).release
        except InvalidVersion:
            continue
        if release <= wanted and (best is None or release > Version(str(best["version"])).release):
            best = row
    if best is None:  # older than every row: 2.x and before only knew use_auth_token
        return LoaderProfile(version, "use_auth_token", "pyannote/speaker-diarization", False, False)
    return LoaderProfile(
        version=version,
        auth_keyword=str(best["auth_keyword"]),
        default_pipeline=str(best["default_pipeline"]),
        exclusive=bool(best.get("exclusive_diarization", False)),
        needs_plda=bool(best.get("needs_plda", False)),
    )


def _installed_version() -> str:
    return metadata.version("pyannote.audio")


def _telemetry_off() -> None:
    # pyannote 4.x reads this variable at every check, so setting it before and after import both work.
    os.environ["PYANNOTE_METRICS_ENABLED"] = "0"


def available() -> tuple[bool, str]:
    """(True, "pyannote.audio X") when pyannote.audio imports here; else (False, why and how to enable it).

    Imports pyannote.audio (and torch) the first time, so it can take seconds.
    """
    if util.find_spec("pyannote") is None or util.find_spec("pyannote.audio") is None:
        return False, f"pyannote.audio is not installed. {ENABLE_HINT}"
    version = _installed_version()
    _telemetry_off()
    try:
        import pyannote.audio  # noqa: F401
    except Exception as exc:  # a torch/torchaudio mismatch raises RuntimeError, removed APIs AttributeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return False, (
            f"pyannote.audio {version} is installed but does not import ({type(exc).__name__}: {first}). "
            "Run `envsolve doctor` for the fix, or use --diarization FILE.rttm / --no-diarize."
        )
    return True, f"pyannote.audio {version}"


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def check_folder(folder: Path, profile: LoaderProfile) -> list[str]:
    """What a local pipeline folder lacks for `profile`'s pyannote, one line each; [] when complete."""
    config_file = folder if folder.is_file() else folder / "config.yaml"
    root = config_file.parent
    if not config_file.is_file():
        return [f"{config_file} (the pipeline's config.yaml)"]
    yaml = importlib.import_module("yaml")  # PyYAML comes with pyannote.audio; untyped

    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [f"a readable {config_file} ({type(exc).__name__}: {exc})"]
    pipeline = config.get("pipeline") if isinstance(config, dict) else None
    params = pipeline.get("params", {}) if isinstance(pipeline, dict) else None
    if not isinstance(params, dict):
        return [f"a `pipeline: {{name: ..., params: ...}}` section in {config_file}"]
    missing: list[str] = []
    for key, value in params.items():
        if not isinstance(value, str):
            continue
        if value.startswith("$model/"):
            sub = root / value[len("$model/") :].split("@")[0]
            missing += [str(sub / name) for name in _FOLDER_FILES.get(key, _MODEL_FILES) if not (sub / name).is_file()]
        elif value.endswith((".bin", ".ckpt", ".npz", ".yaml")) and not Path(value).exists():
            # pyannote resolves these against the working directory, not the folder
            missing.append(f"{value} (named by {key}: in {config_file}; relative paths start at the working directory)")
    name = str(pipeline.get("name", "")) if isinstance(pipeline, dict) else ""
    if profile.needs_plda and name.endswith("SpeakerDiarization") and "plda" not in params:
        missing.append(
            f"a `plda: $model/plda` entry in {config_file} (pyannote.audio {profile.version} otherwise downloads "
            "PLDA from pyannote/speaker-diarization-community-1)"
        )
    return missing


def _find_token(explicit: str | None) -> str | None:
    if explicit or os.environ.get("HF_TOKEN"):
        return explicit or os.environ["HF_TOKEN"]
    try:
        from huggingface_hub import get_token
    except ImportError:
        return None
    found: str | None = get_token()
    return found


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(name, "config.yaml"), str)


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 while a local folder loads; restored after, so the ASR model may still download."""
    saved = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants: Any = sys.modules.get("huggingface_hub.constants")
    # huggingface_hub reads the variable once, at import; if it is imported already, tell it directly.
    saved_constant = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved_constant


def _check_counts(options: DiarizationOptions) -> None:
    num, low, high = options.num_speakers, options.min_speakers, options.max_speakers
    for what, value in (("speakers", num), ("min-speakers", low), ("max-speakers", high)):
        if value is not None and value < 1:
            raise EnvsolveError("diarization-speakers", f"--{what} must be at least 1, got {value}.")
    if low is not None and high is not None and low > high:
        raise EnvsolveError(
            "diarization-speakers",
            f"--min-speakers {low} is above --max-speakers {high}.",
            hint="Swap them, or give --speakers N when the count is known.",
        )
    if num is not None and ((low is not None and low > num) or (high is not None and high < num)):
        raise EnvsolveError(
            "diarization-speakers",
            f"--speakers {num} is outside --min-speakers/--max-speakers [{low}, {high}].",
            hint="Give either --speakers N or the bounds, not both.",
        )


def _locate(model: str, profile: LoaderProfile) -> Path | None:
    """The local folder (or config.yaml) `model` names, or None for a hub name; raises for a missing folder."""
    path = Path(model).expanduser()
    if path.exists():
        missing = check_folder(path, profile)
        if missing:
            raise EnvsolveError(
                "diarization-model-incomplete",
                f"The diarization pipeline folder {path} is missing: {'; '.join(missing)}.",
                hint="Copy the whole repository (git lfs pull fetches the real files behind LFS pointers); "
                + CLONE_HINT,
            )
        return path
    if _HUB_NAME.fullmatch(model) and not model.startswith((".", "~")):
        return None
    raise EnvsolveError(
        "diarization-model-missing",
        f"The diarization pipeline folder {model} does not exist.",
        hint=f"Check the path. {CLONE_HINT}",
    )


def _annotation_turns(annotation: Any, duration: float) -> list[Turn]:
    turns: list[Turn] = []
    for segment, _track, label in annotation.itertracks(yield_label=True):
        # pyannote pads the last 10-second chunk, so a turn may run past the end of the audio
        start, end = max(0.0, float(segment.start)), min(duration, float(segment.end))
        if end > start:
            turns.append(Turn(start, end, str(label)))
    turns.sort(key=lambda t: (t.start, t.end, t.speaker))
    return turns


class Diarizer:
    """One pyannote pipeline, loaded once; call it with each file's samples."""

    def __init__(self, options: DiarizationOptions) -> None:
        _check_counts(options)
        if util.find_spec("pyannote") is None or util.find_spec("pyannote.audio") is None:
            raise EnvsolveError("diarization-unavailable", "pyannote.audio is not installed.", hint=ENABLE_HINT)
        _telemetry_off()
        self.options = options
        self.profile = loader_profile(_installed_version())
        model = options.model or self.profile.default_pipeline
        folder = _locate(model, self.profile)
        token = None if folder is not None else _find_token(options.token)
        if folder is None and token is None and not _in_hub_cache(model):
            raise EnvsolveError(
                "diarization-token-missing",
                f"The diarization pipeline {model} is gated on the Hugging Face hub and no token was found.",
                context="Looked at HF_TOKEN, the Hugging Face login and DiarizationOptions.token.",
                hint=f"Accept the conditions at https://hf.co/{model}, create a read token at "
                "https://hf.co/settings/tokens, then `export HF_TOKEN=hf_...` (or run `hf auth login`). "
                f"Offline: {CLONE_HINT}",
            )
        self.device = pick_device(options.device, "torch")
        self.pipeline_name = f"{folder or model} (pyannote.audio {self.profile.version})"
        self._pipeline = self._load(str(folder) if folder is not None else model, folder is not None, token)

    def _load(self, source: str, local: bool, token: str | None) -> Any:
        import torch

        try:
            from pyannote.audio import Pipeline
        except Exception as exc:
            raise EnvsolveError(
                "diarization-unavailable",
                f"pyannote.audio {self.profile.version} does not import: {type(exc).__name__}: {exc}",
                hint="Run `envsolve doctor` for the fix (usually torch and torchaudio from different releases).",
            ) from None
        kwargs = {self.profile.auth_keyword: token} if token else {}
        printed = io.StringIO()  # pyannote prints its own gated-repo advice; ours is in the error
        try:
            with contextlib.ExitStack() as stack:
                if local:
                    stack.enter_context(_hub_offline())
                stack.enter_context(contextlib.redirect_stdout(printed))
                stack.enter_context(warnings.catch_warnings())
                warnings.simplefilter("ignore")
                pipeline = Pipeline.from_pretrained(source, **kwargs)
        except Exception as exc:
            detail = _scrub(f"{type(exc).__name__}: {exc}", token)
            raise EnvsolveError(
                "diarization-model-unavailable",
                f"Could not load the diarization pipeline {source}.",
                context=detail.splitlines()[0] if detail else None,
                hint=(
                    "Check that the folder is a complete pyannote pipeline for this pyannote.audio."
                    if local
                    else f"Check the network and that your token has access to https://hf.co/{source}. {CLONE_HINT}"
                ),
            ) from None
        if pipeline is None:  # 3.x returns None (after printing) when the hub refuses the token
            raise EnvsolveError(
                "diarization-model-unavailable",
                f"The hub refused the diarization pipeline {source}.",
                hint=f"Accept the conditions at https://hf.co/{source} with the account of your token. {CLONE_HINT}",
            )
        pipeline.to(torch.device(self.device))
        log.info("diarization pipeline %s on %s", self.pipeline_name, self.device)
        return pipeline

    def __call__(
        self,
        audio: np.ndarray,
        sample_rate: int,
        *,
        progress: Callable[[str, int | None, int | None], None] | None = None,
    ) -> DiarizationResult:
        """Diarize `audio`: float samples shaped (time,) or (channel, time), at `sample_rate` Hz.

        `progress`, if given, is called as progress(step, completed, total) by pyannote's stages.
        """
        import numpy as np
        import torch

        samples = np.ascontiguousarray(audio, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None]
        if samples.ndim != 2:
            raise ValueError(f"audio must be shaped (time,) or (channel, time), got {samples.shape}")
        duration = samples.shape[1] / sample_rate
        if samples.shape[1] == 0:
            return DiarizationResult([], [] if self.profile.exclusive else None, self.pipeline_name)
        waveform = torch.from_numpy(samples)
        if sample_rate != 16000:  # once here, rather than per crop inside pyannote
            import torchaudio.functional

            waveform, sample_rate = torchaudio.functional.resample(waveform, sample_rate, 16000), 16000
        options = self.options
        counts = zip(
            ("num_speakers", "min_speakers", "max_speakers"),
            (options.num_speakers, options.min_speakers, options.max_speakers),
            strict=True,
        )
        kwargs: dict[str, Any] = {key: value for key, value in counts if value is not None}
        if progress is not None:
            kwargs["hook"] = lambda step, _artifact, file=None, total=None, completed=None: progress(
                step, completed, total
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                output = self._pipeline({"waveform": waveform, "sample_rate": sample_rate}, **kwargs)
            except torch.cuda.OutOfMemoryError:
                raise EnvsolveError(
                    "diarization-out-of-memory",
                    "The GPU ran out of memory during diarization.",
                    hint="Use --device cpu, or free the GPU (the ASR model may still hold it).",
                ) from None
        for text, origin in dict.fromkeys((" ".join(str(w.message).split()), w.filename) for w in caught):
            # pyannote's own warnings matter (too few speakers found); torch's and numpy's are noise here
            log.log(logging.WARNING if f"pyannote{os.sep}" in origin else logging.DEBUG, "pyannote: %s", text)
        annotation = getattr(output, "speaker_diarization", output)
        exclusive = getattr(output, "exclusive_speaker_diarization", None)
        return DiarizationResult(
            turns=_annotation_turns(annotation, duration),
            exclusive=None if exclusive is None else _annotation_turns(exclusive, duration),
            pipeline=self.pipeline_name,
        )
