"""The `envsolve` command line. Every user mistake becomes an EnvsolveError paragraph and exit 2;
any other exception reaching main() is a bug and says so."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from envsolve import __version__
from envsolve.errors import EnvsolveError

if TYPE_CHECKING:
    from envsolve.resolver.host import Host

EPILOG = "Docs: docs/architecture.md, docs/host-snapshot.md, docs/plan-json.md, docs/findings.md"


class _Parser(argparse.ArgumentParser):
    """argparse that raises our error type (one paragraph, exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise EnvsolveError("usage", f"{self.prog}: {message}.", hint=f"Run `{self.prog} --help`.")


def _load_host(path: str | None, loader: bool = True) -> Host:
    from envsolve.resolver.host import read_host
    from envsolve.resolver.probe import probe_host

    return read_host(path) if path else probe_host(loader=loader)


def cmd_plan(args: argparse.Namespace) -> int:
    from envsolve.resolver.plan import make_plan
    from envsolve.resolver.report import render_plan
    from envsolve.resolver.request import Request

    host = _load_host(args.host, loader=False)
    request = Request(workload=args.workload, pathway=args.pathway, device=args.device, python=args.python,
                      compute_type=args.compute_type, constraints=tuple(args.constraint or ()),
                      replace_preinstalled=args.replace_preinstalled, target=args.target)
    plan = make_plan(host, request)
    print(json.dumps(plan.to_json(), indent=2) if args.json else render_plan(plan))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from envsolve.resolver.doctor import diagnose
    from envsolve.resolver.report import render_findings

    host = _load_host(args.host)
    report = diagnose(host, device=args.device, compute_type=args.compute_type)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(render_findings(host, report.findings, report.unknown))
    return 0 if report.healthy else 1


def cmd_matrices(args: argparse.Namespace) -> int:
    from envsolve.resolver import matrices
    from envsolve.resolver.report import render_matrix, table

    if not args.name:
        rows = [(name, matrices.load(name).title, str(len(matrices.load(name)))) for name in matrices.names()]
        print("\n".join(table(rows, ("matrix", "title", "rows"), indent="")))
        return 0
    matrix = matrices.load(args.name)
    if args.json:
        print(json.dumps({"name": matrix.name, "title": matrix.title, "rows": [dict(r) for r in matrix.rows]},
                         indent=2))
    else:
        print(render_matrix(matrix, args.columns.split(",") if args.columns else None))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from envsolve.resolver import codes
    from envsolve.resolver.report import table

    if not args.code:
        print("\n".join(table([(code, r["title"]) for code, r in sorted(codes.all_codes().items())],
                              ("code", "title"), indent="")))
        return 0
    rule = codes.entry(args.code)
    lines = [f"{args.code}: {rule['title']}", "", rule["explanation"]]
    if rule.get("symptoms"):
        lines += ["", "Symptoms:"] + [f"  {s}" for s in rule["symptoms"]]
    if rule.get("ways_out"):
        lines += ["", "Ways out:"] + [f"  - {w}" for w in rule["ways_out"]]
    lines += ["", "Sources:"] + [f"  {s}" for s in rule["sources"]]
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    # Each part registers its own command; their modules import only argparse at load time.
    from envsolve.pipeline import cli as run_cli
    from envsolve.resolver import probe_cli

    parser = _Parser(prog="envsolve", description="Make GPU speech stacks (faster-whisper + pyannote) install and "
                     "run on the first try.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"envsolve {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    plan = sub.add_parser("plan", help="pick the newest consistent stack for a host and workload",
                          description="Pick the newest torch / ctranslate2 / faster-whisper / pyannote stack that "
                          "every rule accepts on the host, and explain each choice.")
    plan.add_argument("--host", metavar="FILE", help="host snapshot JSON, or example:NAME for a built-in one "
                      "(example:colab-l4, example:aws-dlami-a10g, example:cuda13-l4, example:rtx5090); "
                      "default: this machine")
    plan.add_argument("--pathway", default="auto", help="auto (default), A (host cuDNN/CUDA) or B (pip wheels)")
    plan.add_argument("--workload", default="pipeline", help="pipeline (default), whisperx or faster-whisper")
    plan.add_argument("--device", default="auto", help="auto (GPU when a driver is present), cuda or cpu")
    plan.add_argument("--python", metavar="X.Y", help="target Python (default: the host's)")
    plan.add_argument("--compute-type", help="CTranslate2 compute type to check against the GPU")
    plan.add_argument("--constraint", "-c", action="append", metavar="REQ",
                      help='extra requirement, pip syntax, repeatable (e.g. -c "ctranslate2<4.5")')
    plan.add_argument("--replace-preinstalled", action="store_true",
                      help="allow replacing a platform's preinstalled torch family (Colab, Kaggle)")
    plan.add_argument("--target", default="host", choices=("host", "image"),
                      help="install on the host itself (default) or build a Docker image for it")
    plan.add_argument("--json", action="store_true", help="write the versioned plan JSON (docs/plan-json.md)")
    plan.set_defaults(func=cmd_plan)

    doctor = sub.add_parser("doctor", help="check an environment against the rulebook",
                            description="Check what is installed against the rulebook. Exit 0 healthy, 1 problems "
                            "found, 2 usage error.")
    doctor.add_argument("--host", metavar="FILE", help="host snapshot JSON or example:NAME (default: this machine)")
    doctor.add_argument("--device", default="auto", help="auto, cuda or cpu: what the stack should run on")
    doctor.add_argument("--compute-type", help="CTranslate2 compute type you intend to use")
    doctor.add_argument("--json", action="store_true", help="write findings as JSON")
    doctor.set_defaults(func=cmd_doctor)

    mat = sub.add_parser("matrices", help="show a compatibility matrix", description="List the matrices, or show "
                         "one as a table (every row has a source; --json shows them).")
    mat.add_argument("name", nargs="?", help="matrix name (omit to list them)")
    mat.add_argument("--columns", help="comma-separated fields to show")
    mat.add_argument("--json", action="store_true", help="all fields, sources included, as JSON")
    mat.set_defaults(func=cmd_matrices)

    explain = sub.add_parser("explain", help="explain a finding code with its sources",
                             description="Show what a finding code means, its symptoms, ways out and sources.")
    explain.add_argument("code", nargs="?", help="finding code, e.g. cudnn-shadowed (omit to list all)")
    explain.set_defaults(func=cmd_explain)
    probe_cli.add_parser(sub)
    run_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        return int(args.func(args))
    except EnvsolveError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
