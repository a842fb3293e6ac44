"""`envsolve matrices [NAME]`: list the compatibility matrices, or show one.
`envsolve matrices verify [NAME...]`: re-derive the registry-derivable ones and report drift (exit 1).
`envsolve matrices refresh [NAME...]`: re-derive them and rewrite the files (curated rows and fields kept)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ACTIONS = ("verify", "refresh")


MAX_AGE = 365 * 24 * 3600  # a year; NaN, infinities and negative ages are refused


def _max_age(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
    if not 0 <= value <= MAX_AGE:  # False for NaN too
        raise argparse.ArgumentTypeError(f"{text[:40]} is outside 0..{MAX_AGE}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from envsolve.derive import DERIVABLE, NOT_FROM_THE_INDEX

    from_index = [name for name in DERIVABLE if name not in NOT_FROM_THE_INDEX]
    parser.epilog = (f"Derivable: {', '.join(from_index)} (and {', '.join(NOT_FROM_THE_INDEX)}, from a git checkout). "
                     + (parser.epilog or ""))
    parser.add_argument("name", nargs="?", help="matrix name (omit to list them), or `verify` / `refresh`")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="with verify/refresh: the matrices to re-derive (default: every derivable one)")
    parser.add_argument("--columns", help="comma-separated fields to show")
    parser.add_argument("--json", action="store_true", help="all fields, sources included, as JSON (verify/refresh: "
                        "the drift report as JSON)")
    derive = parser.add_argument_group("verify and refresh")
    derive.add_argument("--matrices", metavar="DIR", help="the matrices folder to compare with / write "
                        "(default: $ENVSOLVE_MATRICES_DIR, else the installed envsolve/matrices)")
    derive.add_argument("--index-url", help="the package index (default: what pip is configured to use: "
                        "PIP_INDEX_URL, pip.conf index-url, else https://pypi.org/simple/)")
    derive.add_argument("--cache-dir", type=Path, help="where read facts are cached (default: $ENVSOLVE_DERIVE_CACHE, "
                        "else ~/.cache/envsolve-derive)")
    derive.add_argument("--no-cache", action="store_true", help="read everything again, and keep nothing")
    derive.add_argument("--max-age", type=_max_age, default=3600.0, metavar="SECONDS",
                        help=f"how old a cached index page may be, 0..{MAX_AGE} (default 3600; released files are "
                        "cached for good)")
    derive.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    derive.add_argument("--cuda-images-repo", metavar="PATH", help="git dir of nvidia/container-images/cuda (or a "
                        "mirror): cuda_images is read from it, not from the index")
    derive.add_argument("--cuda-images-rev", metavar="REV", help="commit of --cuda-images-repo to read (default HEAD)")
    derive.add_argument("--cuda-images-label", metavar="TEXT", help="where --cuda-images-repo came from, for sources")
    derive.add_argument("--cog-repo", metavar="PATH", help="git dir of replicate/cog (its Docker Hub crawl)")


def run(args: argparse.Namespace) -> int:
    if args.name in ACTIONS:
        return _derive(args)
    if args.names:
        from envsolve.errors import EnvsolveError

        raise EnvsolveError("usage", f"envsolve matrices shows one matrix at a time; got {args.name} "
                            f"{' '.join(args.names)}.", hint="Run `envsolve matrices NAME`, or `envsolve matrices "
                            "verify NAME...`.")
    from envsolve.report import format_matrix, format_matrix_list
    from envsolve.resolver import matrices

    if not args.name:
        print(format_matrix_list([matrices.load(name) for name in matrices.names()]))
        return 0
    matrix = matrices.load(args.name)
    if args.json:
        print(json.dumps({"name": matrix.name, "title": matrix.title, "rows": [dict(r) for r in matrix.rows]},
                         indent=2))
    else:
        print(format_matrix(matrix, args.columns.split(",") if args.columns else None))
    return 0


def _derive(args: argparse.Namespace) -> int:
    from envsolve.derive import matrices_dir
    from envsolve.derive import run as derive
    from envsolve.derive._http import DEFAULT_CACHE, FetchProgress
    from envsolve.report import format_matrix_drift

    options = {k: getattr(args, k) for k in ("cuda_images_repo", "cuda_images_rev", "cuda_images_label", "cog_repo")
               if getattr(args, k)}
    cache = None if args.no_cache else (args.cache_dir or DEFAULT_CACHE)
    folder = matrices_dir(args.matrices)
    report = derive(args.name, args.names, folder=folder, index_url=args.index_url, cache=cache,
                    max_age=args.max_age, progress=FetchProgress(None if args.quiet else sys.stderr), options=options)
    if args.name == "refresh":
        from envsolve.resolver.compiled import compile_folder

        compile_folder(folder)  # what plan reads (resolver/compiled.py); unchanged files are left alone
    print(json.dumps(report.to_json(), indent=2, default=str) if args.json else format_matrix_drift(report))
    return 1 if args.name == "verify" and report.drifted else 0
