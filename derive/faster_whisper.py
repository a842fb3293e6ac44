"""faster_whisper.toml from the faster-whisper wheels and sdists on the index.

For every release from 0.5 on: the wheel's METADATA Requires-Dist / Requires-Python (PEP 658 or a ranged read)
and its faster_whisper/transcribe.py (BatchedInferencePipeline, TranscriptionOptions' fields), and the sdist's
requirements.txt
(what setup.py reads; egg-info/requires.txt when the sdist lacks it) and setup.py python_requires: a sdist is a
few hundred kB and is read whole, in memory. Wheel and sdist have disagreed (0.10.0), so a `<dep>_sdist` field
is written whenever the sdist says something else."""

from __future__ import annotations

import email.parser
import io
import re
import tarfile
import tomllib
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from envsolve.derive._common import artifact_fields, yanked_fields
from envsolve.derive._context import DeriveContext
from envsolve.derive._index import Dist
from envsolve.derive._toml import Derived
from envsolve.derive._wheel import RemoteWheel
from envsolve.derive.family import header

__all__ = ["derive_faster_whisper"]

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


def wheel_facts(meta_text: str, transcribe: str) -> tuple[dict[str, str], str | None, bool]:
    """(dependencies, Requires-Python, has BatchedInferencePipeline) from a wheel's METADATA and transcribe.py."""
    meta = email.parser.Parser().parsestr(meta_text)
    deps = deps_of(meta.get_all("Requires-Dist") or [])
    batched = re.search(r"^class BatchedInferencePipeline\b", transcribe, re.M) is not None
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


def sdist_facts(data: bytes) -> tuple[dict[str, str], str | None, str, list[str]]:
    """(dependencies, python_requires, which file gave the deps, notes) from an sdist."""
    notes: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
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


def transcription_options(transcribe: str) -> list[str] | None:
    """The fields of faster_whisper.transcribe.TranscriptionOptions (NamedTuple, later a dataclass): the keywords
    a caller may pass it (whisperx builds it from a dict)."""
    import ast

    from envsolve.derive._pyast import class_fields

    return class_fields(ast.parse(transcribe), "TranscriptionOptions")


def derive_faster_whisper(ctx: DeriveContext) -> Derived:
    rows: list[dict[str, Any]] = []
    for version, files in ctx.releases(PROJECT).items():
        if version < FIRST:
            continue
        vs = str(version)
        whl = next((f for f in files if f.filename.endswith("-py3-none-any.whl")), None)
        sdist = next((f for f in files if f.is_sdist), None)
        dates = [f.uploaded for f in files if f.uploaded]
        row: dict[str, Any] = {"version": vs, "released": min(dates) if dates else None}
        facts = yanked_fields(files)
        notes: list[str] = [facts.pop("_note")] if "_note" in facts else []
        row.update(facts)
        sources: list[str] = []
        evidence: list[str] = []
        w_deps: dict[str, str] = {}
        w_py: str | None = None
        batched: bool | None = None
        options: list[str] | None = None
        if whl:
            wheel = RemoteWheel(ctx.fetcher, whl)

            def transcribe(w: RemoteWheel = wheel) -> str:
                return w.read("faster_whisper/transcribe.py").decode("utf-8")

            text: str = ctx.facts.get(whl.sha256, "faster-whisper-transcribe/1", transcribe)
            meta_text = ctx.metadata(whl).as_string()
            w_deps, w_py, batched = wheel_facts(meta_text, text)
            options = transcription_options(text)
            sources.append(f"{whl.url}: METADATA Requires-Dist, faster_whisper/transcribe.py")
            if "ctranslate2" in w_deps:
                evidence.append(f"{whl.filename}: Requires-Dist: ctranslate2{w_deps['ctranslate2']}")
        else:
            notes.append("no wheel on the index")
        s_deps: dict[str, str] = {}
        s_py: str | None = None
        if sdist:
            def read_sdist(s: Dist = sdist) -> list[Any]:
                return list(sdist_facts(ctx.fetcher.span(s.url, 0, s.size or ctx.fetcher.size(s.url), keep=False)))

            found = ctx.facts.get(sdist.sha256, "faster-whisper-sdist/1", read_sdist)
            s_deps, s_py, where, s_notes = dict(found[0]), found[1], str(found[2]), list(found[3])
            notes += s_notes
            sources.append(f"{sdist.url}: {where or 'no requirements file'}, setup.py python_requires")
            if "ctranslate2" in s_deps:
                evidence.append(f"{sdist.filename} {where}: ctranslate2{s_deps['ctranslate2']}")
        else:
            notes.append("no sdist on the index")
        if sdist and whl and sdist.uploaded != whl.uploaded:
            notes.append(f"sdist uploaded {sdist.uploaded}, wheel {whl.uploaded}")
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
        row["transcription_options"] = options
        if differ:
            notes.insert(0, "wheel and sdist disagree on " + ", ".join(differ))
        row.update(artifact_fields(whl or sdist))
        row["evidence"] = evidence
        row["note"] = "; ".join(notes) or None
        row["source"] = "; ".join(sources)
        row["checked"] = (f"envsolve matrices refresh read the wheel's METADATA and transcribe.py by HTTP range "
                          f"requests and the sdist whole (in memory) on {ctx.today}")
        rows.append(row)
    what = """Dependency specs per release from the wheel's METADATA (Requires-Dist, Requires-Python); `<dep>_sdist`
and `python_requires_sdist` appear only where the sdist's requirements.txt / setup.py say something else.
batched = the wheel's faster_whisper/transcribe.py defines BatchedInferencePipeline; transcription_options = the
fields of its TranscriptionOptions (what whisperx may pass it).
yanked/yanked_reason: PEP 592, from the index. artifact/sha256: the wheel (else the sdist), sha256 as listed."""
    return Derived(NAME, "faster-whisper: dependency pins (wheel vs sdist) of each release", ["version"], "version",
                   header(what, NAME), rows)


def _dep_order(dep: str) -> tuple[int, str]:
    return (DEPS.index(dep) if dep in DEPS else len(DEPS), dep)
