"""`envsolve run` from the command line: exit codes, WhisperX spellings, JSON progress, the bundled
sample, and a light import for everyone who never transcribes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envsolve.cli import build_parser, main
from envsolve.pipeline.rttm import read_rttm
from envsolve.pipeline.sample import SAMPLE_NAME, SAMPLE_SCRIPT, reference_text, sample_files

from speech import conversation, needs_model, needs_speech


def test_help_lists_the_run_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--sample", "--diarization FILE.rttm", "--speaker-names", "--progress", "--overwrite", "--hotwords"):
        assert flag in text


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run"], "--sample"),
        (["run", "a.wav", "--sample"], "no inputs"),
        (["run", "a.wav", "--no-diarize", "--diarization", "x.rttm"], "contradict"),
        (["run", "a.wav", "--speakers", "2", "--min-speakers", "1"], "not both"),
        (["run", "a.wav", "--min_speakers", "3", "--max_speakers", "2"], "above"),
        (["run", "a.wav", "--speakers", "0"], "outside 1..64"),
        (["run", "a.wav", "-f", "docx"], "choose from"),
        (["run", "a.wav", "--device", "tpu"], "invalid choice"),
        (["run", "a.wav", "--speaker-names", "Alice"], "LABEL=Name"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_whisperx_spellings_are_accepted() -> None:
    args = build_parser().parse_args(
        ["run", "a.wav", "--model", "m", "--batch_size", "4", "--compute_type", "int8", "--language", "en",
         "--min_speakers", "1", "--max_speakers", "3", "--output_dir", "x", "--output_format", "srt",
         "--initial_prompt", "hi", "--diarize", "--diarize_model", "pipe"]
    )
    assert (args.batch_size, args.compute_type, args.min_speakers, args.max_speakers) == (4, "int8", 1, 3)
    assert (str(args.output_dir), args.output_format, args.diarization_model) == ("x", ["srt"], "pipe")
    short = build_parser().parse_args(["run", "a.wav", "-o", "y", "-f", "json,txt"])
    assert (str(short.output_dir), short.output_format) == ("y", ["json", "txt"])


def test_the_cli_imports_nothing_heavy() -> None:
    code = ("import sys, envsolve.cli, envsolve.commands.run, envsolve.pipeline.runner, envsolve.pipeline.asr, "
            "envsolve.pipeline.audio, envsolve.pipeline.sample, envsolve.pipeline.progress; "
            "envsolve.cli.build_parser(); "
            "heavy = [m for m in ('faster_whisper', 'ctranslate2', 'av', 'torch', 'numpy', 'pyannote') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bundled_sample_matches_its_script() -> None:
    files = sample_files()
    assert [(line.speaker, line.text) for line in reference_text(files.text)] == [
        (line.speaker, line.text) for line in SAMPLE_SCRIPT
    ]
    turns = read_rttm(files.rttm)[SAMPLE_NAME]
    assert [turn.speaker for turn in turns] == [line.speaker for line in SAMPLE_SCRIPT]
    assert 8 <= turns[-1].end <= 14 and files.audio.stat().st_size < 300_000


@needs_speech
@needs_model
@pytest.mark.pipeline
class TestRuns:
    """Real runs with tiny.en (skipped, with the reason, where the pipeline extra is not installed)."""

    def test_sample_demo_prints_a_transcript_with_speakers(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
        assert main(["run", "--sample", "-o", str(tmp_path), "--progress", "none", "--device", "cpu"]) == 0
        out = capsys.readouterr()
        assert "SPEAKER_00: Good morning" in out.out and "SPEAKER_01:" in out.out
        assert "reference RTTM" in out.err  # says where the speakers came from
        assert (tmp_path / f"{SAMPLE_NAME}.vtt").is_file()

    def test_whisperx_flags_run_end_to_end(self, tmp_path: Path) -> None:
        talk = conversation().path
        argv = ["run", str(talk), "--batch_size", "2", "--compute_type", "int8", "--output_dir", str(tmp_path),
                "--output_format", "json", "--language", "en", "--device", "cpu", "--no-diarize", "--progress", "none"]
        assert main(argv) == 0
        data = json.loads((tmp_path / f"{talk.stem}.json").read_text())
        assert data["language"] == "en" and "window" in json.dumps(data["segments"]).lower()

    def test_json_progress_and_exit_1_when_a_file_fails(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        bad = tmp_path / "bad.mp3"
        bad.write_text("no sound here")
        talk = conversation().path
        code = main(["run", str(bad), str(talk), "-o", str(tmp_path / "out"), "--progress", "json", "--no-diarize",
                     "--device", "cpu"])
        out = capsys.readouterr()
        assert code == 1
        events = [json.loads(line) for line in out.err.splitlines() if line.strip()]
        progress = [e for e in events if e["event"] == "progress"]
        assert progress and all({"stage", "file", "fraction", "eta_s"} <= set(e) for e in progress)
        assert {"decode", "asr", "write"} <= {e["stage"] for e in progress}
        assert all(0 <= e["fraction"] <= 1 for e in progress)
        files = [e for e in events if e["event"] == "file"]
        assert [f["status"] for f in files] == ["failed", "ok"] and files[0]["reference"] == "audio-not-audio"
        assert "1 transcribed, 0 skipped, 1 failed" in out.out and "audio-not-audio" in out.out

    def test_missing_model_folder_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "model.bin").write_text("x")
        code = main(["run", str(conversation().path), "--model", str(tmp_path / "model"), "-o", str(tmp_path)])
        assert code == 2 and "model-files-missing" in capsys.readouterr().err
