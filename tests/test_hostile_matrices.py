"""`envsolve matrices` against hostile indexes, caches, folders and names (issue 21, items 2 and 3): an index
without the package never empties a matrix, a refresh of several is all or nothing, a corrupt cache entry is
read again, and everything a user can get wrong is one line and exit 2, never a traceback or the drift status."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_index import FakeIndex, Served, serve, wheel

from hostile import ROOT, assert_clean, envsolve, one_line_error

MATRICES = ROOT / "matrices"
NOWHERE = "http://127.0.0.1:9/simple/"  # never contacted: each of these is refused before any request
ASR = b"def load_model():\n    return TranscriptionOptions(beam_size=5, best_of=5)\n"
DIARIZE = b"def load(token):\n    return Pipeline.from_pretrained('x', use_auth_token=token)\n"


def _whisperx_index(*versions: str) -> FakeIndex:
    index = FakeIndex()
    for version in versions:
        filename, data, _ = wheel("whisperx", version, "py3-none-any", {
            "whisperx/__init__.py": b"", "whisperx/asr.py": ASR, "whisperx/diarize.py": DIARIZE},
            requires=("faster-whisper>=1.1.1", "ctranslate2<4.5.0"), requires_python=">=3.9")
        index.add("whisperx", Served(filename, data))
    return index


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    """A copy of the shipped whisperx and faster_whisper matrices: what a refresh must not destroy."""
    folder = tmp_path / "matrices"
    folder.mkdir()
    for name in ("whisperx", "faster_whisper"):
        shutil.copy(MATRICES / f"{name}.toml", folder)
    return folder


def _texts(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def empty_index() -> Iterator[FakeIndex]:
    yield from serve(FakeIndex())  # every project page answers 404, as a mirror without the package does


@pytest.mark.parametrize("mode", ["refresh", "verify"])
def test_an_index_without_the_package_destroys_nothing(committed: Path, empty_index: FakeIndex, mode: str,
                                                       tmp_path: Path) -> None:
    before = _texts(committed)
    result = envsolve("matrices", mode, "whisperx", "faster_whisper", "--index-url", empty_index.url, "--matrices",
                      committed, "--cache-dir", tmp_path / "cache", "--quiet")
    assert "error[index-lacks-package]" in one_line_error(result)
    assert_clean(result, 2, "whisperx")
    assert _texts(committed) == before


def test_a_refresh_of_several_matrices_is_all_or_nothing(committed: Path, tmp_path: Path) -> None:
    before = _texts(committed)
    for served in serve(_whisperx_index("3.1.1")):  # whisperx derives (1 row for 44); faster_whisper is missing
        result = envsolve("matrices", "refresh", "whisperx", "faster_whisper", "--index-url", served.url,
                          "--matrices", committed, "--cache-dir", tmp_path / "cache", "--quiet")
    assert_clean(result, 2, "error[index-lacks-package]", "faster_whisper")
    assert _texts(committed) == before and sorted(p.name for p in committed.iterdir()) == sorted(before)


def _corrupt(path: Path, kind: str) -> None:
    data = path.read_bytes()
    path.unlink()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "flipped":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x20]))
    elif kind == "old-format":  # what a cache written before digests holds: the bare body
        path.write_bytes(data.partition(b"\n")[2])
    elif kind == "not-utf8":
        path.write_bytes(b"\xff\xfe" * 50)
    elif kind == "folder":
        path.mkdir()
        (path / "x").write_text("x")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        with path.open("wb") as handle:  # sparse: 300 MB that take no disk
            handle.truncate(300 << 20)
    else:  # pragma: no cover
        raise AssertionError(kind)


CORRUPTIONS = ["empty", "truncated", "flipped", "old-format", "not-utf8", "folder", "fifo", "dev-zero", "huge"]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_corrupt_cache_entry_is_dropped_and_read_again(committed: Path, tmp_path: Path, kind: str) -> None:
    cache = tmp_path / "cache"
    for served in serve(_whisperx_index("3.1.1", "3.1.2")):
        common = ("whisperx", "--index-url", served.url, "--matrices", committed, "--cache-dir", cache, "--quiet",
                  "--json")
        first = envsolve("matrices", "verify", *common, timeout=60)
        assert_clean(first, 1)  # the fixture index is not PyPI: drift, with every entry now cached
        entries = sorted(p for p in cache.rglob("*") if p.is_file())
        assert any("facts" in p.parts for p in entries) and any("http" in p.parts for p in entries)
        for path in entries:
            _corrupt(path, kind)
        requests = len(served.requests)
        again = envsolve("matrices", "verify", *common, timeout=60)
        assert_clean(again, 1)
        assert json.loads(again.stdout)["matrices"] == json.loads(first.stdout)["matrices"]
        assert len(served.requests) > requests  # read again, not trusted
        assert all(p.is_file() and not p.is_symlink() for p in cache.rglob("*") if p.name in {e.name for e in entries})


def _cache_cases(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-file").write_text("not a folder")
    return {
        # /sys refuses writes even to root, so it stands in for a read-only folder whoever runs the tests.
        "read-only": Path("/sys/kernel"),
        "missing": tmp_path / "a-file" / "cache",
        "file": tmp_path / "a-file",
    }


@pytest.mark.parametrize("where", ["read-only", "missing", "file"])
def test_a_cache_that_cannot_be_used_is_one_line_and_exit_2(committed: Path, tmp_path: Path, where: str) -> None:
    cache = _cache_cases(tmp_path)[where]
    result = envsolve("matrices", "verify", "whisperx", "--index-url", NOWHERE, "--matrices", committed,
                      "--cache-dir", cache, "--quiet")
    assert "error[cache-unusable]" in one_line_error(result)
    assert_clean(result, 2, "--no-cache")


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "file:///etc/passwd", "", "ftp://example.com/simple/",
                                 "https://", "http://example.com:99999/simple/", "https://pypi.org/simple/\n\x1b[2J"])
def test_a_malformed_index_url_is_one_line_and_exit_2(committed: Path, tmp_path: Path, url: str) -> None:
    result = envsolve("matrices", "verify", "whisperx", "--index-url", url, "--matrices", committed, "--cache-dir",
                      tmp_path / "cache", "--quiet")
    assert "error[bad-index-url]" in one_line_error(result)
    assert_clean(result, 2, "--index-url")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("where", ["read-only", "file", "missing"])
def test_a_matrices_folder_refresh_cannot_write_is_refused_before_any_work(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("x")
    folder = {"read-only": Path("/sys/kernel"), "file": tmp_path / "a-file", "missing": tmp_path / "none"}[where]
    result = envsolve("matrices", "refresh", "whisperx", "--index-url", NOWHERE, "--matrices", folder, "--cache-dir",
                      tmp_path / "cache", "--quiet")
    assert "error[matrices-unwritable]" in one_line_error(result)
    assert_clean(result, 2)


@pytest.mark.parametrize("name", ["../../x", "../matrices/torch", "a" * 300, "/etc/passwd", "torch\x1b[2J"])
def test_a_matrix_name_is_a_name_not_a_path(name: str, tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text('schema = "envsolve.matrix/1"\nname = "x"\n')
    result = envsolve("matrices", name, cwd=tmp_path)
    assert "error[unknown-matrix]" in one_line_error(result)
    assert_clean(result, 2, "Use one of")


def test_a_broken_committed_matrix_is_named(committed: Path, empty_index: FakeIndex, tmp_path: Path) -> None:
    (committed / "whisperx.toml").write_text("this is [not toml")
    result = envsolve("matrices", "verify", "whisperx", "--index-url", empty_index.url, "--matrices", committed,
                      "--cache-dir", tmp_path / "cache", "--quiet")
    assert_clean(result, 2, "error[bad-matrix]", "whisperx.toml")


def test_a_malformed_pip_index_url_is_named_as_where_it_came_from(committed: Path, tmp_path: Path) -> None:
    result = envsolve("matrices", "verify", "whisperx", "--matrices", committed, "--cache-dir", tmp_path / "cache",
                      "--quiet", env={"PIP_INDEX_URL": "http://[::1"})
    assert "PIP_INDEX_URL" in one_line_error(result)
    assert_clean(result, 2, "error[bad-index-url]")
