"""pyannote_audio.toml, huggingface_hub.toml and whisperx.toml from the wheels on the index: METADATA, and
Python source parsed with `ast` (which torchaudio names pyannote calls, its auth keyword, decoder and pipeline
shape; whether huggingface_hub still takes use_auth_token). Only the members needed are read, by range."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from email.message import Message
from typing import Any

from packaging.version import Version

from envsolve.derive import _pyast
from envsolve.derive._common import artifact_fields, yanked_fields
from envsolve.derive._context import DeriveContext
from envsolve.derive._index import Dist
from envsolve.derive._toml import Derived, ordered
from envsolve.derive._wheel import RemoteWheel
from envsolve.derive.family import header

__all__ = ["derive_huggingface_hub", "derive_pyannote_audio", "derive_whisperx"]

Row = dict[str, Any]
CHECKED = "envsolve matrices refresh read the wheel's {} by HTTP range requests on {}"


def first_wheel(files: Sequence[Dist]) -> Dist | None:
    wheels = [f for f in files if f.is_wheel]
    return min(wheels, key=lambda f: (f.upload_time or "", f.filename)) if wheels else None


def _sources(ctx: DeriveContext, dist: Dist, prefix: str, ends: tuple[str, ...] = (".py",)) -> dict[str, ast.Module]:
    wheel = RemoteWheel(ctx.fetcher, dist)
    names = [n for n in wheel.names() if n.startswith(prefix) and n.endswith(ends)]
    return _pyast.parse_sources(wheel.read_many(names))


def _release_fields(files: Sequence[Dist], dist: Dist | None) -> tuple[Row, list[str]]:
    facts = yanked_fields(files)
    notes = [facts.pop("_note")] if "_note" in facts else []
    dates = [f.uploaded for f in files if f.uploaded]
    return {"released": min(dates) if dates else None, **facts}, notes


def _evidence(meta: Any, wanted: dict[str, str]) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    out = []
    for text in meta.get_all("Requires-Dist") or []:
        try:
            name = canonicalize_name(Requirement(text).name)
        except InvalidRequirement:
            continue
        if name in wanted:
            out.append(f"Requires-Dist: {text}")
    return out


# ---------------------------------------------------------------- pyannote.audio

PYANNOTE_FIELDS = ("version", "released", "yanked", "yanked_reason", "python_requires", "torch", "torchaudio",
                   "torchcodec", "huggingface_hub", "onnxruntime", "onnxruntime_gpu", "speechbrain", "torchaudio_apis",
                   "torchaudio_apis_at_import", "auth_keyword", "default_pipeline", "decoder", "exclusive_diarization",
                   "needs_plda", "artifact", "sha256", "evidence", "note", "source", "checked")


def _pyannote_code(ctx: DeriveContext, dist: Dist) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        trees = _sources(ctx, dist, "pyannote/audio/")
        out: dict[str, Any] = {}
        uses: set[str] = set()
        at_import: dict[str, list[str]] = {}
        for name, tree in trees.items():
            used, early = _pyast.torchaudio_uses(tree)
            uses |= used
            for api in early:
                at_import.setdefault(api, []).append(name.removeprefix("pyannote/audio/"))
        out["torchaudio_apis"] = sorted(uses)
        out["at_import"] = {k: v for k, v in sorted(at_import.items())}
        keywords: set[str | None] = set()
        for mod, cls in (("core/pipeline.py", "Pipeline"), ("core/model.py", "Model")):
            fn = _pyast.find_method(trees[f"pyannote/audio/{mod}"], cls, "from_pretrained")
            names = _pyast.arg_defaults(fn) if fn else {}
            keywords.add(next((k for k in ("token", "use_auth_token") if k in names), None))
        out["keywords"] = sorted(k or "" for k in keywords)
        io_tree = trees["pyannote/audio/core/io.py"]
        imported = {a.name.split(".")[0] for n in ast.walk(io_tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(io_tree) if isinstance(n, ast.ImportFrom) and n.module}
        if "torchcodec" in imported:
            out["decoder"] = "torchcodec"
        elif "load" in _pyast.torchaudio_uses(io_tree)[0]:
            out["decoder"] = "torchaudio"
        sd = trees["pyannote/audio/pipelines/speaker_diarization.py"]
        idents = {getattr(n, "id", None) or getattr(n, "attr", None) or getattr(n, "arg", None) for n in ast.walk(sd)}
        out["exclusive_diarization"] = "exclusive_speaker_diarization" in idents
        if (init := _pyast.find_method(sd, "SpeakerDiarization", "__init__")) is not None:
            args = _pyast.arg_defaults(init)
            clustering = getattr(args.get("clustering"), "value", None)
            if "plda" in args and clustering == "VBxClustering":
                out["needs_plda"] = True
            elif "plda" not in args and clustering == "AgglomerativeClustering":
                out["needs_plda"] = False
        return out

    return ctx.facts.get(dist.sha256, "pyannote-code/2", read)


def _spec_row(ctx: DeriveContext, version: Version, files: Sequence[Dist], f: Dist,
              wanted: dict[str, str]) -> tuple[Message, Row, list[str]]:
    """A release's row from its wheel's METADATA: the index facts, Requires-Python and the watched specs."""
    meta = ctx.metadata(f)
    row, notes = _release_fields(files, f)
    row = {"version": str(version), **row, "python_requires": meta["Requires-Python"]}
    specs, more = _pyast.requirements(meta, wanted)
    row.update(specs)
    return meta, row, notes + more


def derive_pyannote_audio(ctx: DeriveContext) -> Derived:
    rows = []
    wanted = _pyast.fields("torch=torch torchaudio=torchaudio torchcodec=torchcodec huggingface-hub=huggingface_hub "
                           "onnxruntime=onnxruntime onnxruntime-gpu=onnxruntime_gpu speechbrain=speechbrain")
    for version, files in ctx.releases("pyannote.audio").items():
        if version < Version("3.0"):
            continue
        f = first_wheel(files)
        if f is None:
            continue
        meta, row, notes = _spec_row(ctx, version, files, f, wanted)
        code = _pyannote_code(ctx, f)
        row["torchaudio_apis"] = code["torchaudio_apis"]
        row["torchaudio_apis_at_import"] = sorted(code["at_import"])
        if code["at_import"]:
            where = "; ".join(f"{k} in {', '.join(v)}" for k, v in code["at_import"].items())
            notes.append(f"module-level torchaudio use (an ImportError/AttributeError at import if gone): {where}")
        if len(code["keywords"]) == 1 and code["keywords"][0]:
            row["auth_keyword"] = code["keywords"][0]
        else:
            notes.append(f"Pipeline/Model.from_pretrained disagree on the auth keyword: {code['keywords']}")
        pattern = r"Pipeline\.from_pretrained\(\s*[\"'](pyannote/speaker-diarization[^\"']*)"
        if m := re.search(pattern, str(meta.get_payload())):
            row["default_pipeline"] = m.group(1)
        for k in ("decoder", "exclusive_diarization", "needs_plda"):
            row[k] = code.get(k)
        if others := [x for x in files if x.is_wheel and x is not f]:
            later = ", ".join(f"{x.filename} (uploaded {x.uploaded})" for x in others)
            notes.append(f"the index also has {later}; the first-uploaded wheel was read")
        row.update(artifact_fields(f))
        row["evidence"] = _evidence(meta, wanted)
        row["note"] = "; ".join(notes) or None
        row["source"] = f"{f.url}: METADATA Requires-Dist and README; pyannote/audio/**/*.py parsed with ast"
        row["checked"] = CHECKED.format("METADATA and Python sources", ctx.today)
        rows.append(ordered(row, PYANNOTE_FIELDS))
    what = ("torchaudio_apis: watched torchaudio names the code uses, module-precise (backend.common.AudioMetaData "
            "= imported from torchaudio.backend.common); *_at_import: used outside functions.\n"
            "yanked/yanked_reason: PEP 592, from the index. artifact/sha256: the wheel read (sha256 as listed).")
    return Derived("pyannote_audio", "pyannote.audio: requirements, torchaudio APIs, auth keyword and decoder per "
                   "release", ["version"], "version", header(what, "pyannote_audio"), rows)


# ---------------------------------------------------------------- huggingface_hub


def _hub_state(ctx: DeriveContext, dist: Dist) -> list[str] | None:
    """use_auth_token handling of [hf_hub_download, snapshot_download] in one wheel."""
    def read() -> list[str] | None:
        wheel = RemoteWheel(ctx.fetcher, dist)
        relevant = ("file_download.py", "snapshot_download.py", "_validators.py")
        names = [n for n in wheel.names() if n.startswith("huggingface_hub/") and n.endswith(relevant)]
        funcs: dict[str, ast.FunctionDef] = {}
        validator = False
        for tree in _pyast.parse_sources(wheel.read_many(names)).values():
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and node.name in ("hf_hub_download", "snapshot_download"):
                    funcs[node.name] = node
                validator |= isinstance(node, ast.FunctionDef) and node.name == "smoothly_deprecate_use_auth_token"
        if len(funcs) < 2:
            return None
        states = []
        for fn in (funcs["hf_hub_download"], funcs["snapshot_download"]):
            args = _pyast.arg_defaults(fn)
            mapped = validator and "token" in args and "validate_hf_hub_args" in map(_pyast.dotted, fn.decorator_list)
            if "use_auth_token" in args:
                states.append("accepted")
            else:
                states.append("deprecated" if mapped else "removed" if fn.args.kwarg is None else "unknown")
        return states

    return ctx.facts.get(dist.sha256, "hub-auth/1", read)


def derive_huggingface_hub(ctx: DeriveContext) -> Derived:
    seen: list[tuple[str, list[str], Dist, list[Dist]]] = []
    for version, files in ctx.releases("huggingface_hub", pre=True).items():
        f = first_wheel(files)
        if f is not None and (found := _hub_state(ctx, f)) is not None and "unknown" not in found:
            seen.append((str(version), list(found), f, files))
    for k in (0, 1):  # "removed" before the keyword first appeared: it was never there
        first = next((i for i, x in enumerate(seen) if x[1][k] == "accepted"), len(seen))
        for _, early, _, _ in seen[:first]:
            early[k] = "absent" if early[k] == "removed" else early[k]
    rows: list[Row] = []
    starts = [i for i, x in enumerate(seen) if i == 0 or seen[i - 1][1] != x[1]]
    for n, i in enumerate(starts):
        version, state, dist, _ = seen[i]
        end = starts[n + 1] if n + 1 < len(starts) else None
        notes = []
        if state[0] != state[1]:
            notes.append(f"hf_hub_download: {state[0]}, snapshot_download: {state[1]} (absent: no such keyword)")
        if state == ["deprecated", "deprecated"]:
            notes.append("not in the signatures: @validate_hf_hub_args silently maps it to token (no warning unless "
                         "both are given; utils/_validators.py smoothly_deprecate_use_auth_token)")
        if state == ["removed", "removed"]:
            notes.append("no such parameter, no **kwargs, no validator mapping: passing it raises TypeError")
        in_range = seen[i : end or len(seen)]
        row: Row = {"min": version, "max": seen[end][0] if end else None}
        row["use_auth_token"] = state[0] if state[0] == state[1] else None
        row["yanked_releases"] = [v for v, _, _, fs in in_range if all(f.yanked for f in fs)] or None
        last = in_range[-1][0]
        row.update(artifact_fields(dist))
        row["evidence"] = [f"hf_hub_download: {state[0]}, snapshot_download: {state[1]} in {dist.filename}"]
        row["note"] = "; ".join(notes) or None
        what = "hf_hub_download/snapshot_download signatures and decorators, utils/_validators.py (ast)"
        row["source"] = f"{dist.url} (first of the range; last: {last}): {what}"
        row["checked"] = (f"envsolve matrices refresh read those files of every huggingface_hub wheel on the index "
                          f"(pre-releases too) by HTTP range requests on {ctx.today}")
        rows.append(ordered(row, ("min", "max", "use_auth_token", "yanked_releases", "artifact", "sha256")))
    what = ("Range rows: min inclusive, max exclusive (absent = open-ended); pre-releases were scanned.\n"
            "yanked_releases: releases in the range the index marks yanked (PEP 592).\n"
            "artifact: the range's first wheel.")
    return Derived("huggingface_hub", "huggingface_hub: does hf_hub_download/snapshot_download take use_auth_token",
                   ["min"], "min", header(what, "huggingface_hub"), rows)


# ---------------------------------------------------------------- whisperx

WHISPERX_FIELDS = ("version", "released", "yanked", "yanked_reason", "python_requires")
WHISPERX_CODE_FIELDS = ("faster_whisper_options", "pyannote_auth_keyword")


def _whisperx_code(ctx: DeriveContext, dist: Dist) -> dict[str, Any]:
    """What whisperx passes to the packages under it: the keywords of faster-whisper's TranscriptionOptions
    (whisperx/asr.py load_model, `TranscriptionOptions(**default_asr_options)`) and of pyannote.audio's
    Pipeline.from_pretrained (whisperx/diarize.py)."""
    def read() -> dict[str, Any]:
        trees = _sources(ctx, dist, "whisperx/")
        out: dict[str, Any] = {}
        if (asr := trees.get("whisperx/asr.py")) is not None:
            out["faster_whisper_options"] = sorted(_pyast.call_keywords(asr, "TranscriptionOptions")) or None
        if (diarize := trees.get("whisperx/diarize.py")) is not None:
            passed = _pyast.method_call_keywords(diarize, "Pipeline", "from_pretrained")
            out["pyannote_auth_keyword"] = next((k for k in ("use_auth_token", "token") if k in passed), None)
        return out

    return ctx.facts.get(dist.sha256, "whisperx-code/2", read)


def derive_whisperx(ctx: DeriveContext) -> Derived:
    wanted = _pyast.fields("torch=torch torchaudio=torchaudio torchvision=torchvision ctranslate2=ctranslate2 "
                           "faster-whisper=faster_whisper pyannote-audio=pyannote_audio torchcodec=torchcodec "
                           "transformers=transformers huggingface-hub=huggingface_hub")
    rows = []
    for version, files in ctx.releases("whisperx", pre=True).items():
        f = first_wheel(files)
        if f is None:
            continue
        meta, row, notes = _spec_row(ctx, version, files, f, wanted)
        code = _whisperx_code(ctx, f)
        row.update({k: code.get(k) for k in WHISPERX_CODE_FIELDS})
        row.update(artifact_fields(f))
        row["evidence"] = _evidence(meta, wanted)
        row["note"] = "; ".join(notes) or None
        row["source"] = (f"{f.url}: .dist-info/METADATA Requires-Python and Requires-Dist; whisperx/asr.py and "
                         "whisperx/diarize.py parsed with ast")
        row["checked"] = CHECKED.format("METADATA and sources", ctx.today)
        rows.append(ordered(row, WHISPERX_FIELDS))
    what = ("Specs are the Requires-Dist of the first-uploaded wheel of each release.\n"
            "faster_whisper_options = the keywords whisperx/asr.py passes to faster-whisper's TranscriptionOptions; "
            "pyannote_auth_keyword = the auth keyword whisperx/diarize.py passes to Pipeline.from_pretrained.\n"
            "yanked/yanked_reason: PEP 592, from the index. artifact/sha256: the wheel read (sha256 as listed).")
    return Derived("whisperx", "whisperx: Python and dependency pins per release", ["version"], "version",
                   header(what, "whisperx"), rows)
