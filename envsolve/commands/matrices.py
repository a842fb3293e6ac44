"""`envsolve matrices [NAME]`: list the compatibility matrices, or show one."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="matrix name (omit to list them)")
    parser.add_argument("--columns", help="comma-separated fields to show")
    parser.add_argument("--json", action="store_true", help="all fields, sources included, as JSON")


def run(args: argparse.Namespace) -> int:
    from envsolve.report import render_matrix, render_matrix_list
    from envsolve.resolver import matrices

    if not args.name:
        print(render_matrix_list([matrices.load(name) for name in matrices.names()]))
        return 0
    matrix = matrices.load(args.name)
    if args.json:
        print(json.dumps({"name": matrix.name, "title": matrix.title, "rows": [dict(r) for r in matrix.rows]},
                         indent=2))
    else:
        print(render_matrix(matrix, args.columns.split(",") if args.columns else None))
    return 0
