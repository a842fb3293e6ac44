"""`envsolve doctor`: check an environment against the rulebook; the exit status says whether it is healthy."""

from __future__ import annotations

import argparse
import json

from envsolve.commands._host import add_host_argument, load_host


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_host_argument(parser)
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu: what the stack should run on")
    parser.add_argument("--compute-type", help="CTranslate2 compute type you intend to use (default: the workload's)")
    parser.add_argument("--workload", default="auto",
                        help="whose process to model: auto (inferred from what is installed), pipeline, whisperx or "
                        "faster-whisper; it decides what loads first and the default compute type")
    parser.add_argument("--json", action="store_true", help="write findings as JSON")


def run(args: argparse.Namespace) -> int:
    from envsolve.report import render_findings
    from envsolve.resolver.doctor import diagnose

    host = load_host(args.host)
    report = diagnose(host, device=args.device, compute_type=args.compute_type, workload=args.workload)
    print(json.dumps(report.to_json(), indent=2) if args.json else render_findings(host, report))
    return 0 if report.healthy else 1
