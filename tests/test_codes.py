"""Every finding code the rulebook can raise is documented, and the docs are generated from the catalogue.

The codes raised are read from the source's syntax tree, not by pattern: every `Require(...)` (its `code`,
positional or keyword), every `Finding(...)` made directly, every `code=` keyword and every parameter default
named `code`. Codes derived from a library's '-missing' code in check.py (cudnn-shadowed, ...) are expanded
for every library a `library_rule(...)` call names.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from envsolve.resolver import codes

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"cudnn-missing", "cudnn-not-on-loader-path", "cudnn-shadowed", "cublas-missing",
            "cublas-not-on-loader-path", "driver-too-old", "gpu-arch-unsupported", "compute-type-unsupported",
            "torch-family-mismatch", "torchaudio-api-removed", "hf-auth-keyword", "ffmpeg-libs-missing",
            "glibc-execstack", "no-cuda-build", "onnxruntime-shadowed", "gpu-not-visible"}


def _name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _raised_codes(sources: list[Path]) -> tuple[set[str], set[str], int]:
    """(constant codes, f-string code patterns, number of Require calls seen)."""
    constants: set[str] = set()
    patterns: set[str] = set()
    requires = 0

    def take(node: ast.expr) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            constants.add(node.value)
        elif isinstance(node, ast.JoinedStr):
            patterns.add("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))

    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                if _name(node.func) == "Require":
                    requires += 1
                    if len(node.args) > 1:
                        take(node.args[1])
                elif _name(node.func) == "Finding" and node.args:
                    take(node.args[0])  # a finding made directly (doctor's yanked releases)
                for keyword in node.keywords:
                    if keyword.arg == "code":
                        take(keyword.value)
            elif isinstance(node, ast.FunctionDef):
                args = node.args.args[len(node.args.args) - len(node.args.defaults):]
                for arg, default in zip(args, node.args.defaults, strict=True):
                    if arg.arg == "code":
                        take(default)
    return constants, patterns, requires


def _library_names(sources: list[Path]) -> set[str]:
    names = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and _name(node.func) == "library_rule" and len(node.args) > 1
                    and isinstance(node.args[1], ast.Constant)):
                names.add(str(node.args[1].value))
    return names


def _engine_sources() -> list[Path]:
    return sorted((ROOT / "resolver").rglob("*.py"))


def test_required_codes_exist() -> None:
    assert set(codes.all_codes()) >= REQUIRED


def test_every_code_raised_is_documented() -> None:
    sources = _engine_sources()
    constants, patterns, requires = _raised_codes(sources)
    assert requires >= 20 and len(constants) >= 15, "the scan found too little to mean anything"
    libraries = _library_names(sources)
    assert {"cudnn", "cublas"} <= libraries
    raised = set(constants)
    for pattern in patterns:
        if pattern.startswith("{}-"):  # check.py derives these from '<lib>-missing'
            raised |= {pattern.replace("{}", lib, 1) for lib in libraries}
        else:
            raise AssertionError(f"code pattern {pattern!r}: teach this test where its values come from")
    missing = raised - set(codes.all_codes())
    assert not missing, f"document these in resolver/codes.toml: {sorted(missing)}"


def test_a_renamed_code_is_caught(tmp_path: Path) -> None:
    """The scan sees a code used only in a Require(...) (renaming one must fail the test above)."""
    source = tmp_path / "renamed.py"
    source.write_text('r = Require("pkg:onnxruntime", "onnxruntime-shadowed-renamed", "why", "src", forbid=True)\n'
                      'q = Require(capability="x", code="kw-code", why="", source="")\n')
    constants, _, requires = _raised_codes([source])
    assert requires == 2 and {"onnxruntime-shadowed-renamed", "kw-code"} <= constants


def test_every_code_has_sources_and_ways_out() -> None:
    for code, entry in codes.all_codes().items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", code), code
        assert entry["title"] and entry["explanation"] and entry["sources"], code
        assert entry.get("ways_out"), f"{code}: say what to do"


def test_findings_doc_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_findings_doc.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
