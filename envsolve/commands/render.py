"""`envsolve render KIND... -o DIR`: a plan (from --plan, or planned here from the plan flags) as files."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from envsolve.commands.plan import add_plan_arguments

if TYPE_CHECKING:
    from envsolve.render.files import RenderContext

def _plan_actions() -> list[argparse.Action]:
    """The flags that decide a plan, from the one place that declares them (commands/plan.py), in the order a
    regenerate command writes them: those taking a value, then the repeatable ones, then the switches."""
    parser = argparse.ArgumentParser(add_help=False)
    add_plan_arguments(parser)
    return sorted(parser._actions, key=lambda a: 2 if a.nargs == 0 else 1 if isinstance(a, argparse._AppendAction)
                  else 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from envsolve.render import KINDS

    parser.add_argument("kinds", nargs="+", metavar="KIND",
                        help="what to write: " + ", ".join(k.name for k in KINDS) + ", or all")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write into (created)")
    parser.add_argument("--plan", metavar="FILE", help="a plan from `envsolve plan --json` (else the flags below plan)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 with a diff when the files in DIR differ from the plan's rendering")
    parser.add_argument("--force", action="store_true",
                        help="replace files in DIR that do not carry envsolve's header (kept otherwise, and named)")
    parser.add_argument("--envsolve-spec", default=None, metavar="SPEC",
                        help="what the rendered files install envsolve from (default: this envsolve's own wheel, "
                        "written into DIR): envsolve==VERSION, the https URL of an envsolve wheel, or the path of "
                        "an envsolve wheel (copied into DIR)")
    parser.add_argument("--with-ray", action="store_true",
                        help="lock Ray too (the version `render ray` names), for an image that runs Ray workers")
    add_plan_arguments(parser)


def render_context(args: argparse.Namespace) -> RenderContext:
    """The plan (from --plan or the plan flags), checked into a Contract, with what rendering needs around it."""
    import sys
    from pathlib import Path

    from envsolve.render.contract import Contract
    from envsolve.render.files import RenderContext
    from envsolve.render.plans import envsolve_roots, read_plan
    from envsolve.render.selfwheel import envsolve_source

    if args.plan:
        plan, source = read_plan(args.plan), ["--plan", args.plan]
        given = _plan_flags(args)
        if given:
            from envsolve.errors import EnvsolveError

            raise EnvsolveError("usage", f"--plan and {given[0]} were both given: the plan file already decided "
                                "what the flags would.", hint="Pass either --plan FILE or the plan flags.")
    else:
        from envsolve.commands.plan import plan_from_arguments

        plan, source = plan_from_arguments(args).to_json(), _plan_flags(args)
    envsolve = envsolve_source(args.envsolve_spec)
    contract = Contract.from_plan(plan, envsolve=envsolve, regenerate=regenerate_command(args, source),
                                  plan_source=source, folder=folder_word(args.output))
    return RenderContext(contract, warn=lambda text: print(f"note: {text}", file=sys.stderr), folder=Path(args.output),
                         roots=envsolve_roots(contract.python, contract.target.arch, with_ray=args.with_ray),
                         checking=args.check, envsolve=envsolve, with_ray=args.with_ray)


def run(args: argparse.Namespace) -> int:
    import sys

    from envsolve.render.files import check_outputs, render_kinds, write_outputs
    from envsolve.terminal import printable

    context = render_context(args)
    folder = context.folder
    outputs, skipped = render_kinds(args.kinds, context)
    for kind, why in skipped:
        print(f"note: {kind} does not apply to this plan: {why}", file=sys.stderr)
    if args.check:
        diffs = check_outputs(folder, outputs)
        for diff in diffs:
            sys.stdout.write(diff if diff.endswith("\n") else diff + "\n")
        print(f"{len(outputs) - len(diffs)} of {len(outputs)} rendered files match the plan"
              + (f"; {len(diffs)} differ (render them again without --check)" if diffs else ""), file=sys.stderr)
        return 1 if diffs else 0
    kept = write_outputs(folder, outputs, force=args.force)
    for step in context.after_write:
        step()
    for output in outputs:
        if not output.remove and output.path not in kept:
            print(printable(folder / output.path))
    for path in kept:
        print(f"note: kept {printable(folder / path)}: it was not written by envsolve (no envsolve header); "
              "--force replaces it", file=sys.stderr)
    return 0


def regenerate_command(args: argparse.Namespace, source: list[str]) -> list[str]:
    """The words after `envsolve` that reproduce this folder: the kinds as given, the plan's source, and every
    flag that changes a file (--envsolve-spec when given, --with-ray); -o and --check are the caller's."""
    words = ["render", *dict.fromkeys(args.kinds), *source]
    if args.envsolve_spec:
        words += ["--envsolve-spec", args.envsolve_spec]
    return words + (["--with-ray"] if args.with_ray else [])


def folder_word(output: str) -> str:
    """-o as the rendered files name it: the path when it is relative and stays below the working folder (where
    CI runs the same command), else a placeholder, so no file depends on where a machine keeps it."""
    import os

    from envsolve.render.grammar import GRAMMARS

    path = os.path.normpath(output)
    if os.path.isabs(path) or path == ".." or path.startswith("../") or not GRAMMARS["path"][0].fullmatch(path):
        return ""
    return path


def _plan_flags(args: argparse.Namespace) -> list[str]:
    """The plan flags given other than at their defaults, as words that give them again (the shortest spelling)."""
    words: list[str] = []
    for action in _plan_actions():
        value = getattr(args, action.dest)
        if value == action.default:
            continue
        flag = min(action.option_strings, key=len)
        if action.nargs == 0:
            words.append(flag)
        else:
            for one in value if isinstance(action, argparse._AppendAction) else [value]:
                words += [flag, str(one)]
    return words
