"""The `envsolve` command line. Every user mistake becomes an EnvsolveError paragraph and exit 2;
any other exception reaching main() is a bug and says so.

Commands come from one table, `envsolve.commands.COMMANDS`; each is a module with
`add_arguments(parser)` and `run(args)`.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from envsolve import __version__, stop
from envsolve.commands import COMMANDS
from envsolve.errors import EnvsolveError
from envsolve.terminal import printable, printable_lines

EPILOG = ("Docs: docs/architecture.md, docs/host-snapshot.md, docs/plan-json.md, docs/transcript-json.md, "
          "docs/findings.md")


class _Parser(argparse.ArgumentParser):
    """argparse that raises our error type (one paragraph, exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise EnvsolveError("usage", f"{self.prog}: {message}.", hint=f"Run `{self.prog} --help`.")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI's parser; with `only`, just that command's options (the others are listed, with no options).

    Adding a command's options imports its module and what the options are made from (`run`: the output formats
    and the pipeline's data model; `render`: the kinds), which `envsolve plan` has no use for.
    """
    parser = _Parser(prog="envsolve", description="Make GPU speech stacks (faster-whisper + pyannote) install and "
                     "run on the first try.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"envsolve {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.description,
                               epilog=command.epilog)
        if only is None or command.name == only:
            module = importlib.import_module(command.module)
            module.add_arguments(child)
            child.set_defaults(func=module.run)
    return parser


def _command_word(argv: Sequence[str]) -> str:
    """The command argv names: its first word that is not an option (envsolve's own options take no value)."""
    return next((word for word in argv if not word.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command in this process (tests, embedding); signal handlers are as before when it returns."""
    with stop.on_signals():
        return _main(argv)


def entry() -> None:
    """The process's own entry (the console script, `python -m envsolve`): exit with the command's code.

    SIGTERM and SIGINT stay stop requests until the result is known, then are ignored while the interpreter
    exits: a `docker stop` at that moment must not turn a finished run into a death by signal."""
    with stop.on_signals(afterwards=signal.SIG_IGN):
        code = _main(None)
    stop.forget_interrupt_in_exec()  # an interrupt caught anywhere on the way must not override the code
    raise SystemExit(code)


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        # Inside the try: building the parser imports the command's modules, which a stop may interrupt.
        parser = build_parser(only=_command_word(argv))
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        return int(args.func(args))
    except KeyboardInterrupt:
        return _interrupted()
    except EnvsolveError as error:
        if stop.requested():  # a library turned the interrupt into its own failure
            return _interrupted()
        text = error.render()
        print(printable_lines(text) if error.multiline else printable(text), file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        return 0
    except Exception:
        if stop.requested():
            return _interrupted()
        raise


def _interrupted() -> int:
    print("interrupted", file=sys.stderr)
    return stop.EXIT_CODE


if __name__ == "__main__":
    entry()
