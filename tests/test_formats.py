"""One list of output formats: a format registered in outputs.FORMATS alone is accepted by `envsolve run -f`,
listed in its help, expanded by "all", and written by write_outputs and by the Runner."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from envsolve.cli import build_parser, main
from envsolve.errors import EnvsolveError
from envsolve.pipeline import outputs
from envsolve.pipeline.asr import LoadedModel
from envsolve.pipeline.model import Segment, Transcript, Turn
from envsolve.pipeline.progress import Progress
from envsolve.pipeline.runner import Runner, RunOptions

from speech import needs_av


def _markdown(transcript: Transcript, turns: object, stem: str) -> str:
    return f"# {stem}\n\n" + "".join(f"- **{s.speaker or '?'}**: {s.text}\n" for s in transcript.segments)


@pytest.fixture
def markdown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(outputs.FORMATS, "md", outputs.Format(".md", _markdown))


def test_the_cli_accepts_and_lists_a_registered_format(markdown: None, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["run", "a.wav", "-f", "md,json"])
    assert args.output_format == ["md", "json"]
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "all, json, txt, srt, vtt, tsv, rttm, md, comma" in " ".join(capsys.readouterr().out.split())
    assert main(["run", "a.wav", "-f", "docx"]) == 2
    assert "choose from all, json, txt, srt, vtt, tsv, rttm, md" in capsys.readouterr().err


def test_all_and_write_outputs_include_it(markdown: None, tmp_path: Path) -> None:
    assert outputs.select_formats(["all"])[-1] == "md" and outputs.select_formats(["md", "md"]) == ["md"]
    transcript = Transcript((Segment(0.0, 1.0, "Hello.", (), "Ann"),), duration=1.0)
    written = outputs.write_outputs(transcript, [Turn(0.0, 1.0, "Ann")], tmp_path, "talk", ["md"])
    assert written == {"md": tmp_path / "talk.md"}
    assert (tmp_path / "talk.md").read_text() == "# talk\n\n- **Ann**: Hello.\n"


def test_unknown_formats_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(EnvsolveError) as caught:
        Runner(RunOptions(inputs=("a.wav",), output_dir=tmp_path, formats=("json", "md")))
    assert caught.value.reference == "output-format-unknown" and "'md'" in caught.value.message
    assert caught.value.hint == "Choose from all, json, txt, srt, vtt, tsv, rttm."


@needs_av
def test_the_runner_writes_and_skips_it(markdown: None, tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.wav"
    with wave.open(str(quiet), "wb") as out:  # silence: the runner writes an empty transcript, no Whisper needed
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000)
    model = LoadedModel(None, None, "fake", "cpu", "int8", None, 0.0, False)
    options = RunOptions(inputs=(str(quiet),), output_dir=tmp_path / "out", formats=("md",), diarize=False)
    first = list(Runner(options, Progress(), model=model).run())
    assert [r.status for r in first] == ["ok"] and first[0].outputs == {"md": tmp_path / "out" / "quiet.md"}
    assert (tmp_path / "out" / "quiet.md").read_text() == "# quiet\n\n"
    again = list(Runner(options, Progress(), model=model).run())
    assert [r.status for r in again] == ["skipped"]  # the existence check knows the new suffix too
