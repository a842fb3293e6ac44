"""`envsolve render KIND... -o DIR`: a plan (from --plan, or planned here from the plan flags) as files."""

from __future__ import annotations

import argparse

from envsolve.commands.plan import add_plan_arguments

# The flags that decide a plan, in the order a regenerate command writes them.
PLAN_FLAGS = (("host", "--host"), ("pathway", "--pathway"), ("workload", "--workload"), ("device", "--device"),
              ("python", "--python"), ("compute_type", "--compute-type"), ("target", "--target"))


def _plan_defaults() -> argparse.Namespace:
    """The plan flags' defaults, from the one place that declares them (commands/plan.py)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_plan_arguments(parser)
    return parser.parse_args([])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from envsolve.render import KINDS

    parser.add_argument("kinds", nargs="+", metavar="KIND",
                        help="what to write: " + ", ".join(k.name for k in KINDS) + ", or all")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write into (created)")
    parser.add_argument("--plan", metavar="FILE", help="a plan from `envsolve plan --json` (else the flags below plan)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 with a diff when the files in DIR differ from the plan's rendering")
    parser.add_argument("--envsolve-spec", default=None, metavar="SPEC",
                        help="what the rendered files install envsolve from: envsolve==VERSION (default), or a wheel "
                        "or folder path for air-gapped hosts")
    parser.add_argument("--with-ray", action="store_true",
                        help="lock Ray too (the version `render ray` names), for an image that runs Ray workers")
    add_plan_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from envsolve import __version__
    from envsolve.render.contract import Contract
    from envsolve.render.files import RenderContext, check_outputs, render_kinds, write_outputs
    from envsolve.render.plans import envsolve_roots, read_plan

    if args.plan:
        plan, source = read_plan(args.plan), ["--plan", args.plan]
        defaults = _plan_defaults()
        ignored = [flag for key, flag in PLAN_FLAGS if getattr(args, key) != getattr(defaults, key)]
        if ignored or args.constraint or args.replace_preinstalled:
            from envsolve.errors import EnvsolveError

            raise EnvsolveError("usage", f"--plan and {(ignored or ['-c'])[0]} were both given: the plan file already "
                                "decided what the flags would.", hint="Pass either --plan FILE or the plan flags.")
    else:
        from envsolve.commands.plan import plan_from_arguments

        plan, source = plan_from_arguments(args).to_json(), _plan_flags(args)
    contract = Contract.from_plan(plan, envsolve_spec=args.envsolve_spec or f"envsolve=={__version__}",
                                  regenerate=regenerate_command(args, source), plan_source=source,
                                  folder=folder_word(args.output))
    folder = Path(args.output)
    context = RenderContext(contract, warn=lambda text: print(f"note: {text}", file=sys.stderr), folder=folder,
                            roots=envsolve_roots(with_ray=args.with_ray), checking=args.check,
                            with_ray=args.with_ray)
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
    write_outputs(folder, outputs)
    for step in context.after_write:
        step()
    for output in outputs:
        if not output.remove:
            print(folder / output.path)
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
    words: list[str] = []
    defaults = _plan_defaults()
    for key, flag in PLAN_FLAGS:
        value = getattr(args, key)
        if value != getattr(defaults, key):
            words += [flag, str(value)]
    for constraint in args.constraint or ():
        words += ["-c", constraint]
    return words + (["--replace-preinstalled"] if args.replace_preinstalled else [])
