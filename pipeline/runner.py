"""The batch behind `envsolve run`: decode once, recognise, diarize, attribute, write; file after file.

- Models load once, on the first file that needs them (a batch that is all skipped loads nothing).
- Each file is decoded once; the same float32 array goes to Whisper and to the diarizer.
- A file whose outputs all exist is skipped unless `overwrite`; outputs are written atomically,
  so an existing file is always a complete one and a killed batch resumes where it stopped.
- One bad file never stops the batch: its error is recorded and the next file starts.
  A Whisper model that cannot load stops the run, since every file would fail the same way.

Diarization comes from `envsolve.pipeline.diarize.Diarizer` (pyannote, one pipeline for the
batch), from an RTTM file or folder (`diarization_file`), or not at all. When pyannote is missing
or its pipeline cannot load, the run says why and goes on without speakers, unless speakers were
asked for (--speakers, --min/--max-speakers, --diarization-model): then that error stops the run.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import resource
import shlex
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envsolve import stop
from envsolve.atomic import output_lock
from envsolve.errors import EnvsolveError
from envsolve.pipeline.asr import AsrOptions, LoadedModel, load_model, transcribe
from envsolve.pipeline.attribution import attribute, rename_speakers, rename_turns
from envsolve.pipeline.diarize import DiarizationOptions, DiarizationResult, Diarizer, available
from envsolve.pipeline.model import Transcript, Turn
from envsolve.pipeline.outputs import check_output_dir, output_paths, select_formats, write_outputs
from envsolve.pipeline.progress import Progress
from envsolve.pipeline.rttm import read_rttm
from envsolve.terminal import printable

__all__ = ["AUDIO_SUFFIXES", "FileResult", "RunOptions", "Runner", "collect_inputs", "diarization_unavailable",
           "exit_status"]

# What a folder given as input contributes: formats FFmpeg decodes that people record speech in.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wma", ".aif", ".aiff", ".amr",
     ".webm", ".mp4", ".m4v", ".mkv", ".mov", ".3gp"}
)
_NOT_INSTALLED = "pyannote.audio is not installed"
ENABLE_DIARIZATION = (
    "Diarization is off: {why}. To get speakers, install pyannote.audio (`pip install 'envsolve[diarize]'`) "
    "and give a local pipeline folder with --diarization-model (or set HF_TOKEN for the Hub), or pass an "
    "existing diarization with --diarization FILE.rttm."
)


@dataclass(frozen=True)
class RunOptions:
    """Everything `envsolve run` was asked to do, apart from recognition (AsrOptions)."""

    inputs: tuple[str, ...]
    asr: AsrOptions = field(default_factory=AsrOptions)
    output_dir: Path = Path(".")
    formats: tuple[str, ...] = ("all",)
    overwrite: bool = False
    diarize: bool = True
    diarization_file: Path | None = None
    diarization_model: str | None = None
    speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    speaker_names: dict[str, str] = field(default_factory=dict)
    transcribe: bool = True  # False: diarization only (`--no-asr`, the diarization workload): RTTM, no Whisper


@dataclass
class FileResult:
    """One input's outcome: status ok, skipped or failed, with its timings and where outputs went."""

    source: str
    status: str = "ok"
    error: str | None = None
    reference: str | None = None
    duration: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    peak_vram_mb: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(self.stages.values())

    @property
    def rtf(self) -> float | None:
        """Realtime factor: processing seconds per second of audio (0.05 = 20x faster than realtime)."""
        return self.seconds / self.duration if self.duration > 0 else None

    def record(self) -> dict[str, Any]:
        return {"source": self.source, "status": self.status, "error": self.error, "reference": self.reference,
                "duration_s": round(self.duration, 3), "stages_s": {k: round(v, 4) for k, v in self.stages.items()},
                "rtf": None if self.rtf is None else round(self.rtf, 4), "peak_rss_mb": round(self.peak_rss_mb, 1),
                "peak_vram_mb": self.peak_vram_mb, "outputs": {k: str(v) for k, v in self.outputs.items()}}


class _Fatal(Exception):
    """Carries an error that every later file would hit too (a model that cannot load): ends the run."""

    def __init__(self, error: EnvsolveError) -> None:
        super().__init__(error.message)
        self.error = error


def _input_error(reference: str, message: str, hint: str) -> EnvsolveError:
    return EnvsolveError(reference, message, hint=hint, exit_code=1)


def collect_inputs(inputs: tuple[str, ...], notes: list[str] | None = None) -> list[tuple[str, Path | EnvsolveError]]:
    """Expand folders (their audio files, not recursive) and globs; a miss is an entry with its error.

    Nothing here raises: a symlink loop, an unreadable folder or a dangling link is an entry with its error,
    so the batch goes on with the other inputs. Symlinks inside a folder are skipped (a note in `notes` says
    so): following them is how a folder walk ends up elsewhere or in a loop. Globs are expanded by pathlib,
    whose `**` does not descend into symlinked folders, so a tree with symlink loops cannot make it spin.
    """
    found: list[tuple[str, Path | EnvsolveError]] = []
    for item in inputs:
        path = Path(os.path.expanduser(item))  # Path.expanduser raises for ~nosuchuser; this leaves it as is
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists() or path.is_symlink()
        except OSError:  # EACCES, ENAMETOOLONG: not a folder we can read; a pattern or a file (failing later)
            is_dir, exists = False, False
        if is_dir:
            found.extend(_folder(item, path, notes))
        elif not exists and glob.has_magic(item):
            matches = _glob(path)
            if isinstance(matches, EnvsolveError):
                found.append((item, matches))
                continue
            if not matches:
                found.append((item, _input_error("input-no-match", f"Pattern {printable(item)} matches no file.",
                                                 "Check the pattern; quote it so that the shell passes it as is.")))
            found.extend((str(m), m) for m in matches)
        else:
            found.append((item, path))
    unique: dict[str, tuple[str, Path | EnvsolveError]] = {}
    for name, target in found:
        # realpath, not Path.resolve(): it raises RuntimeError on a symlink loop; realpath leaves the loop as is.
        key = os.path.realpath(target) if isinstance(target, Path) else name
        unique.setdefault(key, (name, target))
    return list(unique.values())


def _folder(item: str, path: Path, notes: list[str] | None) -> list[tuple[str, Path | EnvsolveError]]:
    try:
        entries = sorted(path.iterdir())
    except OSError as error:
        return [(item, _input_error("input-folder-unreadable", f"Folder {printable(item)} cannot be listed "
                                    f"({error.strerror or error}).",
                                    f"Run `chmod a+rx {shlex.quote(item)}`, or give its files one by one."))]
    files: list[Path] = []
    linked: list[str] = []
    for entry in entries:
        if entry.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        if entry.is_symlink():
            linked.append(entry.name)
        elif entry.is_file():
            files.append(entry)
    if linked and notes is not None:
        shown = ", ".join(linked[:5]) + (f" and {len(linked) - 5} more" if len(linked) > 5 else "")
        notes.append(f"{item}: skipped {len(linked)} symbolic link(s) ({shown}); give them as inputs by name "
                     "to transcribe them")
    if not files:
        return [(item, _input_error("input-folder-empty", f"Folder {printable(item)} has no audio files.",
                                    f"Audio files end in one of {' '.join(sorted(AUDIO_SUFFIXES))}."))]
    return [(str(p), p) for p in files]


def _glob(path: Path) -> list[Path] | EnvsolveError:
    parts = path.parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:first]) if first else Path(".")
    pattern = "/".join(parts[first:])
    try:
        return [match for match in sorted(root.glob(pattern)) if match.is_file()]
    except (OSError, ValueError) as error:
        return _input_error("input-glob-failed", f"Pattern {printable(str(path))} cannot be expanded: {error}.",
                            "Check the pattern and that its folders can be listed.")


def diarization_unavailable() -> str | None:
    """Why pyannote cannot diarize here (not installed, or installed but not importing), or None.

    Imports pyannote.audio and torch the first time, so a broken stack is named before the first file.
    """
    if importlib.util.find_spec("pyannote") is None or importlib.util.find_spec("pyannote.audio") is None:
        return _NOT_INSTALLED
    usable, why = available()
    return None if usable else why


def exit_status(results: list[FileResult]) -> int:
    """0 when every file is ok or skipped, 1 when any failed."""
    return 1 if any(r.status == "failed" for r in results) else 0


def _peak_rss_mb() -> float:
    # ru_maxrss is the process's peak so far: KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _peak_vram_mb() -> float | None:
    """Peak GPU memory that torch allocated (pyannote), where torch is already loaded; CTranslate2's
    own allocations are invisible to torch, so this is a lower bound on a GPU."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return float(torch.cuda.max_memory_allocated()) / (1 << 20)
    except Exception:
        return None
    return None


SKIPPED_NOTE = "outputs exist (use --overwrite to redo)"


def check_name_clash(stems: dict[str, str], name: str, target: Path, output_dir: Path) -> None:
    """Two inputs with one stem would overwrite each other's outputs: the second is refused (`stems` grows)."""
    previous = stems.setdefault(target.stem, name)
    if previous != name:
        raise _input_error("output-name-clash", f"{name} and {previous} would both write {target.stem}.* in "
                           f"{output_dir}.", "Run them separately with different -o folders, or rename one.")


def finished(options: RunOptions, formats: list[str], stem: str) -> bool:
    """Every output of `stem` exists and --overwrite was not given: resume skips it."""
    return not options.overwrite and all(p.exists() for p in output_paths(options.output_dir, stem, formats).values())


def _record_failure(result: FileResult, error: Exception) -> None:
    result.status = "failed"
    if isinstance(error, EnvsolveError):
        result.error, result.reference = error.render(), error.reference
    else:
        result.reference = "internal-error"
        result.error = f"internal error (a bug in envsolve, please report it): {type(error).__name__}: {error}"


class Runner:
    """Runs a batch. `model` may be passed in to share one loaded Whisper model between runs."""

    def __init__(self, options: RunOptions, progress: Progress | None = None, model: LoadedModel | None = None):
        self.options = options
        self.progress = progress or Progress()
        self.model = model
        self.model_load_seconds = 0.0 if model is None else model.load_seconds
        self._diarizer: Diarizer | None = None
        self._diarizer_checked = False
        self._rttm_cache: dict[str, list[Turn]] | None = None
        self._formats = select_formats(options.formats)  # refuses an unknown format before any work
        self._validate()

    def _validate(self) -> None:
        """What can be checked before the first model loads: the output folder, the diarization file."""
        options = self.options
        if options.diarization_file is not None and not options.diarization_file.exists():
            raise EnvsolveError("rttm-not-found", f"Diarization file {printable(options.diarization_file)} does "
                                "not exist.", hint="Give an RTTM file, or a folder holding STEM.rttm for each input.")
        if options.diarization_file is not None and not options.diarization_file.is_dir():
            self._rttm_cache = _read_rttm_file(options.diarization_file)
        check_output_dir(options.output_dir)  # last: a refused run leaves no new folder behind

    def run(self) -> Iterator[FileResult]:
        """Process every input in order, yielding each file's result as soon as it is done."""
        notes: list[str] = []
        inputs = collect_inputs(self.options.inputs, notes)
        for note in notes:
            self.progress.note(note)
        stems: dict[str, str] = {}
        for name, target in inputs:
            stop.check()
            result = FileResult(name)
            try:
                if isinstance(target, EnvsolveError):
                    raise target
                check_name_clash(stems, name, target, self.options.output_dir)
                # Per output: a second run into the same folder waits here, then finds the outputs and skips.
                with output_lock(self.options.output_dir, target.stem):
                    self._process(target, result)
            except Exception as error:
                # A failure after a stop request is the stop, caught and rewrapped by a library on the way
                # (envsolve.stop): the run ends as interrupted, and this file is not reported as broken.
                stop.check()
                if isinstance(error, _Fatal):
                    raise error.error from None
                _record_failure(result, error)
            result.peak_rss_mb = _peak_rss_mb()
            result.peak_vram_mb = _peak_vram_mb()
            self.progress.result(result.record())
            yield result

    def _process(self, path: Path, result: FileResult) -> None:
        from envsolve.pipeline.audio import decode

        options, progress, stem = self.options, self.progress, path.stem
        if finished(options, self._formats, stem):
            result.status = "skipped"
            result.notes.append(SKIPPED_NOTE)
            return
        with self._stage(result, path.name, "decode"):
            audio = decode(path)
        result.duration = audio.duration
        for warning in audio.warnings:
            progress.note(warning)
        if not options.transcribe:
            self._diarize_only(path, audio, result)
            return
        self._load_models(path.name)
        assert self.model is not None
        if audio.silent:
            result.notes.append("silence only: empty transcript")
            progress.note("silence only: writing an empty transcript")
            transcript = Transcript((), duration=audio.duration, model=self.model.name,
                                    versions=dict(self.model.versions))
        else:
            with self._stage(result, path.name, "asr"):
                transcript = transcribe(self.model, audio.samples, options.asr, sample_rate=audio.sample_rate,
                                        on_progress=progress.update, release=audio.release)
        turns, exclusive = self._diarization(path, audio.samples, audio.sample_rate, result, audio.silent)
        audio.release(0, len(audio.samples))
        del audio  # the spool goes with the last reference to its mapping
        with self._stage(result, path.name, "attribute"):
            if turns or exclusive:
                transcript = attribute(transcript, turns, exclusive=exclusive)
            if options.speaker_names:
                transcript = rename_speakers(transcript, options.speaker_names)
                turns = rename_turns(turns, options.speaker_names)
        # Stage seconds as measured here (the write stage cannot time itself into its own output).
        timings = {**{f"{k}_s": v for k, v in result.stages.items()}, "model_load_s": self.model_load_seconds}
        transcript = dataclasses.replace(transcript, timings=timings)
        with self._stage(result, path.name, "write"):
            result.outputs = write_outputs(transcript, turns, options.output_dir, stem, self._formats)

    def load(self) -> None:
        """Load the models now rather than on the first file (a server's start-up hook, such as Modal's
        @modal.enter); EnvsolveError when a model cannot load."""
        try:
            self._load_models("models")
        except _Fatal as fatal:
            raise fatal.error from None

    def _load_models(self, name: str) -> None:
        options, progress = self.options, self.progress
        if self.model is None and options.diarize and options.diarization_file is None:
            # torch before ctranslate2: once pyannote has imported torch, its libcublas/libcudnn are loaded and
            # ctranslate2's dlopen of the same sonames gets those copies (matrices/workloads.toml, pipeline).
            self._load_diarizer(name)
        if self.model is None and options.transcribe:  # --no-asr loads no Whisper model
            # Timed apart from the file's stages: a one-off cost must not inflate one file's RTF.
            progress.start(name, "load")
            try:
                self.model = load_model(options.asr)
            except EnvsolveError as error:
                raise _Fatal(error) from None
            progress.finish()
            self.model_load_seconds = self.model.load_seconds
            progress.note(f"model {self.model.name} ({self.model.chosen}) on {self.model.device} "
                          f"({self.model.compute_type}) loaded in {self.model.load_seconds:.2f} s")

    def _diarize_only(self, path: Path, audio: Any, result: FileResult) -> None:
        """`--no-asr`: speakers without words. No Whisper model is loaded (a diarization-only environment has no
        faster-whisper), and pyannote must be there: a run that was asked only for speakers cannot go without."""
        if self.options.diarization_file is None and self._load_diarizer(path.name) is None:
            raise _Fatal(EnvsolveError("diarization-unavailable", "envsolve run --no-asr diarizes only, but no "
                                       "diarization pipeline could be loaded (see the note above).",
                                       hint="Install the diarize extra (pip install 'envsolve[diarize]'), give "
                                       "--diarization-model PATH, or set HF_TOKEN for the hub's pipeline."))
        turns, _ = self._diarization(path, audio.samples, audio.sample_rate, result, audio.silent)
        if self.options.speaker_names:
            turns = rename_turns(turns, self.options.speaker_names)
        empty = Transcript((), duration=audio.duration, timings={f"{k}_s": v for k, v in result.stages.items()})
        with self._stage(result, path.name, "write"):
            result.outputs = write_outputs(empty, turns, self.options.output_dir, path.stem, self._formats)

    def _diarization(
        self, path: Path, samples: Any, sample_rate: int, result: FileResult, silent: bool
    ) -> tuple[list[Turn], list[Turn] | None]:
        options = self.options
        if options.diarization_file is not None:
            return self._turns_from_rttm(path), None
        if not options.diarize or silent:
            return [], None
        diarizer = self._load_diarizer(path.name)
        if diarizer is None:
            return [], None

        def report(step: str, completed: int | None, total: int | None) -> None:
            if completed is not None and total:
                self.progress.update(completed / total)

        with self._stage(result, path.name, "diarize"):
            found: DiarizationResult = diarizer(samples, sample_rate, progress=report)
        return list(found.turns), None if found.exclusive is None else list(found.exclusive)

    def _load_diarizer(self, name: str) -> Diarizer | None:
        """The batch's pyannote pipeline, loaded on the first file that needs it; None: no speakers this run."""
        if self._diarizer_checked:
            return self._diarizer
        self._diarizer_checked = True
        options, progress = self.options, self.progress
        why = diarization_unavailable()
        if why:
            progress.note(ENABLE_DIARIZATION.format(why=why) if why == _NOT_INSTALLED else f"Diarization is off: {why}")
            return None
        # Timed apart from the file's stages, as the Whisper model is: a one-off cost is no file's RTF.
        progress.start(name, "load")
        started = time.perf_counter()
        try:
            self._diarizer = Diarizer(DiarizationOptions(
                model=options.diarization_model, num_speakers=options.speakers, min_speakers=options.min_speakers,
                max_speakers=options.max_speakers, device=options.asr.device))
        except EnvsolveError as error:
            if options.diarization_model or options.speakers or options.min_speakers or options.max_speakers:
                raise _Fatal(error) from None  # speakers were asked for: a run without them is wrong
            # Not asked for: pyannote being installed is no promise of a pipeline; go on without speakers.
            progress.note(f"Diarization is off: {error.render()}")
            return None
        progress.finish()
        progress.note(f"diarization pipeline {self._diarizer.pipeline_name} on {self._diarizer.device} loaded in "
                      f"{time.perf_counter() - started:.2f} s")
        return self._diarizer

    def _turns_from_rttm(self, path: Path) -> list[Turn]:
        source = self.options.diarization_file
        assert source is not None
        if source.is_dir():
            per_file = source / f"{path.stem}.rttm"
            if not per_file.is_file():
                raise _input_error("rttm-not-found", f"No {per_file.name} in {source} for {path}.",
                                   f"Put the diarization of {path.name} in {per_file}.")
            by_uri = _read_rttm_file(per_file)
            return [turn for turns in by_uri.values() for turn in turns]
        if self._rttm_cache is None:
            self._rttm_cache = _read_rttm_file(source)
        if path.stem in self._rttm_cache:
            return list(self._rttm_cache[path.stem])
        if len(self._rttm_cache) == 1 and len(self.options.inputs) == 1:
            return list(next(iter(self._rttm_cache.values())))  # one file, one diarization: the ids may differ
        uris = ", ".join(sorted(self._rttm_cache)) or "none"
        raise _input_error("rttm-no-turns-for-file", f"{source} has no turns for {path.stem} (file ids: {uris}).",
                           f"Use {path.stem} as the RTTM file id (second field) of its lines.")

    def _stage(self, result: FileResult, name: str, stage: str) -> _Stage:
        return _Stage(self.progress, result, name, stage)


def _read_rttm_file(path: Path) -> dict[str, list[Turn]]:
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the read for ever
            raise EnvsolveError("rttm-unreadable", f"{printable(path)} is not a regular file.",
                                hint="Give an RTTM file (or a folder of STEM.rttm files).")
        return read_rttm(path)
    except OSError as error:
        raise EnvsolveError("rttm-unreadable", f"Cannot read {printable(path)}: {error.strerror or error}.",
                            hint="Give a readable RTTM file.") from None


class _Stage:
    """Times one stage into `result.stages` and reports its start and end."""

    def __init__(self, progress: Progress, result: FileResult, name: str, stage: str):
        self.progress, self.result, self.name, self.stage = progress, result, name, stage
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = time.perf_counter()
        self.progress.start(self.name, self.stage)

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.result.stages[self.stage] = time.perf_counter() - self.started
        if kind is None:
            self.progress.finish()
