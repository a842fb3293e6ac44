"""libscan against real gcc-built shared objects laid out as system, pip, LD_LIBRARY_PATH, conda
and /usr/local/cuda trees; the probe's loader links checked against the real loader."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envsolve.resolver.probe.ldcache import LdCache, parse_ldconfig_p
from envsolve.resolver.probe.libscan import (
    classify,
    origin_of,
    parse_cuda_version_json,
    parse_cuda_version_txt,
    parse_cudnn_version_h,
    scan_libraries,
)
from envsolve.resolver.probe.loader import consumer_links

from fixtures_elf import HAVE_GCC, consumer, fake_lib, probe_real_loader

DATA = Path(__file__).parent / "data" / "probe"
needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="needs gcc to build shared objects")


def test_classify() -> None:
    info = classify("libcudnn_ops_infer.so.8.9.6")
    assert info is not None and (info.family, info.soname, info.major, info.version) == \
        ("cudnn", "libcudnn_ops_infer.so.8", 8, "8.9.6")
    info = classify("libcublasLt.so.12")
    assert info is not None and (info.family, info.soname, info.version) == ("cublas", "libcublasLt.so.12", None)
    assert classify("libavutil.so.58.29.100") is not None
    for name in ("libcudnn.so", "libcudnn_static.a", "libcudnn.so.9.txt", "libfoo.so.1", "libcudnn.so.x"):
        assert classify(name) is None


def test_version_files() -> None:
    assert parse_cudnn_version_h((DATA / "cudnn_version-9.1.0.h").read_text()) == "9.1.0"
    assert parse_cudnn_version_h((DATA / "cudnn_version-8.9.6.h").read_text()) == "8.9.6"
    assert parse_cudnn_version_h("#define CUDNN_MAJOR 9\n") is None
    version, parts = parse_cuda_version_json((DATA / "cuda-12.4-version.json").read_text())
    assert version == "12.4.1" and parts["libcublas"] == "12.4.5.8"
    assert parse_cuda_version_txt((DATA / "cuda-10.2-version.txt").read_text()) == "10.2.89"
    assert parse_cuda_version_json("[1, 2]") == (None, {})


def test_origin() -> None:
    assert origin_of("/x/lib/python3.11/site-packages/nvidia/cudnn/lib", [], []) == "pip"
    assert origin_of("/opt/conda/envs/a/lib", [], ["/opt/conda/envs/a"]) == "conda"
    assert origin_of("/opt/conda/envs/ab/lib", [], ["/opt/conda/envs/a"]) == "system"


@given(st.text(max_size=200))
def test_fuzz_parsers(text: str) -> None:
    version = parse_cudnn_version_h(text)
    assert version is None or version.count(".") == 2
    parse_cuda_version_json(text)
    parse_cuda_version_txt(text)
    info = classify(text)
    assert info is None or info.soname.startswith("lib")


def _layout(root: Path) -> dict[str, Path]:
    """System, pip, LD_LIBRARY_PATH, conda and CUDA toolkit copies of cuDNN / cuBLAS."""
    d = {
        "sys": root / "usr/lib/x86_64-linux-gnu",
        "site": root / "venv/lib/python3.11/site-packages",
        "llp": root / "llp",
        "conda": root / "conda",
        "cuda": root / "usr/local/cuda-12.4",
    }
    fake_lib(d["sys"] / "libcudnn.so.8.9.6", "libcudnn.so.8", "cudnn8-system")
    os.symlink("libcudnn.so.8.9.6", d["sys"] / "libcudnn.so.8")
    fake_lib(d["sys"] / "libcudnn_ops_infer.so.8.9.6", "libcudnn_ops_infer.so.8", "ops8-system")
    os.symlink("libcudnn_ops_infer.so.8.9.6", d["sys"] / "libcudnn_ops_infer.so.8")
    os.symlink("libcudnn.so.9.0.0", d["sys"] / "libcudnn.so.9")  # broken: the file is gone
    (d["sys"] / "libcublas.so.12").write_text("/* GNU ld script */\n")  # not ELF
    pip = d["site"] / "nvidia/cudnn"
    fake_lib(pip / "lib/libcudnn.so.9", "libcudnn.so.9", "cudnn9-pip")
    fake_lib(pip / "lib/libcudnn_ops.so.9", "libcudnn_ops.so.9", "ops9-pip")
    (pip / "include").mkdir()
    shutil.copy(DATA / "cudnn_version-9.1.0.h", pip / "include/cudnn_version.h")
    fake_lib(d["site"] / "nvidia/cublas/lib/libcublas.so.12", "libcublas.so.12", "cublas-pip")
    fake_lib(d["llp"] / "libcudnn.so.9", "libcudnn.so.9", "cudnn9-llp")
    fake_lib(d["conda"] / "lib/libcudnn.so.8.9.7", "libcudnn.so.8", "cudnn8-conda")
    os.symlink("libcudnn.so.8.9.7", d["conda"] / "lib/libcudnn.so.8")
    fake_lib(d["cuda"] / "lib64/libcublas.so.12.4.5.8", "libcublas.so.12", "cublas-toolkit")
    os.symlink("libcublas.so.12.4.5.8", d["cuda"] / "lib64/libcublas.so.12")
    fake_lib(d["cuda"] / "lib64/libcudart.so.12", "libcudart.so.12", "cudart-toolkit")
    shutil.copy(DATA / "cuda-12.4-version.json", d["cuda"] / "version.json")
    (d["cuda"] / "include").mkdir()
    shutil.copy(DATA / "cudnn_version-8.9.6.h", d["cuda"] / "include/cudnn_version.h")
    os.symlink("cuda-12.4", root / "usr/local/cuda")
    return d


def _scan(root: Path, d: dict[str, Path], llp: str, owners: dict[str, tuple[str, str]] | None = None,
          cache: LdCache | None = None):  # type: ignore[no-untyped-def]
    return scan_libraries(env={"LD_LIBRARY_PATH": llp}, ld_cache=cache or LdCache(), site_dirs=[str(d["site"])],
                          conda_prefixes=[str(d["conda"])], owners=owners, default_dirs=[str(d["sys"])],
                          root=str(root))


@needs_gcc
def test_scan_fake_tree(tmp_path: Path) -> None:
    d = _layout(tmp_path)
    owners = {str(d["site"] / "nvidia/cublas/lib/libcublas.so.12"): ("nvidia-cublas-cu12", "12.4.5.8")}
    scan = _scan(tmp_path, d, str(d["llp"]), owners)
    got = {(lib.soname, lib.origin, lib.version, lib.path) for lib in scan.libraries}
    assert got == {
        ("libcudnn.so.9", "system", None, str(d["llp"] / "libcudnn.so.9")),
        ("libcudnn.so.8", "system", "8.9.6", str(d["sys"] / "libcudnn.so.8")),
        ("libcudnn_ops_infer.so.8", "system", "8.9.6", str(d["sys"] / "libcudnn_ops_infer.so.8")),
        ("libcublas.so.12", "system", None, str(d["sys"] / "libcublas.so.12")),
        ("libcublas.so.12", "system", "12.4.5.8", str(tmp_path / "usr/local/cuda-12.4/lib64/libcublas.so.12")),
        ("libcudart.so.12", "system", "12.4.127", str(tmp_path / "usr/local/cuda-12.4/lib64/libcudart.so.12")),
        ("libcudnn.so.9", "pip", "9.1.0", str(d["site"] / "nvidia/cudnn/lib/libcudnn.so.9")),
        ("libcudnn_ops.so.9", "pip", "9.1.0", str(d["site"] / "nvidia/cudnn/lib/libcudnn_ops.so.9")),
        ("libcublas.so.12", "pip", "12.4.5.8", str(d["site"] / "nvidia/cublas/lib/libcublas.so.12")),
        ("libcudnn.so.8", "conda", "8.9.7", str(d["conda"] / "lib/libcudnn.so.8")),
    }
    by_path = {lib.path: lib for lib in scan.libraries}
    assert "cudnn_version.h" in (by_path[str(d["site"] / "nvidia/cudnn/lib/libcudnn.so.9")].evidence or "")
    assert "nvidia-cublas-cu12" in (by_path[str(d["site"] / "nvidia/cublas/lib/libcublas.so.12")].evidence or "")
    assert "not readable as ELF" in (by_path[str(d["sys"] / "libcublas.so.12")].evidence or "")
    assert any(n.startswith("broken symlink") and "libcudnn.so.9" in n for n in scan.notes)
    assert [t.version for t in scan.toolkits] == ["12.4.1"]


@needs_gcc
def test_scan_survives_huge_ld_library_path(tmp_path: Path) -> None:
    d = _layout(tmp_path)
    llp = ":".join([f"/nonexistent/{i}" for i in range(10_000)] + [str(d["llp"])])
    scan = _scan(tmp_path, d, llp)
    assert any("10001 directories" in n for n in scan.notes)
    assert not any(lib.path and lib.path.startswith(str(d["llp"])) for lib in scan.libraries)


@needs_gcc
def test_ld_cache_directories_are_scanned(tmp_path: Path) -> None:
    d = _layout(tmp_path)
    hidden = tmp_path / "opt/hidden"
    fake_lib(hidden / "libnccl.so.2", "libnccl.so.2", "nccl")
    cache = parse_ldconfig_p(f"\tlibnccl.so.2 (libc6,x86-64) => {hidden}/libnccl.so.2\n")
    scan = _scan(tmp_path, d, "", cache=cache)
    assert any(lib.name == "nccl" and lib.path == f"{hidden}/libnccl.so.2" for lib in scan.libraries)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable directories")
def test_unreadable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        scan = scan_libraries(env={"LD_LIBRARY_PATH": str(locked)}, ld_cache=LdCache(), default_dirs=[])
        assert any(n.startswith(f"cannot list {locked}") for n in scan.notes)
    finally:
        locked.chmod(0o755)


def test_unreadable_or_odd_entries_do_not_crash(tmp_path: Path) -> None:
    (tmp_path / "libcudnn.so.9").mkdir()  # a directory with a library's name
    (tmp_path / "libcudnn_ops.so.9").write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 9)  # truncated
    os.symlink("libloop.so.9", tmp_path / "libcudnn_cnn.so.9")
    os.symlink("libcudnn_cnn.so.9", tmp_path / "libloop.so.9")  # a symlink loop
    scan = scan_libraries(env={"LD_LIBRARY_PATH": f"{tmp_path}::relative:/dev/null"}, ld_cache=LdCache(),
                          default_dirs=[], root=str(tmp_path))
    assert {lib.soname for lib in scan.libraries} == {"libcudnn_ops.so.9"}
    assert any(n.endswith("libcudnn.so.9 is not a file") for n in scan.notes)


@needs_gcc
@pytest.mark.parametrize("use_llp", [False, True])
def test_probe_links_match_the_real_loader(tmp_path: Path, use_llp: bool) -> None:
    d = _layout(tmp_path)
    pip_lib = d["site"] / "nvidia/cudnn/lib"
    ct2 = consumer(d["site"] / "ctranslate2/libctranslate2-fake.so", link_dir=pip_lib, needed="libcudnn.so.9",
                   dlopen_name="libcublas.so.12",
                   runpath="$ORIGIN/../nvidia/cudnn/lib:$ORIGIN/../nvidia/cublas/lib")
    llp = str(d["llp"]) if use_llp else None
    links, _ = consumer_links(str(ct2), "ctranslate2", env_ld_library_path=llp, ld_cache=LdCache(),
                              default_dirs=[str(d["sys"])])
    by_name = {x.needs: x for x in links}
    assert by_name["libcudnn.so.9"].how == "needed" and by_name["libcublas.so.12"].how == "dlopen"
    real = probe_real_loader(ct2, ld_library_path=llp, dlopen=True)
    assert real.ok, real.error
    for soname in ("libcudnn.so.9", "libcublas.so.12"):
        assert by_name[soname].resolved == real.loaded(soname)
    assert real.tags["linked"] == ("cudnn9-llp" if use_llp else "cudnn9-pip")
    assert by_name["libcudnn.so.9"].via == ("ld_library_path" if use_llp else "runpath")
