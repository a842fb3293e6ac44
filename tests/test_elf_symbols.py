"""Dynamic symbols read through the dynamic section, checked against nm on gcc-built objects: defined and
undefined, weak, GNU symbol versions (needed and defined, default and hidden), both hash table styles, the
section-header fallback, and corrupt input."""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envsolve.resolver.probe.elf import STB_WEAK, ElfError, ElfFile, Symbol

from fixtures_elf import HAVE_GCC, gcc_shared

needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="needs gcc")
needs_nm = pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm")

PROVIDER = r"""
int provided_a(void) { return 1; }
int provided_b(void) { return 2; }
__attribute__((weak)) int weak_one(void) { return 3; }
int old_api(void) { return 4; }
int new_api(void) { return 5; }
__asm__(".symver old_api, api@VERS_1");
__asm__(".symver new_api, api@@VERS_2");
int counter = 7;
"""
SCRIPT = """VERS_1 { global: provided_a; provided_b; weak_one; counter; api; local: *; };
VERS_2 { global: api; } VERS_1;
"""
CONSUMER = r"""
#include <stdio.h>
extern int provided_a(void);
extern int api(void);
__attribute__((weak)) extern int maybe_there(void);
int use(void) { printf("%d", provided_a() + api()); return maybe_there ? maybe_there() : 0; }
"""


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAVE_GCC:
        pytest.skip("needs gcc")
    root = tmp_path_factory.mktemp("syms")
    script = root / "vers.map"
    script.write_text(SCRIPT)
    out = {}
    for style in ("gnu", "sysv"):
        out[f"provider-{style}"] = gcc_shared(root / style / "libprovider.so", PROVIDER, "-Wl,-soname,libprovider.so",
                                              f"-Wl,--version-script={script}", f"-Wl,--hash-style={style}")
    provider = out["provider-gnu"]
    out["consumer"] = gcc_shared(root / "libconsumer.so", CONSUMER, f"-L{provider.parent}", "-lprovider")
    return out


def _nm(path: Path) -> set[tuple[str, bool]]:
    text = subprocess.run(["nm", "-D", "--with-symbol-versions", str(path)], capture_output=True, text=True,
                          check=True).stdout
    out = set()
    for line in text.splitlines():
        kind, name = line.split()[-2:]
        if kind == "A":  # nm lists version definitions as absolute symbols; they are not symbols to import
            continue
        out.add((name, kind not in ("U", "w", "v")))
    return out


def _ours(symbols: tuple[Symbol, ...]) -> set[tuple[str, bool]]:
    out = set()
    for s in symbols:
        if s.version and s.version == s.name:
            continue
        mark = "@" if (s.hidden or not s.defined) else "@@"
        out.add((s.name + (mark + s.version if s.version else ""), s.defined))
    return out


@needs_gcc
@needs_nm
@pytest.mark.parametrize("name", ["provider-gnu", "provider-sysv", "consumer"])
def test_agrees_with_nm(objects: dict[str, Path], name: str) -> None:
    with ElfFile.open(objects[name]) as elf:
        assert _ours(elf.dynamic_symbols()) == _nm(objects[name])


@needs_gcc
def test_defined_undefined_weak_and_versions(objects: dict[str, Path]) -> None:
    with ElfFile.open(objects["provider-gnu"]) as elf:
        by_name = {(s.name, s.version): s for s in elf.dynamic_symbols()}
    assert by_name[("provided_a", "VERS_1")].defined
    assert by_name[("weak_one", "VERS_1")].binding == STB_WEAK
    assert by_name[("api", "VERS_1")].hidden and not by_name[("api", "VERS_2")].hidden  # api@VERS_1, api@@VERS_2
    assert by_name[("counter", "VERS_1")].type == 1  # STT_OBJECT
    with ElfFile.open(objects["consumer"]) as elf:
        imports = {s.name: s for s in elf.dynamic_symbols() if not s.defined}
    assert imports["provided_a"].version == "VERS_1" and imports["provided_a"].version_file == "libprovider.so"
    assert imports["api"].version == "VERS_2"
    assert imports["printf"].version and imports["printf"].version.startswith("GLIBC_")
    assert imports["printf"].version_file == "libc.so.6"
    assert imports["maybe_there"].weak and imports["maybe_there"].version is None


@needs_gcc
def test_without_hash_tags_the_section_headers_give_the_count(objects: dict[str, Path], tmp_path: Path) -> None:
    """DT_GNU_HASH renamed to an unknown tag: the count comes from the .dynsym section header instead."""
    data = bytearray(objects["provider-gnu"].read_bytes())
    phoff, phentsize, phnum = struct.unpack_from("<Q", data, 32)[0], *struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 2:
            for at in range(p_offset, p_offset + p_filesz, 16):
                if struct.unpack_from("<q", data, at)[0] == 0x6FFFFEF5:
                    struct.pack_into("<q", data, at, 0x6FFFFEF0)  # an unused DT_* in the OS range
    path = tmp_path / "libnohash.so"
    path.write_bytes(bytes(data))
    with ElfFile.open(path) as elf, ElfFile.open(objects["provider-gnu"]) as real:
        assert elf.dynamic_symbols() == real.dynamic_symbols()


def test_large_system_library() -> None:
    path = Path("/lib/x86_64-linux-gnu/libstdc++.so.6")
    if not path.exists():
        pytest.skip("no libstdc++ here")
    with ElfFile.open(path) as elf:
        symbols = elf.dynamic_symbols()
    assert len(symbols) > 3000
    assert any(s.name == "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE10_M_disposeEv" and s.defined
               and (s.version or "").startswith("GLIBCXX_") for s in symbols)


@needs_gcc
def test_truncated_and_mutated_objects_raise_elf_error_only(objects: dict[str, Path]) -> None:
    data = objects["consumer"].read_bytes()
    for cut in range(0, len(data), 61):
        _symbols_or_elf_error(data[:cut])


def _symbols_or_elf_error(data: bytes) -> None:
    with contextlib.suppress(ElfError):
        ElfFile(io.BytesIO(data)).dynamic_symbols()


@needs_gcc
@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 1 << 14), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_mutated_objects(objects: dict[str, Path], mutations: list[tuple[int, int]]) -> None:
    data = bytearray(objects["consumer"].read_bytes())
    for offset, value in mutations:
        data[offset % len(data)] = value
    _symbols_or_elf_error(bytes(data))
