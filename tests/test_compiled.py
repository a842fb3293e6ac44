"""The compiled matrices (matrices/compiled/*.json) equal the TOML.

A merge that changes a matrix without recompiling fails here, naming the command that fixes it; at run time
such a file is not used (the TOML is parsed instead), so it can cost speed, never a wrong answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from envsolve.resolver import compiled, matrices

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "matrices"


def test_every_compiled_matrix_is_current() -> None:
    stale = compiled.stale(FOLDER)
    assert stale == [], f"{'; '.join(stale)}. Regenerate them with: {compiled.REGENERATE}"


@pytest.mark.parametrize("name", matrices.names())
def test_compiled_matrix_holds_what_the_toml_says(name: str) -> None:
    text = (FOLDER / f"{name}.toml").read_text(encoding="utf-8")
    data = json.loads((FOLDER / compiled.FOLDER / f"{name}.json").read_text(encoding="utf-8"))
    assert data["table"] == tomllib.loads(text), f"regenerate with: {compiled.REGENERATE}"
    assert matrices.load(name) == matrices.parse(name, text)


def test_load_does_not_parse_toml_when_the_compiled_file_is_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> tuple[dict[str, object], str]:
        raise AssertionError("parsed the TOML")

    monkeypatch.setattr(compiled, "parse_toml", refuse)
    matrices.clear_cache()
    try:
        assert len(matrices.load("torch")) > 0 and matrices.load("gpus").header.startswith("curated by hand")
    finally:
        matrices.clear_cache()


def _table(rows: str) -> bytes:
    return f'# curated by hand\nschema = "envsolve.matrix/1"\nname = "x"\nkey = ["a"]\n{rows}'.encode()


def test_a_stale_or_damaged_compiled_file_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_bytes(_table('[[rows]]\na = 1\n'))
    compiled.compile_folder(tmp_path)
    edited = _table('[[rows]]\na = 2\n')
    (tmp_path / "x.toml").write_bytes(edited)
    assert compiled.read(tmp_path, "x", edited)[0]["rows"] == [{"a": 2}]
    assert compiled.stale(tmp_path) == ["compiled/x.json does not match x.toml"]
    (tmp_path / "compiled" / "x.json").write_text('{"toml_sha256": ')
    assert compiled.read(tmp_path, "x", edited)[0]["rows"] == [{"a": 2}]


def test_compile_folder_writes_what_changed_and_removes_orphans(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_bytes(_table('[[rows]]\na = 1\nb = ["é", 2.5, true]\n\n[[rows]]\na = 3\n'))
    (tmp_path / "y.toml").write_bytes(_table(""))
    assert [p.name for p in compiled.compile_folder(tmp_path)] == ["x.json", "y.json"]
    assert compiled.compile_folder(tmp_path) == [] and compiled.stale(tmp_path) == []
    raw = (tmp_path / "x.toml").read_bytes()
    assert compiled.read(tmp_path, "x", raw) == compiled.parse_toml(raw.decode())
    (tmp_path / "y.toml").unlink()
    assert compiled.stale(tmp_path) == ["compiled/y.json has no y.toml"]
    assert [p.name for p in compiled.compile_folder(tmp_path)] == ["y.json"]
    assert sorted(p.name for p in (tmp_path / "compiled").iterdir()) == ["x.json"]


def test_the_check_script_agrees() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "compile_matrices.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_row_types_are_those_of_the_matrices() -> None:
    """resolver/rows.py (a TypedDict per matrix) and matrices.load's overloads are generated from the rows: mypy
    checks the fields code reads against them only while they are current."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_rows.py"), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
