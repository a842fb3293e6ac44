"""ld.so.cache parsing: this machine's cache against `ldconfig -p`, caches written by the real
ldconfig in all three formats, glibc-hwcaps entries, and corrupt input."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envsolve.resolver.probe.ldcache import (
    CacheEntry,
    LdCache,
    cache_flags_for,
    parse_ld_so_cache,
    parse_ldconfig_p,
    read_ld_so_cache,
)

from fixtures_elf import HAVE_GCC, fake_lib

LDCONFIG = shutil.which("ldconfig") or (Path("/sbin/ldconfig").exists() and "/sbin/ldconfig") or None
needs_ldconfig = pytest.mark.skipif(not LDCONFIG, reason="needs glibc's ldconfig")


def _rows(cache: LdCache) -> list[tuple[str, str, int, str | None]]:
    return [(e.soname, e.path, e.flags, e.hwcaps_subdir) for e in cache.entries]


def _ldconfig_p(cache_file: str | None = None) -> str:
    assert LDCONFIG
    argv = [LDCONFIG, "-p"] + (["-C", cache_file] if cache_file else [])
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@needs_ldconfig
@pytest.mark.skipif(not Path("/etc/ld.so.cache").exists(), reason="no /etc/ld.so.cache here")
def test_this_machines_cache_matches_ldconfig_p() -> None:
    binary = read_ld_so_cache()
    text = parse_ldconfig_p(_ldconfig_p())
    assert binary.reason is None
    assert binary.entries, "an empty system cache is suspicious"
    assert _rows(binary) == _rows(text)
    assert binary.generator == text.generator


@pytest.fixture(scope="module")
def libdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_GCC:
        pytest.skip("needs gcc")
    root = tmp_path_factory.mktemp("ldc")
    fake_lib(root / "libcudnn.so.9", "libcudnn.so.9", "plain")
    fake_lib(root / "glibc-hwcaps" / "x86-64-v3" / "libcudnn.so.9", "libcudnn.so.9", "v3")
    fake_lib(root / "libcublas.so.12", "libcublas.so.12", "cublas")
    return root


def _build_cache(libdir: Path, tmp_path: Path, fmt: str) -> Path:
    assert LDCONFIG
    conf = tmp_path / "ld.so.conf"
    conf.write_text(f"{libdir}\n")
    out = tmp_path / f"ld.so.cache.{fmt}"
    # -X: leave symlinks alone (the system dirs are scanned too and must not change).
    subprocess.run([LDCONFIG, "-X", "-c", fmt, "-C", str(out), "-f", str(conf)], check=True, capture_output=True)
    return out


@needs_ldconfig
@pytest.mark.parametrize(("fmt", "layout"), [("new", "new"), ("old", "old"), ("compat", "old+new")])
def test_real_ldconfig_formats(fmt: str, layout: str, libdir: Path, tmp_path: Path) -> None:
    path = _build_cache(libdir, tmp_path, fmt)
    cache = read_ld_so_cache(str(path))
    assert cache.reason is None and cache.format == layout
    text = parse_ldconfig_p(_ldconfig_p(str(path)))
    assert [r[:3] for r in _rows(cache)] == [r[:3] for r in _rows(text)]
    # Each glibc-hwcaps entry's file lies in the subdirectory the entry names. glibc 2.36's
    # `ldconfig -p` misprints that name for compat-format caches (it reads the string from the
    # wrong base), so the path is the oracle here, not ldconfig's text.
    for entry in cache.entries:
        if entry.hwcaps_subdir is not None:
            assert f"/glibc-hwcaps/{entry.hwcaps_subdir}/" in entry.path
    if fmt == "new":
        assert _rows(cache) == _rows(text)
    x86_64 = cache_flags_for(2, 62)
    hit = cache.lookup("libcublas.so.12", x86_64)
    assert hit is not None and hit.path == f"{libdir}/libcublas.so.12"
    assert hit.kind == "libc6" and hit.abi == "x86-64"
    assert cache.lookup("libcublas.so.12", cache_flags_for(2, 183)) is None  # not for aarch64


@needs_ldconfig
def test_glibc_hwcaps_entries(libdir: Path, tmp_path: Path) -> None:
    cache = read_ld_so_cache(str(_build_cache(libdir, tmp_path, "new")))
    flags = cache_flags_for(2, 62)
    subdirs = {e.hwcaps_subdir for e in cache.entries if e.soname == "libcudnn.so.9"}
    assert subdirs == {None, "x86-64-v3"}
    plain = cache.lookup("libcudnn.so.9", flags)
    assert plain is not None and plain.path == f"{libdir}/libcudnn.so.9"
    v3 = cache.lookup("libcudnn.so.9", flags, hwcaps=("x86-64-v4", "x86-64-v3"))
    assert v3 is not None and v3.path == f"{libdir}/glibc-hwcaps/x86-64-v3/libcudnn.so.9"
    assert cache.generator and "ldconfig" in cache.generator


def test_missing_and_unreadable(tmp_path: Path) -> None:
    missing = read_ld_so_cache(str(tmp_path / "nope"))
    assert missing.entries == () and missing.reason and "cannot read" in missing.reason
    assert read_ld_so_cache(str(tmp_path)).reason  # a directory


@pytest.mark.parametrize(
    "data",
    [b"", b"ld.so-1.7.0", b"glibc-ld.so.cache1.1", b"nonsense" * 10, b"ld.so-1.7.0\0\xff\xff\xff\xff"],
)
def test_corrupt_gives_reason(data: bytes) -> None:
    cache = parse_ld_so_cache(data)
    assert cache.entries == () and cache.reason


def _old_cache(entries: list[tuple[int, str, str]]) -> bytes:
    """The old layout by hand: header, 12-byte entries, strings counted from the table's end."""
    strings = b""
    rows = b""
    for flags, key, value in entries:
        k = len(strings)
        strings += key.encode() + b"\0"
        v = len(strings)
        strings += value.encode() + b"\0"
        rows += struct.pack("<iII", flags, k, v)
    return b"ld.so-1.7.0\0" + struct.pack("<I", len(entries)) + rows + strings


def test_handmade_old_format() -> None:
    cache = parse_ld_so_cache(_old_cache([(0x303, "libz.so.1", "/lib/libz.so.1"), (3, "libq.so", "/q")]))
    assert cache.format == "old"
    assert cache.entries == (CacheEntry("libz.so.1", "/lib/libz.so.1", 0x303), CacheEntry("libq.so", "/q", 3))
    assert cache.lookup("libq.so") is not None  # generic rule: flags 1 or 3
    assert cache.lookup("libz.so.1") is None


def test_ldconfig_p_text_with_hwcap_and_os_abi() -> None:
    text = (
        "3 libs found in cache `/etc/ld.so.cache'\n"
        '\tlibcudnn.so.9 (libc6,x86-64, hwcap: "x86-64-v3") => /usr/lib/glibc-hwcaps/x86-64-v3/libcudnn.so.9\n'
        "\tlibold.so.1 (libc6,x86-64, hwcap: 0x0000000000001000, OS ABI: Linux 2.6.32) => /usr/lib/libold.so.1\n"
        "\tlibarm.so (libc6,AArch64) => /usr/lib/aarch64-linux-gnu/libarm.so\n"
        "Cache generated by: ldconfig (GNU libc) stable release version 2.39\n"
    )
    cache = parse_ldconfig_p(text)
    assert _rows(cache) == [
        ("libcudnn.so.9", "/usr/lib/glibc-hwcaps/x86-64-v3/libcudnn.so.9", 0x303, "x86-64-v3"),
        ("libold.so.1", "/usr/lib/libold.so.1", 0x303, None),
        ("libarm.so", "/usr/lib/aarch64-linux-gnu/libarm.so", 0xA03, None),
    ]
    assert cache.generator == "ldconfig (GNU libc) stable release version 2.39"


@needs_ldconfig
def test_every_truncation_of_a_real_cache(libdir: Path, tmp_path: Path) -> None:
    data = _build_cache(libdir, tmp_path, "compat").read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 400)):
        assert isinstance(parse_ld_so_cache(data[:cut]), LdCache)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.sampled_from([b"", b"ld.so-1.7.0", b"glibc-ld.so.cache1.1"]))
def test_fuzz_never_raises(data: bytes, prefix: bytes) -> None:
    assert isinstance(parse_ld_so_cache(prefix + data), LdCache)


_SEED = _old_cache([(0x303, "libz.so.1", "/lib/libz.so.1"), (0x303, "libcudnn.so.9", "/x/libcudnn.so.9")])


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_mutated_cache(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for offset, value in mutations:
        data[offset] = value
    assert isinstance(parse_ld_so_cache(bytes(data)), LdCache)
