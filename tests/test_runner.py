"""The batch: decode once, real tiny.en ASR, speakers from an RTTM or a diarizer, skip/overwrite, and one
bad file never stopping the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from envsolve.errors import EnvsolveError
from envsolve.pipeline import runner as runner_module
from envsolve.pipeline.asr import AsrOptions
from envsolve.pipeline.diarize import DiarizationOptions, DiarizationResult
from envsolve.pipeline.model import Turn
from envsolve.pipeline.progress import Progress
from envsolve.pipeline.rttm import format_rttm
from envsolve.pipeline.runner import FileResult, Runner, RunOptions, collect_inputs, exit_status

from speech import PIPELINE, conversation, needs_speech, sox, tiny_model

pytestmark = [*PIPELINE, needs_speech]


class Notes(Progress):
    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []
        self.stages: list[str] = []

    def start(self, file: str, stage: str) -> None:
        self.stages.append(stage)

    def note(self, message: str) -> None:
        self.notes.append(message)


def run(tmp_path: Path, inputs: list[Path | str], **changes: Any) -> tuple[list[FileResult], Notes]:
    options = RunOptions(inputs=tuple(map(str, inputs)), asr=AsrOptions(device="cpu"), output_dir=tmp_path / "out",
                         **changes)
    notes = Notes()
    results = list(Runner(options, notes, model=tiny_model()).run())  # type: ignore[arg-type]
    return results, notes


def _talk(tmp_path: Path, name: str = "talk.flac") -> Path:
    target = tmp_path / name
    target.write_bytes(conversation().path.read_bytes())
    return target


def _rttm(tmp_path: Path, turns: tuple[Turn, ...], uri: str = "talk") -> Path:
    path = tmp_path / f"{uri}.rttm"
    path.write_text(format_rttm(turns, uri))
    return path


def _true_speaker(turns: tuple[Turn, ...], start: float, end: float) -> str:
    middle = (start + end) / 2
    return min(turns, key=lambda t: (max(t.start - middle, middle - t.end, 0.0), t.start)).speaker


def test_words_get_the_right_speakers_from_an_rttm(tmp_path: Path) -> None:
    talk = conversation()
    results, _ = run(tmp_path, [_talk(tmp_path)], diarization_file=_rttm(tmp_path, talk.turns))
    assert [r.status for r in results] == ["ok"], results[0].error
    data = json.loads((tmp_path / "out" / "talk.json").read_text())
    words = [w for segment in data["segments"] for w in segment["words"]]
    right = sum(w["end"] - w["start"] for w in words if w["speaker"] == _true_speaker(talk.turns, w["start"], w["end"]))
    total = sum(w["end"] - w["start"] for w in words)
    assert right / total >= 0.9
    assert sum(w["speaker"] == _true_speaker(talk.turns, w["start"], w["end"]) for w in words) / len(words) >= 0.9
    assert data["speakers"] == ["SPEAKER_00", "SPEAKER_01"] and data["language"] == "en"
    assert {"decode_s", "asr_s", "attribute_s", "model_load_s"} <= set(data["timings"])
    assert (tmp_path / "out" / "talk.rttm").read_text().count("SPEAKER talk") == 4


def test_speaker_names_reach_every_format(tmp_path: Path) -> None:
    turns = conversation().turns
    names = {"SPEAKER_00": "Ann", "SPEAKER_01": "Bob"}
    run(tmp_path, [_talk(tmp_path)], diarization_file=_rttm(tmp_path, turns), speaker_names=names)
    out = tmp_path / "out"
    assert "Ann:" in (out / "talk.txt").read_text() and "<v Bob>" in (out / "talk.vtt").read_text()
    assert " Bob " in (out / "talk.rttm").read_text() and "SPEAKER_0" not in (out / "talk.srt").read_text()


def test_one_bad_file_does_not_stop_the_batch(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not audio\n" * 50)
    (tmp_path / "empty.wav").write_bytes(b"")
    inputs = [tmp_path / "notes.txt", tmp_path / "missing.wav", _talk(tmp_path), tmp_path / "empty.wav"]
    results, _ = run(tmp_path, inputs, diarize=False)
    assert [r.status for r in results] == ["failed", "failed", "ok", "failed"]
    assert [r.reference for r in results] == ["audio-not-audio", "audio-not-found", None, "audio-empty"]
    assert exit_status(results) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"talk.{x}" for x in
                                                                    ("json", "rttm", "srt", "tsv", "txt", "vtt")]


def test_skip_then_overwrite(tmp_path: Path) -> None:
    talk = _talk(tmp_path)
    first, _ = run(tmp_path, [talk], diarize=False, formats=("json", "txt"))
    stamp = (tmp_path / "out" / "talk.json").stat().st_mtime_ns
    again, _ = run(tmp_path, [talk], diarize=False, formats=("json", "txt"))
    assert [r.status for r in first + again] == ["ok", "skipped"] and exit_status(again) == 0
    assert (tmp_path / "out" / "talk.json").stat().st_mtime_ns == stamp
    (tmp_path / "out" / "talk.txt").unlink()  # half done (a crash between two files): redo it
    partial, _ = run(tmp_path, [talk], diarize=False, formats=("json", "txt"))
    forced, _ = run(tmp_path, [talk], diarize=False, formats=("json", "txt"), overwrite=True)
    assert [r.status for r in partial + forced] == ["ok", "ok"]
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # atomic writes leave no temporary files behind


def test_silence_gives_an_empty_transcript_without_whisper(tmp_path: Path) -> None:
    sox("-n", "-r", "16000", str(tmp_path / "quiet.wav"), "trim", "0", "2")
    results, notes = run(tmp_path, [tmp_path / "quiet.wav"])
    assert results[0].status == "ok" and "asr" not in results[0].stages
    data = json.loads((tmp_path / "out" / "quiet.json").read_text())
    assert data["segments"] == [] and data["duration"] == pytest.approx(2.0)
    assert any("silence" in note for note in notes.notes)


def test_folders_and_globs_expand_and_misses_are_per_file_errors(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _talk(folder, "a.flac")
    _talk(folder, "b.flac")
    (folder / "readme.md").write_text("not picked up")
    (tmp_path / "empty").mkdir()
    found = collect_inputs((str(folder), str(folder / "*.flac"), str(tmp_path / "*.nothing"), str(tmp_path / "empty")))
    assert [Path(name).name for name, target in found if isinstance(target, Path)] == ["a.flac", "b.flac"]
    errors = [target.reference for _, target in found if not isinstance(target, Path)]
    assert errors == ["input-no-match", "input-folder-empty"]


def test_models_load_once_for_the_whole_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[AsrOptions] = []
    real = runner_module.load_model

    def counting(options: AsrOptions) -> Any:
        loads.append(options)
        return real(options)

    monkeypatch.setattr(runner_module, "load_model", counting)
    inputs = [_talk(tmp_path, "one.flac"), _talk(tmp_path, "two.flac")]
    options = RunOptions(inputs=tuple(map(str, inputs)), asr=AsrOptions(device="cpu"), output_dir=tmp_path / "out",
                         diarize=False, formats=("json",))
    results = list(Runner(options, Progress()).run())
    assert [r.status for r in results] == ["ok", "ok"] and len(loads) == 1


def test_rttm_without_this_file_fails_only_that_file(tmp_path: Path) -> None:
    rttm = _rttm(tmp_path, conversation().turns, uri="talk")
    results, _ = run(tmp_path, [_talk(tmp_path), _talk(tmp_path, "other.flac")], diarization_file=rttm)
    assert [r.status for r in results] == ["ok", "failed"]
    assert results[1].reference == "rttm-no-turns-for-file"


def test_the_diarizer_gets_the_decoded_array_and_exclusive_turns_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hand-off to pipeline/diarize.py: Diarizer(DiarizationOptions) once for the batch, then called per
    file with the in-memory 16 kHz float32 array; its exclusive turns go to the words, RTTM keeps the overlapping
    ones."""
    talk = conversation()
    made: list[DiarizationOptions] = []
    calls: list[tuple[Any, int]] = []

    class FakeDiarizer:
        pipeline_name, device = "fake pipeline", "cpu"

        def __init__(self, options: DiarizationOptions) -> None:
            made.append(options)

        def __call__(self, audio: Any, sample_rate: int, *, progress: Any = None) -> DiarizationResult:
            calls.append((audio, sample_rate))
            progress("segmentation", 1, 2)
            flipped = [Turn(t.start, t.end, "B" if t.speaker == "SPEAKER_00" else "A") for t in talk.turns]
            return DiarizationResult(list(talk.turns), exclusive=flipped, pipeline=self.pipeline_name)

    monkeypatch.setattr(runner_module, "diarization_unavailable", lambda: None)
    monkeypatch.setattr(runner_module, "Diarizer", FakeDiarizer)
    results, notes = run(tmp_path, [_talk(tmp_path), _talk(tmp_path, "again.flac")], speakers=2)
    assert [r.status for r in results] == ["ok", "ok"] and "diarize" in results[0].stages
    assert made == [DiarizationOptions(num_speakers=2, device="cpu")] and len(calls) == 2  # loaded once
    assert any(note.startswith("diarization pipeline fake pipeline on cpu loaded in") for note in notes.notes)
    audio, rate = calls[0]
    assert rate == 16000 and audio.dtype.name == "float32" and audio.ndim == 1
    assert abs(len(audio) / rate - talk.duration) < 0.01
    data = json.loads((tmp_path / "out" / "talk.json").read_text())
    assert data["segments"][0]["speaker"] == "B"  # from the exclusive turns
    assert "SPEAKER_00" in (tmp_path / "out" / "talk.rttm").read_text()  # RTTM keeps the overlapping turns


def test_a_pipeline_that_cannot_load_is_fatal_only_when_speakers_were_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(options: DiarizationOptions) -> None:
        raise EnvsolveError("diarization-token-missing", "The pipeline is gated.")

    monkeypatch.setattr(runner_module, "diarization_unavailable", lambda: None)
    monkeypatch.setattr(runner_module, "Diarizer", refuse)
    results, notes = run(tmp_path, [_talk(tmp_path)])
    assert results[0].status == "ok" and "diarize" not in results[0].stages
    assert any("Diarization is off: error[diarization-token-missing]" in n for n in notes.notes)
    with pytest.raises(EnvsolveError, match="gated"):
        run(tmp_path, [_talk(tmp_path)], speakers=2, overwrite=True)


def test_without_a_diarizer_the_run_says_how_to_enable_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "diarization_unavailable", lambda: "pyannote.audio is not installed")
    results, notes = run(tmp_path, [_talk(tmp_path)])
    assert results[0].status == "ok"
    assert any("--diarization FILE.rttm" in n and "envsolve[diarize]" in n for n in notes.notes)


@pytest.mark.pipeline
@needs_speech
def test_torch_side_loads_before_whisper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With diarization on, the pyannote pipeline (torch) loads before the Whisper model (ctranslate2): one
    process shares loaded libraries, so ctranslate2 then gets torch's libcublas/libcudnn. matrices/workloads.toml
    (pipeline: torch_first) and doctor's model of this process rest on this order."""
    order: list[str] = []
    real = runner_module.load_model

    class OrderedDiarizer:
        pipeline_name, device = "ordered", "cpu"

        def __init__(self, options: DiarizationOptions) -> None:
            order.append("diarizer")

        def __call__(self, audio: Any, sample_rate: int, *, progress: Any = None) -> DiarizationResult:
            return DiarizationResult([], exclusive=None, pipeline=self.pipeline_name)

    def whisper(options: AsrOptions) -> Any:
        order.append("whisper")
        return real(options)

    monkeypatch.setattr(runner_module, "diarization_unavailable", lambda: None)
    monkeypatch.setattr(runner_module, "Diarizer", OrderedDiarizer)
    monkeypatch.setattr(runner_module, "load_model", whisper)
    options = RunOptions(inputs=(str(_talk(tmp_path)),), asr=AsrOptions(device="cpu"), output_dir=tmp_path / "out")
    results = list(Runner(options, Progress()).run())
    assert [r.status for r in results] == ["ok"] and order == ["diarizer", "whisper"]
