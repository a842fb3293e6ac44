"""`envsolve matrices verify/refresh` on real artifacts small enough for the suite: an index on 127.0.0.1
serving wheels built here around gcc-built libraries with real dynamic symbols, plus pages and metadata recorded
from PyPI (tests/data/registry). No test here asks the live registry."""

from __future__ import annotations

import email.parser
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_index import FakeIndex, Served, c_library, serve, wheel

from envsolve.cli import main
from envsolve.derive import run
from envsolve.derive._binary import torch_abi
from envsolve.derive._common import pick_wheel, requirement
from envsolve.derive._http import Fetcher, FetchProgress
from envsolve.derive._index import PYPI, Index, configured_index, python_versions
from envsolve.resolver import compiled

from fixtures_elf import HAVE_GCC

DATA = Path(__file__).resolve().parent / "data" / "registry"
needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="needs gcc")
TORCH_TAG = "cp311-cp311-manylinux_2_28_x86_64"
FILLER = os.urandom(1 << 21)  # 2 MB nobody needs: a ranged reader never fetches it


# ---------------------------------------------------------------- recorded from PyPI


def _recorded_index(tmp_path: Path) -> Iterator[Index]:
    index = FakeIndex()
    page = json.loads((DATA / "torchaudio-simple.json").read_text())
    index.add("torchaudio", Served("placeholder", b""))
    index.page = lambda project: (json.dumps(page).encode(), "application/vnd.pypi.simple.v1+json")  # type: ignore
    for served in serve(index):
        yield Index(Fetcher(None, progress=FetchProgress(None)), served.url)


def test_recorded_pypi_page_yanked_python_tags_and_choice(tmp_path: Path) -> None:
    for index in _recorded_index(tmp_path):
        releases = {str(v): files for v, files in index.releases("torchaudio").items()}
    assert set(releases) == {"2.0.0", "2.11.0", "2.11.1"}
    first = releases["2.0.0"]
    assert all(f.yanked for f in first) and first[0].yanked_reason == "Contains an incorrect torch dependency"
    assert python_versions(releases["2.11.0"]) == (["3.11"], [])
    assert python_versions(releases["2.11.1"]) == ([], [])  # py3-none: no CPython list, Requires-Python says it
    chosen = pick_wheel(releases["2.11.1"])
    assert chosen is not None and chosen.filename == "torchaudio-2.11.1-py3-none-manylinux_2_28_x86_64.whl"
    assert chosen.requires_python == ">=3.10" and chosen.uploaded == "2026-10-28"
    assert chosen.url.startswith("https://files.pythonhosted.org/packages/")


def test_recorded_metadata_requirement() -> None:
    meta = email.parser.Parser().parsestr((DATA / "torchaudio-2.11.1.METADATA").read_text())
    req, line = requirement(meta, "torch")
    assert req is not None and str(req.specifier) == ">=2.11" and line == "Requires-Dist: torch>=2.11"


def test_recorded_symbols_give_the_abi_floor() -> None:
    """What torchaudio 2.11.1's libraries import, and what torch 2.12.1 and 2.13.0 export of it (read from the
    PyPI wheels): 2.12.1 lacks the stable-ABI exception and IValue shims."""
    fx = json.loads((DATA / "torchaudio-2.11.1-abi.json").read_text())
    result = torch_abi(set(fx["imports"]), {r: set(v) for r, v in fx["present"].items()})
    assert result.spec == ">=2.13.0" and result.admitted == ["2.13.0"]
    assert result.missing["2.12.1"] == ["torch_exception_get_what", "torch_exception_get_what_without_backtrace",
                                        "torch_new_stable_ivalue"]
    assert "dlopen" not in result.missing["2.12.1"]  # the C library's, not torch's


# ---------------------------------------------------------------- an index of wheels built here

TORCHAUDIO_PY = b"def load(uri):\n    return uri\n\n\ndef save(uri, src):\n    return None\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes, bytes]]:
    """torch 2.11.0 / 2.13.0 (2.13.0 adds torch_exception_get_what) and torchaudio builds linking them."""
    if not HAVE_GCC:
        pytest.skip("needs gcc")
    root = tmp_path_factory.mktemp("family")
    out: dict[str, tuple[str, bytes, bytes]] = {}
    cudart = c_library(root / "cuda", "libcudart.so.13", "int cudaGetDevice(int *d) { *d = 0; return 0; }\n")
    libs: dict[str, dict[str, Path]] = {}
    for version, extra in (("2.11.0", ""), ("2.13.0", "const char *torch_exception_get_what(void *e) { return 0; }\n")):
        d = root / version
        c10 = c_library(d, "libc10.so", "int c10_device_count(void) { return 1; }\n")
        cpu = c_library(d, "libtorch_cpu.so", "int aoti_torch_get_dtype(void *t, int *d) { *d = 1; return 0; }\n"
                        + extra, c10)
        torch = c_library(d, "libtorch.so", "int torch_dummy(void) { return 0; }\n", cpu)
        libs[version] = {"c10": c10, "cpu": cpu, "torch": torch}
        files = {f"torch/lib/{p.name}": p.read_bytes() for p in (c10, cpu, torch)}
        files["torch/_filler.bin"] = FILLER
        out[f"torch-{version}"] = wheel("torch", version, TORCH_TAG, files, stored=("torch/_filler.bin",))
    link = libs["2.13.0"]
    sources = {
        "2.10.0": "extern int aoti_torch_get_dtype(void *, int *);\n",
        "2.11.0": "extern int aoti_torch_get_dtype(void *, int *);\nextern int cudaGetDevice(int *);\n",
        "2.11.1": "extern int aoti_torch_get_dtype(void *, int *);\n"
                  "extern const char *torch_exception_get_what(void *);\nextern int cudaGetDevice(int *);\n"
                  "int use2(void) { return torch_exception_get_what(0) != 0; }\n",
    }
    for version, source in sources.items():
        d = root / f"ta-{version}"
        body = source + "int use(void) { int x; return aoti_torch_get_dtype(0, &x); }\n"
        if "cudaGetDevice" in source:
            body += "int dev(void) { int d; return cudaGetDevice(&d); }\n"
        lib = c_library(d, "libtorchaudio.so", body, link["torch"], link["cpu"], link["c10"],
                        *([cudart] if "cudaGetDevice" in source else []))
        files = {"torchaudio/__init__.py": TORCHAUDIO_PY, "torchaudio/lib/libtorchaudio.so": lib.read_bytes()}
        tag, requires = {"2.10.0": (TORCH_TAG, ("torch==2.11.0",)), "2.11.0": (TORCH_TAG, ()),
                         "2.11.1": ("py3-none-manylinux_2_28_x86_64", ("torch>=2.11",))}[version]
        out[f"torchaudio-{version}"] = wheel("torchaudio", version, tag, files, requires=requires,
                                             requires_python=">=3.10" if version == "2.11.1" else None)
    return out


def _index(built: dict[str, tuple[str, bytes, bytes]], *, html: bool = False) -> FakeIndex:
    index = FakeIndex(html=html)
    for key, (filename, data, meta) in built.items():
        project = key.split("-")[0]
        yanked: bool | str = "broken build, use 2.11.0" if key == "torchaudio-2.10.0" else False
        index.add(project, Served(filename, data, yanked=yanked, metadata=meta if project == "torch" else None,
                                  upload_time=f"2026-0{1 + len(index.projects.get(project, []))}-01T00:00:00Z"))
    for project in ("torchvision", "torchcodec"):
        index.projects.setdefault(project, [])
    return index


@needs_gcc
def test_json_and_html_pages_say_the_same(built: dict[str, tuple[str, bytes, bytes]]) -> None:
    seen = []
    for html in (False, True):
        for served in serve(_index(built, html=html)):
            files = Index(Fetcher(None, progress=FetchProgress(None)), served.url).files("torchaudio")
            seen.append({(f.filename, f.sha256, f.yanked, f.yanked_reason) for f in files})
    assert seen[0] == seen[1]
    assert ("torchaudio-2.10.0-cp311-cp311-manylinux_2_28_x86_64.whl",) in {(n,) for n, _, y, _ in seen[0] if y}


def _cli(*args: str) -> int:
    return main(["matrices", *args, "--quiet"])


@needs_gcc
def test_refresh_then_verify_end_to_end(built: dict[str, tuple[str, bytes, bytes]], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, cache = tmp_path / "matrices", tmp_path / "cache"
    folder.mkdir()
    for served in serve(_index(built)):
        common = ["--matrices", str(folder), "--index-url", served.url, "--cache-dir", str(cache)]
        assert _cli("refresh", "torchaudio", *common) == 0
        rows = {r["version"]: r for r in tomllib.loads((folder / "torchaudio.toml").read_text())["rows"]}
        assert compiled.stale(folder) == []  # refresh recompiled what it wrote

        # the binary pairing: 2.11.1 says torch>=2.11, its library needs a symbol only 2.13.0 exports
        new = rows["2.11.1"]
        assert new["torch_requires"] == ">=2.11" and new["torch_abi"] == ">=2.13.0"
        assert new["torch_abi_checked"] == ["2.11.0", "2.13.0"]
        assert new["torch_abi_missing"] == {"2.11.0": ["torch_exception_get_what"]}
        assert new["cuda_sonames"] == ["libcudart.so.13"] and "python" not in new
        assert new["python_requires"] == ">=3.10" and new["yanked"] is False
        assert new["artifact"] == built["torchaudio-2.11.1"][0] and len(new["sha256"]) == 64
        assert any("torch_exception_get_what" in e for e in new["evidence"])
        assert rows["2.11.0"]["torch_abi"] == ">=2.11.0" and rows["2.11.0"]["python"] == ["3.11"]
        assert rows["2.10.0"]["yanked"] is True and rows["2.10.0"]["yanked_reason"] == "broken build, use 2.11.0"

        # ranged reads: the 2 MB filler in each torch wheel was never fetched
        torch_bytes = sum(len(built[k][1]) for k in ("torch-2.11.0", "torch-2.13.0"))
        assert served.bytes_sent < torch_bytes - len(FILLER)
        assert any("bytes=" in r for r in served.requests)

        # a second run reads nothing: the pages are fresh in the cache, the facts keyed by sha256
        before = len(served.requests)
        capsys.readouterr()
        assert _cli("verify", "torchaudio", *common) == 0
        assert len(served.requests) == before
        assert "up to date" in capsys.readouterr().out

        # a row edited by hand is drift, named field by field
        text = (folder / "torchaudio.toml").read_text()
        (folder / "torchaudio.toml").write_text(text.replace('torch_abi = ">=2.13.0"', 'torch_abi = ">=2.11.0"'))
        assert _cli("verify", "torchaudio", *common) == 1
        out = capsys.readouterr().out
        assert "~ 2.11.1: torch_abi >=2.11.0 -> >=2.13.0" in out and "refresh torchaudio" in out

        # ... and ENVSOLVE_MATRICES_DIR points verify at a folder as --matrices does
        monkeypatch.setenv("ENVSOLVE_MATRICES_DIR", str(folder))
        assert _cli("verify", "torchaudio", "--index-url", served.url, "--cache-dir", str(cache)) == 1
        capsys.readouterr()
        (folder / "torchaudio.toml").write_text(text)

        # a new release on the index is a new row, and what it means is said
        filename, data, _ = built["torchaudio-2.11.1"]
        served.add("torchaudio", Served(filename.replace("2.11.1", "2.11.2"), data, upload_time="2026-09-01T00:00:00Z"))
        assert _cli("verify", "torchaudio", *common, "--max-age", "0") == 1
        out = capsys.readouterr().out
        assert "+ 2.11.2" in out and "torchaudio 2.11.2 is new" in out
        assert "need torch >=2.13.0 symbols (torch 2.11.0 lacks torch_exception_get_what)" in out
        assert "admits torch 2.11.0, which cannot load it" in out
        assert (folder / "torchaudio.toml").read_text() == text  # verify never writes


@needs_gcc
def test_checked_stamp_survives_a_refresh_with_the_same_facts(built: dict[str, tuple[str, bytes, bytes]],
                                                             tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    for served in serve(_index(built)):
        kwargs = {"folder": folder, "index_url": served.url, "cache": tmp_path / "c", "progress": FetchProgress(None)}
        run("refresh", ["torchaudio"], **kwargs)  # type: ignore[arg-type]
        text = (folder / "torchaudio.toml").read_text().replace("on 20", "on 19")  # an older stamp, same facts
        (folder / "torchaudio.toml").write_text(text)
        report = run("refresh", ["torchaudio"], **kwargs)  # type: ignore[arg-type]
    assert not report.drifted and (folder / "torchaudio.toml").read_text() == text


@needs_gcc
def test_a_server_that_ignores_range_still_gives_the_right_bytes(built: dict[str, tuple[str, bytes, bytes]]) -> None:
    index = _index(built)
    data = built["torch-2.11.0"][1]
    for served in serve(index):
        url = served.url.replace("/simple/", f"/files/{built['torch-2.11.0'][0]}")
        fetcher = Fetcher(None, progress=FetchProgress(None))
        assert fetcher.span(url, 100, 200, keep=False) == data[100:200]
        assert fetcher.size(url) == len(data)


def test_the_index_is_the_one_pip_uses(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple\nextra-index-url = file:///x\n")
    assert configured_index({"PIP_INDEX_URL": "https://env.example/simple"})[0] == "https://env.example/simple"
    assert configured_index({"PIP_CONFIG_FILE": str(conf), "HOME": str(tmp_path)})[0] == "https://mirror.example/simple"
    assert configured_index({"PIP_CONFIG_FILE": os.devnull, "HOME": str(tmp_path)}) == (PYPI, "default (PyPI)")


def test_plan_and_doctor_never_load_the_derivation() -> None:
    hosts = Path(__file__).resolve().parent / "hosts"
    host = str(hosts / "colab-l4.json")
    code = (f"import sys, envsolve.cli as c; c.main(['plan', '--host', {host!r}, '--json']); "
            f"c.main(['doctor', '--host', {host!r}, '--json']); "
            "print('DERIVE', 'envsolve.derive' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "DERIVE False" in out
