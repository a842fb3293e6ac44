"""`envsolve explain [CODE]`: what a finding code means, its symptoms, ways out and sources."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", nargs="?", help="finding code, e.g. cudnn-shadowed (omit to list all)")


def run(args: argparse.Namespace) -> int:
    from envsolve.report import format_code, format_code_list
    from envsolve.resolver import codes

    print(format_code(args.code, codes.entry(args.code)) if args.code else format_code_list(codes.all_codes()))
    return 0
