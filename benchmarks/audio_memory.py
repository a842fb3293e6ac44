"""Peak memory of transcribing long recordings: envsolve's spooled, windowed path against faster-whisper
holding the whole file (what WhisperX does too), on the CPU with tiny.en and Silero VAD.

Each input is the bundled two-speaker sample (13 s) followed by quiet noise, looped to 10 min, 1 h and 2 h and
written as FLAC: speech every 5 minutes, the rest for VAD to skip, so the run measures memory, not Whisper's
speed. Every measurement is a fresh process; its peak RSS comes from wait4's ru_maxrss.

    .venv/bin/python benchmarks/audio_memory.py [--minutes 10 60 120] [--no-baseline]

envsolve: `envsolve run FILE --no-diarize -f json`. faster-whisper: `decode_audio(FILE)` and
`WhisperModel.transcribe(samples, vad_filter=True, word_timestamps=True)`, the same model and options.
Needs: pip install 'envsolve[pipeline,demo-model]'; FFmpeg.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "envsolve" / "data" / "two-speakers.flac"
PERIOD_S = 300

BASELINE = """
import sys
from faster_whisper import WhisperModel, decode_audio
from envsolve.pipeline.asr import default_model_path
model = WhisperModel(str(default_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
samples = decode_audio(sys.argv[1])
segments, _ = model.transcribe(samples, beam_size=5, vad_filter=True, word_timestamps=True, language="en")
print(sum(1 for _ in segments), "segments")
"""


def make_input(folder: Path, minutes: int) -> Path:
    period = folder / "period.flac"
    if not period.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(SAMPLE), "-f", "lavfi", "-i",
                        f"anoisesrc=a=0.002:d={PERIOD_S}:r=16000", "-filter_complex",
                        "[0:a]aresample=16000,aformat=channel_layouts=mono[s];[s][1:a]concat=n=2:v=0:a=1,"
                        f"atrim=0:{PERIOD_S}", "-ar", "16000", "-ac", "1", str(period)], check=True)
    path = folder / f"input-{minutes}min.flac"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(period),
                    "-t", str(minutes * 60), "-c:a", "flac", str(path)], check=True)
    return path


def peak_rss(command: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit status) of one fresh process."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 and process.stderr is not None:
        sys.stderr.write(process.stderr.read().decode(errors="replace")[-2000:])
    return usage.ru_maxrss / 1024, time.monotonic() - started, process.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[10, 60, 120])
    parser.add_argument("--no-baseline", action="store_true", help="measure envsolve only")
    args = parser.parse_args()
    print(f"{'input':>8} {'envsolve MB':>12} {'s':>6} {'faster-whisper MB':>18} {'s':>6}")
    with tempfile.TemporaryDirectory(prefix="envsolve-memory-") as folder:
        for minutes in args.minutes:
            audio = make_input(Path(folder), minutes)
            mine = peak_rss([sys.executable, "-m", "envsolve", "run", str(audio), "--no-diarize", "-f", "json", "-o",
                             str(Path(folder) / "out"), "--progress", "none", "--device", "cpu", "--overwrite",
                             "--threads", "2"])
            theirs = (0.0, 0.0, 0) if args.no_baseline else peak_rss([sys.executable, "-c", BASELINE, str(audio)])
            print(f"{minutes:>5} min {mine[0]:>12.0f} {mine[1]:>6.0f} {theirs[0]:>18.0f} {theirs[1]:>6.0f}"
                  + ("" if mine[2] == 0 and theirs[2] == 0 else f"  (exit {mine[2]}/{theirs[2]})"), flush=True)
            audio.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
