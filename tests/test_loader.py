"""The loader simulation against the real glibc loader, layout by layout.

Each case builds real shared objects, asks `resolve` where a soname goes, then loads the consumer
in a fresh Python with ctypes and compares with glibc's own link map (names as glibc recorded them)
and its LD_DEBUG=libs trace. `consumer_links`, which the probe records, is checked the same way.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from envsolve.resolver.probe.elf import ElfFile
from envsolve.resolver.probe.ldcache import LdCache, read_ld_so_cache
from envsolve.resolver.probe.loader import MAX_SEARCHED, Resolution, consumer_links, resolve, split_search_path

from fixtures_elf import (
    HAVE_GCC,
    Tree,
    build_tree,
    consumer,
    fake_lib,
    gcc_shared,
    patch_bytes,
    probe_real_loader,
    set_flags_1,
)

pytestmark = [
    pytest.mark.skipif(not HAVE_GCC, reason="needs gcc to build shared objects"),
    pytest.mark.skipif(
        sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="compares with glibc's loader"
    ),
    pytest.mark.skipif(platform.machine() != "x86_64", reason="default dirs and $LIB are x86_64 Debian values"),
]

CT2 = "libctranslate2-fake.so"


@pytest.fixture(scope="module")
def cache() -> LdCache:
    return read_ld_so_cache()


@dataclass
class Case:
    """A layout: how to build the consumer, the environment, and which soname to check."""

    id: str
    build: Callable[[Tree], Path]
    llp: Callable[[Tree], str | None] = lambda t: None
    soname: str = "libcudnn.so.9"
    dlopen: bool = False
    preload: Callable[[Tree], tuple[str, ...]] = lambda t: ()
    expect_via: str | None = None
    expect_tag: str | None = None
    chain: Callable[[Tree], tuple[str, ...]] = lambda t: ()
    load: Callable[[Tree], Path] | None = None  # what ctypes loads, when not the consumer
    expect_missing: bool = False
    notes: list[str] = field(default_factory=list)


def _runpath(t: Tree, runpath: str = "$ORIGIN/../nvidia/cudnn/lib:$ORIGIN/../nvidia/cublas/lib") -> Path:
    return consumer(t.ct2 / CT2, link_dir=t.system, needed="libcudnn.so.9", runpath=runpath)


def _rpath(t: Tree) -> Path:
    return consumer(t.ct2 / CT2, link_dir=t.system, needed="libcudnn.so.9", rpath="$ORIGIN/../nvidia/cudnn/lib")


def _plain(t: Tree) -> Path:
    return consumer(t.ct2 / CT2, link_dir=t.system, needed="libcudnn.so.9")


def _with_file(make: Callable[[Path], object], where: Callable[[Tree], Path]) -> Callable[[Tree], str]:
    """An LD_LIBRARY_PATH of one extra directory holding a file that `make` writes."""

    def llp(t: Tree) -> str:
        d = where(t)
        d.mkdir(parents=True, exist_ok=True)
        make(d / "libcudnn.so.9")
        return str(d)

    return llp


def _wrong_class(p: Path) -> None:
    gcc_shared(p, "int f(void) { return 1; }\n", "-m32", "-nostdlib", "-Wl,-soname,libcudnn.so.9")


def _wrong_machine(p: Path) -> None:
    fake_lib(p, "libcudnn.so.9", "aarch64?")
    patch_bytes(p, 18, (183).to_bytes(2, "little"))  # e_machine = EM_AARCH64


def _symlinked_ct2(t: Tree) -> Path:
    _runpath(t)
    link = t.root / "elsewhere" / "ctranslate2"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(t.ct2, target_is_directory=True)
    return link / CT2


def _parent_with(tag: str) -> Callable[[Tree], Path]:
    """A parent library that links the consumer and carries RPATH or RUNPATH to both dirs."""

    def build(t: Tree) -> Path:
        _plain(t)
        dirs = f"{t.ct2}:{t.pip_cudnn}"
        dtags = "-Wl,--disable-new-dtags" if tag == "rpath" else "-Wl,--enable-new-dtags"
        return gcc_shared(
            t.root / "parent" / "libparent.so", "int p(void) { return 0; }\n",
            f"-L{t.ct2}", "-Wl,--no-as-needed", f"-l:{CT2}", dtags, f"-Wl,-rpath,{dirs}",
        )  # fmt: skip

    return build


CASES = [
    Case("runpath-pip", _runpath, expect_via="runpath", expect_tag="cudnn9.8-pip"),
    Case("llp-shadows-runpath", _runpath, llp=lambda t: str(t.llp), expect_via="ld_library_path"),
    Case("rpath-beats-llp", _rpath, llp=lambda t: str(t.llp), expect_via="rpath", expect_tag="cudnn9.8-pip"),
    Case("plain-llp-system", _plain, llp=lambda t: f"{t.root}/nope:{t.system}", expect_via="ld_library_path"),
    Case(
        "pip-installed-not-on-path",
        lambda t: _runpath(t, "$ORIGIN/../nvidia/cudnn9/lib"),
        expect_via=None,
        expect_missing=True,
    ),
    Case("llp-semicolon", _plain, llp=lambda t: f"/nonexistent;{t.llp}", expect_via="ld_library_path"),
    Case("llp-trailing-slash-dupes", _plain, llp=lambda t: f"{t.llp}/:{t.llp}//:{t.system}"),
    Case("dlopen-runpath", _runpath, soname="libcublas.so.12", dlopen=True, expect_via="runpath"),
    Case(
        "dlopen-llp-system",
        _runpath,
        soname="libcublas.so.12",
        dlopen=True,
        llp=lambda t: str(t.system),
        expect_via="ld_library_path",
    ),
    Case(
        "torch-loaded-system-cudnn-first",
        _runpath,
        preload=lambda t: (str(t.system / "libcudnn.so.9"),),
        expect_via="already-loaded",
        expect_tag="cudnn9.1-system",
    ),
    Case(
        "preloaded-without-soname-does-not-count",
        _runpath,
        preload=lambda t: (str(gcc_shared(t.root / "nosoname" / "libcudnn.so.9", "int x(void){return 0;}\n")),),
        expect_via="runpath",
    ),
    Case(
        "wrong-class-skipped",
        _runpath,
        llp=_with_file(_wrong_class, lambda t: t.root / "llp32"),
        expect_via="runpath",
    ),
    Case(
        "wrong-machine-skipped",
        _runpath,
        llp=_with_file(_wrong_machine, lambda t: t.root / "llparm"),
        expect_via="runpath",
    ),
    Case(
        "linker-script-is-fatal",
        _runpath,
        llp=_with_file(lambda p: p.write_text("INPUT(libcudnn.so.9.1)\n"), lambda t: t.root / "llptext"),
        expect_via=None,
        expect_missing=True,
    ),
    Case(
        "truncated-is-fatal",
        _runpath,
        llp=_with_file(lambda p: p.write_bytes(b"\x7fELF\x02\x01\x01"), lambda t: t.root / "llpshort"),
        expect_via=None,
        expect_missing=True,
    ),
    Case(
        "truncated-to-64-bytes",  # a whole ELF header, no program headers: glibc says "cannot read file data"
        _runpath,
        llp=_with_file(lambda p: p.write_bytes(fake_lib(p.parent / "whole.so", "libcudnn.so.9", "t").read_bytes()[:64]),
                       lambda t: t.root / "llptrunc"),
        expect_via=None,
        expect_missing=True,
    ),
    Case(
        "broken-symlink-skipped",
        _runpath,
        llp=_with_file(lambda p: p.symlink_to(p.parent / "missing.so"), lambda t: t.root / "llplink"),
        expect_via="runpath",
    ),
    Case(
        "directory-with-the-name",
        _runpath,
        llp=_with_file(lambda p: p.mkdir(), lambda t: t.root / "llpdir"),
        expect_missing=True,
    ),
    Case("origin-through-symlinked-dir", _symlinked_ct2, expect_via="runpath", expect_tag="cudnn9.8-pip"),
    Case(
        "lib-token",
        lambda t: (
            fake_lib(t.root / "site-packages/lib/x86_64-linux-gnu/libcudnn.so.9", "libcudnn.so.9", "lib-token"),
            _runpath(t, "${ORIGIN}/../$LIB"),
        )[1],
        expect_via="runpath",
        expect_tag="lib-token",
    ),
    Case("system-lib-from-cache", lambda t: _runpath(t), soname="libc.so.6"),
    Case(
        "nodeflib-skips-cache",
        lambda t: set_flags_1(
            consumer(
                t.ct2 / CT2,
                link_dir=t.system,
                needed="libcudnn.so.9",
                runpath=str(t.system),
                extra=("-lz", "-Wl,-z,now"),
            ),
            0x800,  # DF_1_NODEFLIB
        ),
        soname="libz.so.1",
        expect_via=None,
        expect_missing=True,
    ),
    Case(
        "rpath-of-loader-chain",
        _plain,
        load=_parent_with("rpath"),
        chain=lambda t: (str(t.root / "parent" / "libparent.so"),),
        expect_via="rpath",
        expect_tag="cudnn9.8-pip",
    ),
    Case(
        "runpath-of-loader-not-inherited",
        _plain,
        load=_parent_with("runpath"),
        chain=lambda t: (str(t.root / "parent" / "libparent.so"),),
        expect_via=None,
        expect_missing=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_simulation_matches_real_loader(case: Case, tmp_path: Path, cache: LdCache) -> None:
    tree = build_tree(tmp_path)
    path = case.build(tree)
    load = case.load(tree) if case.load else path
    llp = case.llp(tree)
    preload = case.preload(tree)
    chain = (*case.chain(tree), os.path.realpath(sys.executable))
    real = probe_real_loader(load, ld_library_path=llp, dlopen=case.dlopen, preload=preload, cwd=tmp_path)
    sim = resolve(
        str(path), case.soname, env_ld_library_path=llp, ld_cache=cache, loaded=preload, loader_chain=chain,
        cwd=str(tmp_path),
    )  # fmt: skip
    if case.soname == "libc.so.6":  # the interpreter already has libc; ask as a fresh process would
        assert real.loaded("libc.so.6") == sim.resolved
        assert sim.via == "ld.so.cache"
        return
    if case.expect_via is not None:
        assert sim.via == case.expect_via
    if case.expect_missing:
        assert sim.resolved is None
    if sim.resolved is None:
        assert not real.ok, f"real loader succeeded ({real.link_map}) where the simulation found nothing"
        if sim.error:
            assert sim.error.split(": ", 1)[1].split(" (")[0] in (real.error or ""), (sim.error, real.error)
        return
    assert real.ok, real.error
    assert real.loaded(case.soname) == sim.resolved
    if case.expect_tag and not case.dlopen:
        assert real.tags["linked"] == case.expect_tag
    tried = real.tried.get(case.soname, [])
    if sim.via != "already-loaded" and tried:
        assert tried[-1] == sim.resolved
        assert _is_subsequence(tried, list(sim.searched)), (tried, sim.searched)


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def test_consumer_links_record_needed_and_dlopen_sonames(tmp_path: Path, cache: LdCache) -> None:
    tree = build_tree(tmp_path)
    path = _runpath(tree)
    links, brought = consumer_links(str(path), "ctranslate2", env_ld_library_path=str(tree.llp), ld_cache=cache)
    by_name = {link.needs: link for link in links}
    assert set(by_name) == {"libcudnn.so.9", "libcublas.so.12"}  # libc is resolved, and loaded, but not recorded
    assert by_name["libcudnn.so.9"].how == "needed"
    assert by_name["libcudnn.so.9"].via == "ld_library_path"
    assert by_name["libcudnn.so.9"].resolved == f"{tree.llp}/libcudnn.so.9"
    assert by_name["libcublas.so.12"].how == "dlopen"
    assert by_name["libcublas.so.12"].via == "runpath"
    assert all(link.consumer == "ctranslate2" for link in links)
    real = probe_real_loader(path, ld_library_path=str(tree.llp), dlopen=True)
    assert real.ok, real.error
    for soname, link in by_name.items():
        assert link.resolved == real.loaded(soname)
    assert real.loaded("libc.so.6") in brought and by_name["libcudnn.so.9"].resolved in brought


def test_consumer_links_keep_a_bounded_search_trail(tmp_path: Path, cache: LdCache) -> None:
    tree = build_tree(tmp_path)
    path = _runpath(tree)
    llp = ":".join(f"{tmp_path}/missing{i}" for i in range(100)) + f":{tree.llp}"
    links, _ = consumer_links(str(path), "ctranslate2", env_ld_library_path=llp, ld_cache=cache)
    cudnn = next(link for link in links if link.needs == "libcudnn.so.9")
    assert cudnn.resolved == f"{tree.llp}/libcudnn.so.9"
    assert len(cudnn.searched) == MAX_SEARCHED + 1
    assert cudnn.searched[: MAX_SEARCHED - 1] == tuple(f"{tmp_path}/missing{i}/libcudnn.so.9" for i in range(39))
    assert cudnn.searched[MAX_SEARCHED - 1] == f"... {101 - MAX_SEARCHED + 1} more files tried"
    assert cudnn.searched[-1] == cudnn.resolved


def test_consumer_links_say_why_a_lookup_failed(tmp_path: Path, cache: LdCache) -> None:
    tree = build_tree(tmp_path)
    path = _runpath(tree)
    script = tmp_path / "llptext"
    script.mkdir()
    (script / "libcudnn.so.9").write_text("/* GNU ld script */\nINPUT(libcudnn.so.9.1.0)\n" * 3)
    links, _ = consumer_links(str(path), "ctranslate2", env_ld_library_path=str(script), ld_cache=cache)
    cudnn = next(link for link in links if link.needs == "libcudnn.so.9")
    assert cudnn.resolved is None
    assert cudnn.via is not None and cudnn.via.startswith("error: ") and "invalid ELF header" in cudnn.via
    real = probe_real_loader(path, ld_library_path=str(script))
    assert not real.ok and "invalid ELF header" in (real.error or "")


def test_resolution_of_a_path_name(tmp_path: Path, cache: LdCache) -> None:
    tree = build_tree(tmp_path)
    path = _plain(tree)
    res = resolve(str(path), "$ORIGIN/../nvidia/cudnn/lib/libcudnn.so.9", env_ld_library_path=None, ld_cache=cache)
    assert res == Resolution(
        "$ORIGIN/../nvidia/cudnn/lib/libcudnn.so.9",
        f"{tree.ct2}/../nvidia/cudnn/lib/libcudnn.so.9",
        "path",
        (f"{tree.ct2}/../nvidia/cudnn/lib/libcudnn.so.9",),
    )


def test_split_search_path_follows_fillin_rpath() -> None:
    assert split_search_path("a::b/:a;c", ":;") == ["a", ".", "b", "c"]
    assert split_search_path("", ":") == ["."]
    assert split_search_path("/", ":") == ["/"]


def test_unreadable_dir_in_path(tmp_path: Path, cache: LdCache) -> None:
    tree = build_tree(tmp_path)
    path = _runpath(tree)
    locked = tmp_path / "locked"
    shutil.copytree(tree.llp, locked)
    locked.chmod(0)
    try:
        real = probe_real_loader(path, ld_library_path=str(locked))
        sim = resolve(str(path), "libcudnn.so.9", env_ld_library_path=str(locked), ld_cache=cache)
        # root reads through mode 0; anyone else is refused (EACCES) and glibc moves on. Either way
        # the simulation, which opens files the same way, must agree.
        assert real.loaded("libcudnn.so.9") == sim.resolved
    finally:
        locked.chmod(0o755)


def test_huge_ld_library_path_is_fast(tmp_path: Path, cache: LdCache) -> None:
    tree = build_tree(tmp_path)
    path = _runpath(tree)
    # Relative entries keep the variable under the kernel's 128 KiB limit for one string.
    llp = ":".join(f"m{i}" for i in range(5000)) + f":{tree.llp}"
    start = time.perf_counter()
    res = resolve(str(path), "libcudnn.so.9", env_ld_library_path=llp, ld_cache=cache, cwd=str(tmp_path))
    assert time.perf_counter() - start < 5
    assert res.via == "ld_library_path" and res.resolved == f"{tree.llp}/libcudnn.so.9"
    assert len(res.searched) == 5001
    real = probe_real_loader(path, ld_library_path=llp, cwd=tmp_path)
    assert real.loaded("libcudnn.so.9") == res.resolved


def test_executable_stack_object_is_reported(tmp_path: Path) -> None:
    lib = fake_lib(tmp_path / "libexec.so", "libexec.so", "x", "-Wl,-z,execstack")
    plain = fake_lib(tmp_path / "libplain.so", "libplain.so", "y", "-Wl,-z,noexecstack")
    with ElfFile.open(lib) as a, ElfFile.open(plain) as b:
        assert a.executable_stack is True
        assert b.executable_stack is False
    # glibc before 2.41 loads it (making the stack executable); 2.41+ refuses. Check the one we have.
    version = tuple(int(x) for x in platform.libc_ver()[1].split(".")[:2])
    real = probe_real_loader(_consumer_of(tmp_path, lib), ld_library_path=str(tmp_path))
    assert real.ok == (version < (2, 41)), real.error


def _consumer_of(tmp_path: Path, lib: Path) -> Path:
    return gcc_shared(
        tmp_path / "c" / "libc-of-exec.so",
        "extern const char *which(void);\nconst char *linked_which(void) { return which(); }\n",
        f"-L{lib.parent}", "-Wl,--no-as-needed", f"-l:{lib.name}",
    )  # fmt: skip
