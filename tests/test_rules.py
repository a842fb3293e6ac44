"""Every finding code the rulebook can raise is documented, and the docs are generated from the rules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from envsolve.resolver import rules

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"cudnn-missing", "cudnn-not-on-loader-path", "cudnn-shadowed", "cublas-missing",
            "cublas-not-on-loader-path", "driver-too-old", "gpu-arch-unsupported", "compute-type-unsupported",
            "torch-family-mismatch", "torchaudio-api-removed", "hf-auth-keyword", "ffmpeg-libs-missing",
            "glibc-execstack", "no-cuda-build", "onnxruntime-shadowed", "gpu-not-visible"}


def _codes_in_source() -> set[str]:
    text = "".join(p.read_text() for p in (ROOT / "resolver").glob("*.py"))
    quoted = set(re.findall(r'"([a-z0-9]+(?:-[a-z0-9]+)+)"', text))
    documented = set(rules.all_rules())
    # Library codes are built from the '-missing' code: cudnn-missing -> cudnn-not-on-loader-path, ...
    derived = {f"{lib}-{suffix}" for lib in ("cudnn", "cublas") for suffix in
               ("not-on-loader-path", "shadowed", "too-old")}
    return {c for c in quoted if c in documented or c.endswith(("-missing", "-unsupported", "-mismatch"))} | derived


def test_required_codes_exist() -> None:
    assert set(rules.all_rules()) >= REQUIRED


def test_every_code_raised_is_documented() -> None:
    missing = _codes_in_source() - set(rules.all_rules())
    assert not missing, f"document these in resolver/rules.toml: {sorted(missing)}"


def test_every_rule_has_sources_and_ways_out() -> None:
    for code, rule in rules.all_rules().items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", code), code
        assert rule["title"] and rule["explanation"] and rule["sources"], code
        assert rule.get("ways_out"), f"{code}: say what to do"


def test_findings_doc_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_findings_doc.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
