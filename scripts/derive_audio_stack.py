#!/usr/bin/env python3
"""Derive the audio-stack matrices from PyPI artefacts.

Writes matrices/{pyannote_audio,torchaudio,torchcodec,huggingface_hub,whisperx}.toml from the PyPI JSON
API and the wheels themselves: METADATA, Python source parsed with `ast`, ELF DT_NEEDED of shared
libraries. Wheels are cached in ~/.cache/envsolve-derive (released files never change).

    python scripts/derive_audio_stack.py            # regenerate
    python scripts/derive_audio_stack.py --check    # report drift against the registry
"""

from __future__ import annotations

import argparse
import ast
import datetime
import email
import json
import re
import struct
import sys
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _matrix_io import MATRICES, render_matrix, write_or_check

CACHE = Path.home() / ".cache" / "envsolve-derive"
SCRIPT = "scripts/derive_audio_stack.py"
WATCHED: tuple[str, ...] = ("AudioMetaData", "info", "load", "list_audio_backends")
WATCHED += ("get_audio_backend", "set_audio_backend", "backend", "save")
DEPRECATION_MARKS = ("deprecat", "dropping")
Row = dict[str, Any]
Files = list[dict[str, Any]]


# ---------------------------------------------------------------- registry and wheels


def pypi_json(project: str, offline: bool) -> dict[str, Any]:
    path = CACHE / f"{project}.json"
    if not offline:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{project}/json", timeout=60) as r:
            path.write_bytes(r.read())
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def file_url(f: dict[str, Any]) -> str:
    """Canonical files.pythonhosted.org URL (some mirrors answer with a relative path)."""
    url: str = f["url"]
    tail = url.split("packages/packages/", 1)[-1]
    return url if url.startswith("http") else f"https://files.pythonhosted.org/packages/{tail}"


def wheel(f: dict[str, Any]) -> zipfile.ZipFile:
    path = CACHE / "whl" / f["filename"]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(file_url(f), path.with_suffix(".part"))
        path.with_suffix(".part").replace(path)
    return zipfile.ZipFile(path)


def releases(data: dict[str, Any], minimum: str = "0.dev0", pre: bool = False) -> Iterator[tuple[str, Files]]:
    for v in sorted(data["releases"], key=Version):
        if Version(v) >= Version(minimum) and (pre or not Version(v).is_prerelease) and data["releases"][v]:
            yield v, data["releases"][v]


def released(files: Files) -> str:
    return str(min(f["upload_time"] for f in files))[:10]


def first_wheel(files: Files, pick: Callable[[str], bool] = lambda n: True) -> dict[str, Any] | None:
    whls = [f for f in files if f["filename"].endswith(".whl") and pick(f["filename"])]
    return min(whls, key=lambda f: f["upload_time"]) if whls else None


def linux_cp311(name: str) -> bool:
    return "cp311-cp311" in name and "linux" in name and "x86_64" in name


def metadata(zf: zipfile.ZipFile) -> Message:
    return email.message_from_bytes(zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))))


def fields(spec: str) -> dict[str, str]:
    """'dist=field ...' -> {canonical dist name: matrix field}."""
    return dict(pair.split("=") for pair in spec.split())


def requirements(meta: Message, wanted: dict[str, str]) -> tuple[Row, list[str]]:
    """Specs of the wanted requirements (extras ignored), in `wanted` order; notes on markers."""
    out: Row = {}
    notes: list[str] = []
    for text in meta.get_all("Requires-Dist") or []:
        req = Requirement(text)
        field = wanted.get(canonicalize_name(req.name))
        if field is None or (req.marker is not None and "extra" in str(req.marker)):
            continue
        if field in out:
            notes.append(f"{req.name} is required more than once; the first spec was kept")
            continue
        lower_first = sorted(map(str, req.specifier), key=lambda s: (s[0] not in ">~=", s))
        out[field] = f"@ {req.url}" if req.url else ",".join(lower_first)
        if req.marker is not None:
            notes.append(f"{req.name} is required only when {req.marker}")
    return {f: out[f] for f in wanted.values() if f in out}, notes


def finish(row: Row, notes: list[str], source: str, checked: str) -> Row:
    row.update({"note": "; ".join(notes) if notes else None, "source": source, "checked": checked})
    return row


def sources(zf: zipfile.ZipFile, prefix: str, ends: tuple[str, ...] = (".py",)) -> dict[str, ast.Module]:
    names = [n for n in sorted(zf.namelist()) if n.startswith(prefix) and n.endswith(ends)]
    return {n: ast.parse(zf.read(n)) for n in names}


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return dotted(node.func)
    return node.id if isinstance(node, ast.Name) else ""


def arg_defaults(fn: ast.FunctionDef) -> dict[str, ast.expr | None]:
    a = fn.args
    pos = a.posonlyargs + a.args
    defaults: list[ast.expr | None] = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    out = {x.arg: d for x, d in zip(pos, defaults, strict=True)}
    return out | {x.arg: d for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)}


def find_method(tree: ast.Module, cls: str, meth: str) -> ast.FunctionDef | None:
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    found = [m for c in classes for m in c.body if isinstance(m, ast.FunctionDef) and m.name == meth]
    return found[0] if found else None


# ---------------------------------------------------------------- pyannote.audio


def torchaudio_uses(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Watched torchaudio names a module uses: (anywhere, at import time, i.e. outside functions)."""
    imports = [a for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    aliases = {a.asname or "torchaudio" for a in imports if a.name.split(".")[0] == "torchaudio"}
    aliases -= {a.asname for a in imports if a.asname and a.name != "torchaudio"}
    found: set[str] = set()
    at_import: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        hits: set[str] = set()
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "torchaudio" and (len(parts) == 1 or parts[1] == "backend"):
                hits |= {a.name for a in node.names if a.name in WATCHED} | set(parts[1:2])
        elif isinstance(node, ast.Import):
            hits |= {p[1] for a in node.names if (p := a.name.split("."))[0] == "torchaudio" and p[1:2] == ["backend"]}
        elif isinstance(node, ast.Attribute) and dotted(node.value) in aliases and node.attr in WATCHED:
            hits.add(node.attr)
        found.update(hits)
        at_import.update(hits if top else ())
        for child in ast.iter_child_nodes(node):
            visit(child, top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(tree, True)
    return found, at_import


def pyannote_row(version: str, files: Files, checked: str) -> Row:
    f = first_wheel(files)
    assert f is not None, version
    zf = wheel(f)
    meta = metadata(zf)
    row: Row = {"version": version, "released": released(files), "python_requires": meta["Requires-Python"]}
    wanted = "torch=torch torchaudio=torchaudio torchcodec=torchcodec huggingface-hub=huggingface_hub"
    wanted += " onnxruntime=onnxruntime onnxruntime-gpu=onnxruntime_gpu speechbrain=speechbrain"
    specs, notes = requirements(meta, fields(wanted))
    row.update(specs)
    trees = sources(zf, "pyannote/audio/")
    uses: set[str] = set()
    at_import: dict[str, list[str]] = {}
    for name, tree in trees.items():
        used, early = torchaudio_uses(tree)
        uses |= used
        for api in early:
            at_import.setdefault(api, []).append(name.removeprefix("pyannote/audio/"))
    row["torchaudio_apis"] = sorted(uses)
    row["torchaudio_apis_at_import"] = sorted(at_import)
    if at_import:
        where = "; ".join(f"{k} in {', '.join(v)}" for k, v in sorted(at_import.items()))
        notes.append(f"module-level torchaudio use (an ImportError/AttributeError at import if gone): {where}")
    keywords: set[str | None] = set()
    for mod, cls in (("core/pipeline.py", "Pipeline"), ("core/model.py", "Model")):
        fn = find_method(trees[f"pyannote/audio/{mod}"], cls, "from_pretrained")
        names = arg_defaults(fn) if fn else {}
        keywords.add(next((k for k in ("token", "use_auth_token") if k in names), None))
    if len(keywords) == 1 and None not in keywords:
        row["auth_keyword"] = keywords.pop()
    else:
        notes.append(f"Pipeline/Model.from_pretrained disagree on the auth keyword: {keywords}")
    pattern = r"Pipeline\.from_pretrained\(\s*[\"'](pyannote/speaker-diarization[^\"']*)"
    if m := re.search(pattern, str(meta.get_payload())):
        row["default_pipeline"] = m.group(1)
    io_tree = trees["pyannote/audio/core/io.py"]
    imported = {a.name.split(".")[0] for n in ast.walk(io_tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(io_tree) if isinstance(n, ast.ImportFrom) and n.module}
    if "torchcodec" in imported:
        row["decoder"] = "torchcodec"
    elif "load" in torchaudio_uses(io_tree)[0]:
        row["decoder"] = "torchaudio"
    sd = trees["pyannote/audio/pipelines/speaker_diarization.py"]
    idents = {getattr(n, "id", None) or getattr(n, "attr", None) or getattr(n, "arg", None) for n in ast.walk(sd)}
    row["exclusive_diarization"] = "exclusive_speaker_diarization" in idents
    if (init := find_method(sd, "SpeakerDiarization", "__init__")) is not None:
        args = arg_defaults(init)
        clustering = getattr(args.get("clustering"), "value", None)
        if "plda" in args and clustering == "VBxClustering":
            row["needs_plda"] = True
        elif "plda" not in args and clustering == "AgglomerativeClustering":
            row["needs_plda"] = False
    if any(x.get("yanked") for x in files):
        notes.append("yanked on PyPI")
    if others := [x for x in files if x["filename"].endswith(".whl") and x is not f]:
        later = ", ".join(f"{x['filename']} (uploaded {x['upload_time'][:10]})" for x in others)
        notes.append(f"PyPI also has {later}; the first-uploaded wheel was read")
    what = "METADATA Requires-Dist and README; pyannote/audio/**/*.py parsed with ast"
    return finish(row, notes, f"{file_url(f)}: {what}", f"{SCRIPT} downloaded the wheel on {checked}, parsed it")


# ---------------------------------------------------------------- torchaudio


class Package:
    """The .py files of one top-level package inside a wheel, addressed by dotted module name."""

    def __init__(self, zf: zipfile.ZipFile, top: str) -> None:
        trees = sources(zf, top + "/")
        self.trees = {n[:-3].replace("/", ".").removesuffix(".__init__"): t for n, t in trees.items()}
        self.packages = {n[:-12].replace("/", ".") for n in trees if n.endswith("/__init__.py")}

    def resolve(self, current: str, node: ast.ImportFrom) -> str:
        base = current if current in self.packages else current.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        if node.level == 0:
            return node.module or ""
        return f"{base}.{node.module}" if node.module else base

    def closure(self, root: str) -> set[str]:
        """Modules of the package imported (transitively, statically) by `root`."""
        seen: set[str] = set()
        todo = [root]
        while todo:
            if (mod := todo.pop()) in seen or mod not in self.trees:
                continue
            seen.add(mod)
            for node in ast.walk(self.trees[mod]):
                if isinstance(node, ast.ImportFrom):
                    todo += [target := self.resolve(mod, node)] + [f"{target}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    todo += [a.name for a in node.names]
        return seen

    def binding(self, mod: str, name: str) -> ast.AST | None:
        """The first top-level statement binding `name` in `mod` (descending into if/try)."""
        stack: list[ast.stmt] = list(self.trees[mod].body) if mod in self.trees else []
        while stack:
            node = stack.pop(0)
            if isinstance(node, ast.If | ast.Try):
                handlers = [s for h in getattr(node, "handlers", []) for s in h.body]
                stack[:0] = node.body + node.orelse + handlers
            elif isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
                return node
            elif isinstance(node, ast.Import | ast.ImportFrom):
                if any((a.asname or a.name.split(".")[0]) == name for a in node.names):
                    return node
            elif isinstance(node, ast.Assign) and any(dotted(t) == name for t in node.targets):
                return node
        return None

    def deprecated(self, mod: str, name: str, depth: int = 0) -> bool:
        """Bound through a deprecation decorator or wrapper (following re-exports)."""
        node = self.binding(mod, name)
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            return any(m in dotted(d) for d in node.decorator_list for m in DEPRECATION_MARKS)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            return any(m in dotted(node.value) for m in DEPRECATION_MARKS)
        if isinstance(node, ast.ImportFrom) and depth < 4:
            alias = next(a for a in node.names if (a.asname or a.name) == name)
            return self.deprecated(self.resolve(mod, node), alias.name, depth + 1)
        return False

    def warns_on_access(self, pkg: str) -> bool:
        """Some module of `pkg` has a module-level __getattr__ calling warnings.warn."""
        mods = [t for m, t in self.trees.items() if m == pkg or m.startswith(pkg + ".")]
        hooks = [n for t in mods for n in t.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
        return any(isinstance(c, ast.Call) and dotted(c).endswith("warn") for g in hooks for c in ast.walk(g))


def torchaudio_row(version: str, files: Files, checked: str, ever: set[str]) -> Row:
    f = first_wheel(files, linux_cp311)
    assert f is not None, version
    zf = wheel(f)
    row: Row = {"version": version, "released": released(files)}
    reqs = [Requirement(t) for t in metadata(zf).get_all("Requires-Dist") or []]
    pin = next((r for r in reqs if r.name == "torch"), None)
    if pin is not None and [s.operator for s in pin.specifier] == ["=="]:
        row["torch"] = next(iter(pin.specifier)).version
    notes = [] if pin is not None else ["METADATA has no Requires-Dist on torch at all"]
    pkg = Package(zf, "torchaudio")
    static = {n for n in WATCHED if pkg.binding("torchaudio", n) is not None}
    # `torchaudio.<name> = ...` in any module that `import torchaudio` executes
    mods = [pkg.trees[m] for m in pkg.closure("torchaudio")]
    targets = {dotted(t) for tree in mods for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets}
    assigned = {n for n in WATCHED if f"torchaudio.{n}" in targets}
    exports = static | assigned
    deprecated = {n for n in exports - {"backend"} if pkg.deprecated("torchaudio", n)}
    if "backend" in exports and pkg.warns_on_access("torchaudio.backend"):
        deprecated.add("backend")
    row["exports"] = [n for n in WATCHED if n in exports]
    row["deprecated"] = [n for n in WATCHED if n in deprecated]
    row["removed"] = [n for n in WATCHED if n in ever - exports]
    ever |= exports
    if assigned - static:
        notes.append(f"{', '.join(sorted(assigned))} are assigned onto the module by backend initialisation")
    load = pkg.binding("torchaudio", "load")
    if isinstance(load, ast.FunctionDef) and any("torchcodec" in dotted(c) for c in ast.walk(load)):
        notes.append("load()/save() are wrappers over load_with_torchcodec: torchcodec must be installed")
    if "torchaudio.backend.common" in pkg.trees:
        notes.append("torchaudio.backend.common (pyannote 3.0/3.1 import AudioMetaData from it) exists")
    else:
        notes.append("no torchaudio.backend package")
    what = "torchaudio/__init__.py and the modules it imports, parsed with ast; METADATA Requires-Dist"
    return finish(row, notes, f"{file_url(f)}: {what}", f"{SCRIPT} downloaded the wheel on {checked}, parsed it")


# ---------------------------------------------------------------- torchcodec


def elf_needed(data: bytes) -> list[str]:
    """DT_NEEDED entries of a little-endian ELF64 shared object."""
    if data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01":
        return []
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out = []
    for sec in (s for s in secs if s[1] == 6):  # SHT_DYNAMIC; sh_link -> its string table
        strtab = secs[sec[6]][4]
        for off in range(sec[4], sec[4] + sec[5], 16):
            tag, val = struct.unpack_from("<qQ", data, off)
            if tag == 1:  # DT_NEEDED
                out.append(data[strtab + val : data.index(b"\0", strtab + val)].decode())
    return out


TABLE_ROW = re.compile(r"^\|\s*`(\d+(?:\.\d+)+)`\s*\|\s*`([^`]+)`\s*\|", re.M)
CORE_LIB = re.compile(r"torchcodec/libtorchcodec(_core|_decoder)?(\d+)\.so")


def torchcodec_rows(data: dict[str, Any], checked: str) -> list[Row]:
    tables: dict[str, dict[str, str]] = {}  # release -> README table {series: torch}
    scanned: list[tuple[Row, list[str], str]] = []
    for version, files in releases(data, pre=True):
        row: Row = {"version": version, "released": released(files)}
        if (f := first_wheel(files, linux_cp311)) is None:
            scanned.append((row, ["no Linux wheel on PyPI (sdist only)"], ""))
            continue
        zf = wheel(f)
        meta = metadata(zf)
        tables[version] = dict(TABLE_ROW.findall(str(meta.get_payload())))
        linux = [x["filename"] for x in files if x["filename"].endswith(".whl") and "linux" in x["filename"]]
        tags = {m.group(1) for n in linux if (m := re.search(r"-cp\d+-cp(\d+t?)-", n))}
        row["python_requires"] = meta["Requires-Python"]
        row["python"] = [f"{t[0]}.{t[1:]}" for t in sorted(tags, key=lambda t: (int(t.rstrip("t")), t))]
        row["platforms"] = sorted({a for n in linux for a in ("x86_64", "aarch64") if a in n})
        libs = {int(m.group(2)): n for n in zf.namelist() if (m := CORE_LIB.fullmatch(n))}
        row["ffmpeg_majors"] = [str(k) for k in sorted(libs)]
        needed = elf_needed(zf.read(libs[max(libs)]))
        cudart = [n for n in needed if n.startswith("libcudart.so.")]
        row["cuda"] = bool(cudart) or any(n.startswith(("libtorch_cuda", "libc10_cuda")) for n in needed)
        row["cuda_major"] = cudart[0].rsplit(".", 1)[1] if cudart else None
        notes = []
        vfile = zf.read("torchcodec/version.py").decode() if "torchcodec/version.py" in zf.namelist() else ""
        if (local := re.search(r"__version__ = '([^']+)'", vfile)) and "+" in local.group(1):
            notes.append(f"torchcodec/version.py says {local.group(1)}")
        if row["cuda"]:
            cuda_libs = ", ".join(n for n in needed if "cuda" in n or "nvrtc" in n)
            notes.append(f"the core library links {cuda_libs}: it needs a CUDA build of torch")
        lib = libs[max(libs)].rsplit("/", 1)[1]
        src = f"{file_url(f)}: file list (one libtorchcodec*<N>.so per FFmpeg major), ELF DT_NEEDED of {lib}"
        scanned.append((row, notes, src + "; PyPI file names for python/platforms"))
    out: list[Row] = []
    for row, notes, src in scanned:
        v = Version(row["version"])
        series = {f"{v.major}.{v.minor}", row["version"]}
        order = [row["version"]] * bool(src) + sorted(tables, key=Version, reverse=True)
        where = next((r for r in order if any(s in series for s in tables[r])), None)
        final: Row = {"version": row.pop("version"), "released": row.pop("released")}
        if where is not None:
            key, final["torch"] = next((s, t) for s, t in tables[where].items() if s in series)
            src += f"; torch from the README table in the {where} wheel's METADATA (`{key}` row)"
        elif src:
            notes.append("no README compatibility table names this release; torch left unknown")
        final.update(row)
        if src:
            out.append(finish(final, notes, src.lstrip("; "), f"{SCRIPT} downloaded the wheel on {checked}"))
        else:
            url = f"https://pypi.org/pypi/torchcodec/{final['version']}/json"
            out.append(finish(final, notes, url, f"{SCRIPT} read the PyPI JSON API on {checked}"))
    return out


# ---------------------------------------------------------------- huggingface_hub


def hub_state(zf: zipfile.ZipFile) -> tuple[str, str] | None:
    """use_auth_token handling of (hf_hub_download, snapshot_download) in one wheel."""
    funcs: dict[str, ast.FunctionDef] = {}
    validator = False
    relevant = ("file_download.py", "snapshot_download.py", "_validators.py")
    for tree in sources(zf, "huggingface_hub/", relevant).values():
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in ("hf_hub_download", "snapshot_download"):
                funcs[node.name] = node
            validator |= isinstance(node, ast.FunctionDef) and node.name == "smoothly_deprecate_use_auth_token"
    if len(funcs) < 2:
        return None
    states = []
    for fn in (funcs["hf_hub_download"], funcs["snapshot_download"]):
        args = arg_defaults(fn)
        mapped = validator and "token" in args and "validate_hf_hub_args" in map(dotted, fn.decorator_list)
        if "use_auth_token" in args:
            states.append("accepted")
        else:
            states.append("deprecated" if mapped else "removed" if fn.args.kwarg is None else "unknown")
    return states[0], states[1]


def hub_rows(data: dict[str, Any], checked: str) -> list[Row]:
    seen: list[tuple[str, list[str], str]] = []
    for version, files in releases(data, pre=True):
        f = first_wheel(files)
        if f is not None and (found := hub_state(wheel(f))) is not None and "unknown" not in found:
            seen.append((version, list(found), file_url(f)))
    for k in (0, 1):  # "removed" before the keyword first appeared: it was never there
        first = next((i for i, x in enumerate(seen) if x[1][k] == "accepted"), len(seen))
        for _, early, _ in seen[:first]:
            early[k] = "absent" if early[k] == "removed" else early[k]
    rows: list[Row] = []
    starts = [i for i, x in enumerate(seen) if i == 0 or seen[i - 1][1] != x[1]]
    for n, i in enumerate(starts):
        version, state, url = seen[i]
        end = starts[n + 1] if n + 1 < len(starts) else None
        notes = []
        if state[0] != state[1]:
            notes.append(f"hf_hub_download: {state[0]}, snapshot_download: {state[1]} (absent: no such keyword)")
        if state == ["deprecated", "deprecated"]:
            notes.append("not in the signatures: @validate_hf_hub_args silently maps it to token (no warning")
            notes[-1] += " unless both are given; utils/_validators.py smoothly_deprecate_use_auth_token)"
        if state == ["removed", "removed"]:
            notes.append("no such parameter, no **kwargs, no validator mapping: passing it raises TypeError")
        row: Row = {"min": version, "max": seen[end][0] if end else None}
        row["use_auth_token"] = state[0] if state[0] == state[1] else None
        last = seen[(end or len(seen)) - 1][0]
        what = "hf_hub_download/snapshot_download signatures and decorators, utils/_validators.py (ast)"
        how = f"{SCRIPT} downloaded every huggingface_hub wheel on PyPI (pre-releases too) on {checked}"
        rows.append(finish(row, notes, f"{url} (first of the range; last: {last}): {what}", how))
    return rows


# ---------------------------------------------------------------- whisperx


def whisperx_row(version: str, files: Files, checked: str) -> Row:
    f = first_wheel(files)
    assert f is not None, version
    meta = metadata(wheel(f))
    row: Row = {"version": version, "released": released(files), "python_requires": meta["Requires-Python"]}
    wanted = "torch=torch torchaudio=torchaudio torchvision=torchvision ctranslate2=ctranslate2"
    wanted += " faster-whisper=faster_whisper pyannote-audio=pyannote_audio torchcodec=torchcodec"
    specs, notes = requirements(meta, fields(wanted + " transformers=transformers huggingface-hub=huggingface_hub"))
    if all(x.get("yanked") for x in files):
        notes.append("yanked on PyPI")
    source = f"{file_url(f)}: .dist-info/METADATA Requires-Python and Requires-Dist"
    return finish(row | specs, notes, source, f"{SCRIPT} downloaded the wheel on {checked} and read METADATA")


# ---------------------------------------------------------------- main

HEADER = """generated by envsolve scripts/derive_audio_stack.py
regenerate with: python scripts/derive_audio_stack.py
{what}
Absent field = unknown or not required; a spec of "" = required without a version constraint."""

TITLES = {
    "pyannote_audio": (
        "pyannote.audio: requirements, torchaudio APIs, auth keyword and decoder per release",
        "torchaudio_apis: watched torchaudio names the code uses; *_at_import: used outside functions.",
    ),
    "torchaudio": (
        "torchaudio: torch pin and the I/O API surface of `import torchaudio` per release",
        f"Watched: {', '.join(WATCHED)}. removed = exported by an earlier release but not this one.",
    ),
    "torchcodec": (
        "torchcodec: torch pairing, FFmpeg majors, platforms and CUDA per release",
        "ffmpeg_majors: the shipped libtorchcodec*<N>.so; cuda: DT_NEEDED of the cp311 x86_64 wheel.",
    ),
    "huggingface_hub": (
        "huggingface_hub: does hf_hub_download/snapshot_download take use_auth_token",
        "Range rows: min inclusive, max exclusive (absent = open-ended); pre-releases were scanned.",
    ),
    "whisperx": (
        "whisperx: Python and dependency pins per release",
        "Specs are the Requires-Dist of the first-uploaded wheel of each release.",
    ),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with matrices/*.toml instead of writing")
    ap.add_argument("--offline", action="store_true", help="use the cached PyPI JSON in ~/.cache/envsolve-derive")
    ap.add_argument("--date", help="date for `checked` (default: today; with --check: the date in the files)")
    opts = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    date = opts.date or datetime.date.today().isoformat()
    committed = MATRICES / "torchaudio.toml"
    if opts.check and not opts.date and committed.exists():
        m = re.search(r"on (\d{4}-\d{2}-\d{2})", committed.read_text(encoding="utf-8"))
        date = m.group(1) if m else date
    pa, ta, tc, hub, wx = (
        pypi_json(p, opts.offline)
        for p in ("pyannote.audio", "torchaudio", "torchcodec", "huggingface_hub", "whisperx")
    )
    ever: set[str] = set()
    matrices = {  # name: (title, rows, header line)
        "pyannote_audio": (TITLES["pyannote_audio"], [pyannote_row(v, fs, date) for v, fs in releases(pa, "3.0")]),
        "torchaudio": (TITLES["torchaudio"], [torchaudio_row(v, fs, date, ever) for v, fs in releases(ta, "2.0")]),
        "torchcodec": (TITLES["torchcodec"], torchcodec_rows(tc, date)),
        "huggingface_hub": (TITLES["huggingface_hub"], hub_rows(hub, date)),
        "whisperx": (TITLES["whisperx"], [whisperx_row(v, fs, date) for v, fs in releases(wx, pre=True)]),
    }
    status = 0
    for name, ((title, what), rows) in matrices.items():
        key = ["min"] if name == "huggingface_hub" else ["version"]
        text = render_matrix(name, title, key, key[0], rows, HEADER.format(what=what))
        status |= write_or_check(name, text, opts.check)
    return status


if __name__ == "__main__":
    sys.exit(main())
