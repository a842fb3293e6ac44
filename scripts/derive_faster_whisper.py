"""Derive matrices/faster_whisper.toml from the faster-whisper wheels and sdists on PyPI.

For every release from 0.5 on: the wheel's METADATA Requires-Dist / Requires-Python, the sdist's
requirements.txt (what setup.py reads; egg-info/requires.txt when the sdist lacks it) and setup.py
python_requires, and whether faster_whisper/transcribe.py in the wheel defines
BatchedInferencePipeline. Wheel and sdist have disagreed (0.10.0), so a `<dep>_sdist` field is
written whenever the sdist says something else. Files are cached in ~/.cache/envsolve-derive/wheels.

    python scripts/derive_faster_whisper.py           # write matrices/faster_whisper.toml
    python scripts/derive_faster_whisper.py --check   # exit 1 if PyPI has drifted from the file
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.parser
import re
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _matrix_io import render_matrix, write_or_check
from derive_ctranslate2 import cached_download, file_url, keep_checked, old_rows, pypi_json

NAME = "faster_whisper"
PROJECT = "faster-whisper"
FIRST = Version("0.5")
DEPS = ("ctranslate2", "av", "onnxruntime", "tokenizers", "huggingface_hub", "tqdm")
_OP_ORDER = {">=": 0, ">": 1, "~=": 2, "==": 3, "===": 4, "!=": 5, "<=": 6, "<": 7}


def spec_text(req: Requirement) -> str:
    """'>=4.0,<5' (lower bounds first), plus '; <marker>' when the requirement has one."""
    specs = sorted(req.specifier, key=lambda s: (_OP_ORDER.get(s.operator, 9), s.version))
    text = ",".join(str(s) for s in specs) or "*"
    return f"{text}; {req.marker}" if req.marker else text


def deps_of(lines: list[str]) -> dict[str, str]:
    """Field name -> spec text of the unconditional (non-extra) requirements among `lines`."""
    out: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        if req.marker and "extra" in str(req.marker):
            continue
        out[canonicalize_name(req.name).replace("-", "_")] = spec_text(req)
    return out


def wheel_facts(path: Path) -> tuple[dict[str, str], str | None, bool]:
    """(dependencies, Requires-Python, has BatchedInferencePipeline) from a wheel."""
    with zipfile.ZipFile(path) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode("utf-8"))
        src = zf.read("faster_whisper/transcribe.py").decode("utf-8")
    deps = deps_of(meta.get_all("Requires-Dist") or [])
    batched = re.search(r"^class BatchedInferencePipeline\b", src, re.M) is not None
    return deps, meta.get("Requires-Python"), batched


def _egg_requires(text: str) -> list[str]:
    """egg-info/requires.txt -> requirement lines, with [:marker] sections turned into markers."""
    out: list[str] = []
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line[1:-1]
        elif line and not section:
            out.append(line)
        elif line and section.startswith(":"):
            out.append(f"{line}; {section[1:]}")
    return out


def sdist_facts(path: Path) -> tuple[dict[str, str], str | None, str, list[str]]:
    """(dependencies, python_requires, which file gave the deps, notes) from an sdist."""
    notes: list[str] = []
    with tarfile.open(path) as tf:
        files = {m.name.split("/", 1)[1]: m for m in tf.getmembers() if "/" in m.name and m.isfile()}

        def read(name: str) -> str | None:
            member = files.get(name)
            fh = tf.extractfile(member) if member else None
            return fh.read().decode("utf-8") if fh else None

        setup = read("setup.py") or ""
        reqs = read("requirements.txt")
        egg = read(f"{NAME}.egg-info/requires.txt")
        pyproject = read("pyproject.toml")
    m = re.search(r"python_requires\s*=\s*[\"']([^\"']+)[\"']", setup)
    python_requires = m.group(1) if m else None
    if python_requires is None and pyproject:
        python_requires = tomllib.loads(pyproject).get("project", {}).get("requires-python")
    if reqs is not None:
        return deps_of(reqs.splitlines()), python_requires, "requirements.txt", notes
    if "requirements.txt" in setup:
        notes.append("the sdist lacks requirements.txt, which its setup.py opens: building it raises FileNotFoundError")
    if egg is not None:
        return deps_of(_egg_requires(egg)), python_requires, f"{NAME}.egg-info/requires.txt", notes
    return {}, python_requires, "", notes


def derive(today: str, old: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    data = pypi_json(PROJECT)
    rows: list[dict[str, Any]] = []
    for vs in sorted(data["releases"], key=Version):
        files = [f for f in data["releases"][vs] if not f.get("yanked")]
        if Version(vs) < FIRST or Version(vs).is_prerelease or not files:
            continue
        whl = next((f for f in files if f["filename"].endswith("-py3-none-any.whl")), None)
        sdist = next((f for f in files if f["packagetype"] == "sdist"), None)
        row: dict[str, Any] = {"version": vs, "released": min(f["upload_time"] for f in files)[:10]}
        notes: list[str] = []
        sources: list[str] = []
        w_deps: dict[str, str] = {}
        w_py: str | None = None
        batched: bool | None = None
        if whl:
            print(f"{vs}: reading {whl['filename']}", file=sys.stderr)
            url = file_url(whl["url"])
            path = cached_download(url, whl["filename"], whl["digests"].get("sha256", ""))
            w_deps, w_py, batched = wheel_facts(path)
            sources.append(f"{url}: METADATA Requires-Dist, faster_whisper/transcribe.py")
        else:
            notes.append("no wheel on PyPI")
        s_deps: dict[str, str] = {}
        s_py: str | None = None
        if sdist:
            print(f"{vs}: reading {sdist['filename']}", file=sys.stderr)
            url = file_url(sdist["url"])
            path = cached_download(url, sdist["filename"], sdist["digests"].get("sha256", ""))
            s_deps, s_py, where, s_notes = sdist_facts(path)
            notes += s_notes
            sources.append(f"{url}: {where or 'no requirements file'}, setup.py python_requires")
        else:
            notes.append("no sdist on PyPI")
        if sdist and whl and sdist["upload_time"][:10] != whl["upload_time"][:10]:
            notes.append(f"sdist uploaded {sdist['upload_time'][:10]}, wheel {whl['upload_time'][:10]}")
        differ: list[str] = []
        for dep in sorted(set(w_deps) | set(s_deps), key=_dep_order):
            row[dep] = w_deps.get(dep) if whl else s_deps.get(dep)
            if whl and sdist and w_deps.get(dep) != s_deps.get(dep):
                row[f"{dep}_sdist"] = s_deps.get(dep, "(not required)")
                differ.append(dep)
        row["python_requires"] = w_py if whl else s_py
        if whl and sdist and s_py != w_py:
            row["python_requires_sdist"] = s_py
            differ.append("python_requires")
        row["batched"] = batched
        if differ:
            notes.insert(0, "wheel and sdist disagree on " + ", ".join(differ))
        row["note"] = "; ".join(notes) or None
        row["source"] = "; ".join(sources)
        row["checked"] = (
            f"scripts/derive_faster_whisper.py downloaded the wheel and sdist from PyPI on {today} "
            "(sha256 verified) and read their metadata and requirement files"
        )
        rows.append(keep_checked(row, old.get(vs)))
    return rows


def _dep_order(dep: str) -> tuple[int, str]:
    return (DEPS.index(dep) if dep in DEPS else len(DEPS), dep)


HEADER = """\
generated by envsolve scripts/derive_faster_whisper.py,
regenerate with: python scripts/derive_faster_whisper.py
Dependency specs per release from the PyPI wheel's METADATA (Requires-Dist, Requires-Python); `<dep>_sdist`
and `python_requires_sdist` appear only where the sdist's requirements.txt / setup.py say something else.
batched = the wheel's faster_whisper/transcribe.py defines BatchedInferencePipeline."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = ap.parse_args(argv)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    rows = derive(today, old_rows(NAME))
    title = "faster-whisper: dependency pins (wheel vs sdist) of each PyPI release"
    text = render_matrix(NAME, title, ["version"], "version", rows, HEADER)
    return write_or_check(NAME, text, args.check)


if __name__ == "__main__":
    raise SystemExit(main())
