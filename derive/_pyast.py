"""Reading Python source inside wheels with `ast`: which torchaudio names a module uses, what `import
torchaudio` binds, deprecation wrappers, function signatures. Moved from scripts/derive_audio_stack.py."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from email.message import Message
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = ["WATCHED", "Package", "arg_defaults", "call_keywords", "class_fields", "dotted", "fields", "find_method",
           "method_call_keywords", "parse_sources", "requirements", "torchaudio_uses"]

WATCHED: tuple[str, ...] = ("AudioMetaData", "info", "load", "list_audio_backends")
WATCHED += ("get_audio_backend", "set_audio_backend", "backend", "save")
DEPRECATION_MARKS = ("deprecat", "dropping")
Row = dict[str, Any]


def fields(spec: str) -> dict[str, str]:
    """'dist=field ...' -> {canonical dist name: matrix field}."""
    return dict(pair.split("=") for pair in spec.split())


def parse_sources(files: Mapping[str, bytes]) -> dict[str, ast.Module]:
    return {n: ast.parse(data) for n, data in sorted(files.items())}


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


def torchaudio_uses(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Watched torchaudio names a module uses: (anywhere, at import time, i.e. outside functions).

    Module-precise: a name taken from the top-level package is itself (`AudioMetaData`); one imported from a
    submodule carries its path (`from torchaudio.backend.common import AudioMetaData` is
    `backend.common.AudioMetaData`, which torchaudio 2.0 has though its top level does not), and
    `import torchaudio.backend.common` needs the module (`backend.common`)."""
    imports = [a for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    aliases = {a.asname or "torchaudio" for a in imports if a.name.split(".")[0] == "torchaudio"}
    aliases -= {a.asname for a in imports if a.asname and a.name != "torchaudio"}
    found: set[str] = set()
    at_import: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        hits: set[str] = set()
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts == ["torchaudio"]:
                hits |= {a.name for a in node.names if a.name in WATCHED}
            elif parts[0] == "torchaudio" and parts[1] == "backend":
                sub = ".".join(parts[1:])
                hits |= {f"{sub}.{a.name}" if a.name in WATCHED else sub for a in node.names}
        elif isinstance(node, ast.Import):
            hits |= {".".join(p[1:]) for a in node.names
                     if (p := a.name.split("."))[0] == "torchaudio" and p[1:2] == ["backend"]}
        elif isinstance(node, ast.Attribute) and dotted(node.value) in aliases and node.attr in WATCHED:
            hits.add(node.attr)
        found.update(hits)
        at_import.update(hits if top else ())
        for child in ast.iter_child_nodes(node):
            visit(child, top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(tree, True)
    return found, at_import


class Package:
    """The .py files of one top-level package inside a wheel, addressed by dotted module name."""

    def __init__(self, trees: Mapping[str, ast.Module]) -> None:
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


def call_keywords(tree: ast.Module, callee: str) -> set[str]:
    """The keyword names passed to every call of `callee` (a dotted name's last part) in a module: explicit
    keywords, and the keys of a dict literal named by `**name` and assigned in the same function, less those
    deleted or popped there."""
    found: set[str] = set()
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)] + [tree]
    for scope in scopes:
        dicts: dict[str, set[str]] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                keys = {k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        dicts.setdefault(target.id, set()).update(keys)
        for node in ast.walk(scope):  # `del d["k"]` and `d.pop("k")` take a key out before the call
            removed = [t for t in node.targets if isinstance(node, ast.Delete)] if isinstance(node, ast.Delete) else []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pop":
                removed = [ast.Subscript(node.func.value, node.args[0])] if node.args else []
            for target in removed:
                if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                        and isinstance(target.slice, ast.Constant)):
                    dicts.get(target.value.id, set()).discard(str(target.slice.value))
        for node in ast.walk(scope):
            if isinstance(node, ast.Call) and dotted(node.func).split(".")[-1] == callee:
                for kw in node.keywords:
                    if kw.arg is not None:
                        found.add(kw.arg)
                    elif isinstance(kw.value, ast.Name):
                        found |= dicts.get(kw.value.id, set())
    return found


def method_call_keywords(tree: ast.Module, owner: str, method: str) -> set[str]:
    """Keyword names passed to `owner.method(...)` calls (Pipeline.from_pretrained)."""
    return {kw.arg for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == method and dotted(node.func.value) == owner for kw in node.keywords if kw.arg}


def class_fields(tree: ast.Module, cls: str) -> list[str] | None:
    """The annotated fields of a NamedTuple or dataclass, in order; None when the class is not there."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return [s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
    return None
