"""`envsolve plan`: the newest consistent stack for a host and workload."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from envsolve.commands._host import add_host_argument, load_host

if TYPE_CHECKING:
    from envsolve.resolver.plan import Plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_arguments(parser)
    parser.add_argument("--json", action="store_true", help="write the versioned plan JSON (docs/plan-json.md)")


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that say what to plan for; `render` takes the same."""
    add_host_argument(parser)
    parser.add_argument("--pathway", default="auto", help="auto (default), A (host cuDNN/CUDA) or B (pip wheels)")
    parser.add_argument("--workload", default="pipeline",
                        help="pipeline (default), whisperx, faster-whisper, or diarization (pyannote.audio alone)")
    parser.add_argument("--device", default="auto", help="auto (GPU when a driver is present), cuda or cpu")
    parser.add_argument("--asr-device", default="auto", choices=("auto", "cpu"),
                        help="cpu: transcription (ctranslate2) on the CPU while diarization (torch) uses the GPU")
    parser.add_argument("--python", metavar="X.Y", help="target Python (default: the host's)")
    parser.add_argument("--compute-type", help="CTranslate2 compute type to check against the GPU")
    parser.add_argument("--constraint", "-c", action="append", metavar="REQ",
                        help='extra requirement, pip syntax, repeatable (e.g. -c "ctranslate2<4.5")')
    parser.add_argument("--replace-preinstalled", action="store_true",
                        help="allow replacing a platform's preinstalled torch family (Colab, Kaggle)")
    parser.add_argument("--target", default="host", choices=("host", "image"),
                        help="install on the host itself (default) or build a Docker image for it")


def plan_from_arguments(args: argparse.Namespace) -> Plan:
    from envsolve.resolver.plan import make_plan
    from envsolve.resolver.request import Request

    # The planner plans its own loader search: the probe's simulation of today's environment is not needed.
    host = load_host(args.host, loader=False)
    request = Request(workload=args.workload, pathway=args.pathway, device=args.device, python=args.python,
                      compute_type=args.compute_type, constraints=tuple(args.constraint or ()),
                      replace_preinstalled=args.replace_preinstalled, target=args.target,
                      asr_device=args.asr_device)
    return make_plan(host, request)


def run(args: argparse.Namespace) -> int:
    from envsolve.report import format_plan
    from envsolve.resolver.failure import NoSolution
    from envsolve.resolver.refusal import layers

    try:
        plan = plan_from_arguments(args)
    except NoSolution as refused:
        if not args.json:
            raise
        # A program asked: the refusal is data on stdout (docs/plan-json.md), the words still go to stderr.
        data = layers(refused.failure).to_json() | {"message": refused.message, "hint": refused.hint or ""}
        print(json.dumps(data, indent=2))
        raise
    print(json.dumps(plan.to_json(), indent=2) if args.json else format_plan(plan))
    return 0
