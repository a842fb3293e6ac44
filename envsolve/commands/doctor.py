"""`envsolve doctor`: check an environment against the rulebook; the exit status says whether it is healthy."""

from __future__ import annotations

import argparse
import json
import sys

from envsolve.commands._host import add_host_argument, load_host
from envsolve.errors import EnvsolveError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_host_argument(parser)
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu: what the stack should run on")
    parser.add_argument("--compute-type", help="CTranslate2 compute type you intend to use (default: the workload's)")
    parser.add_argument("--workload", default="auto",
                        help="whose process to model: auto (inferred from what is installed), pipeline, whisperx, "
                        "faster-whisper or diarization; it decides what loads first and the default compute type")
    parser.add_argument("--ignore", action="append", metavar="CODE", default=[],
                        help="a finding code that does not count against health (repeatable), e.g. gpu-not-visible "
                        "on an image builder without a GPU; it is still shown")
    parser.add_argument("--json", action="store_true", help="write findings as JSON")


def run(args: argparse.Namespace) -> int:
    from envsolve.report import format_findings
    from envsolve.resolver.doctor import diagnose

    host = load_host(args.host)
    from envsolve.resolver.codes import all_codes

    unknown = [code for code in args.ignore if code not in all_codes()]
    if unknown:
        raise EnvsolveError("usage", f"--ignore {unknown[0]!r} is not a finding code.",
                            hint="Run `envsolve explain` for the list of codes.")
    report = diagnose(host, device=args.device, compute_type=args.compute_type, workload=args.workload)
    print(json.dumps(report.to_json(), indent=2) if args.json else format_findings(host, report))
    counted = [f for f in report.findings if f.severity == "error" and f.code not in args.ignore]
    if args.ignore and not counted and not report.healthy:
        ignored = sorted({f.code for f in report.findings if f.code in args.ignore})
        print(f"healthy apart from ignored findings: {', '.join(ignored)}", file=sys.stderr)
        return 0
    return 0 if report.healthy else 1
