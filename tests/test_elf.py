"""The ELF reader on real gcc-built objects, synthetic ones for other ABIs, and corrupt input; the scan
for the sonames a binary dlopens (loader.dlopen_names) on the same files."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envsolve.errors import EnvsolveError
from envsolve.resolver.probe.elf import EM_386, EM_X86_64, ET_DYN, ET_EXEC, ElfError, ElfFile, is_soname_like, soname_of
from envsolve.resolver.probe.loader import REPORTED_PREFIXES, dlopen_names

from fixtures_elf import HAVE_GCC, consumer, fake_lib, gcc_shared, set_flags_1, synth_elf

needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="needs gcc")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAVE_GCC:
        pytest.skip("needs gcc")
    root = tmp_path_factory.mktemp("elf")
    cudnn = fake_lib(root / "sys" / "libcudnn.so.9", "libcudnn.so.9", "cudnn9")
    return {
        "cudnn": cudnn,
        "runpath": consumer(
            root / "rp" / "libctranslate2-fake.so", link_dir=cudnn.parent, needed="libcudnn.so.9",
            runpath="$ORIGIN/../nvidia/cudnn/lib",
        ),
        "rpath": consumer(
            root / "r" / "libctranslate2-fake.so", link_dir=cudnn.parent, needed="libcudnn.so.9",
            rpath="/opt/a:$ORIGIN/b",
        ),
        "execstack": fake_lib(root / "x" / "libexec.so", "libexec.so", "x", "-Wl,-z,execstack"),
        "nodeflib": set_flags_1(fake_lib(root / "n" / "libnodef.so", "libnodef.so", "n", "-Wl,-z,now"), 0x800),
        "m32": gcc_shared(root / "m32" / "lib32.so", "int f(void){return 1;}\n", "-m32", "-nostdlib"),
    }  # fmt: skip


@needs_gcc
def test_consumer_dynamic_entries(built: dict[str, Path]) -> None:
    with ElfFile.open(built["runpath"]) as elf:
        assert (elf.elf_class, elf.machine, elf.e_type) == (2, EM_X86_64, ET_DYN)
        assert elf.interpreter is None
        assert "libcudnn.so.9" in elf.needed and "libc.so.6" in elf.needed
        assert elf.soname == "libctranslate2-fake.so"
        assert elf.runpath == "$ORIGIN/../nvidia/cudnn/lib"
        assert elf.rpath is None
        assert elf.executable_stack is False
    with ElfFile.open(built["rpath"]) as elf:
        assert elf.rpath == "/opt/a:$ORIGIN/b" and elf.runpath is None


@needs_gcc
def test_flags_and_classes(built: dict[str, Path]) -> None:
    with ElfFile.open(built["execstack"]) as elf:
        assert elf.executable_stack is True
    with ElfFile.open(built["nodeflib"]) as elf:
        assert elf.nodeflib
    with ElfFile.open(built["m32"]) as elf:
        assert (elf.elf_class, elf.machine, elf.header.bits) == (1, EM_386, 32)
    assert soname_of(built["cudnn"]) == "libcudnn.so.9"
    assert soname_of(built["m32"]) is None


@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs binutils' readelf")
@pytest.mark.parametrize("name", ["libc.so.6", "libz.so.1", "libstdc++.so.6", "libcrypto.so.3", "libm.so.6"])
def test_agrees_with_readelf_on_system_libraries(name: str) -> None:
    path = Path("/lib/x86_64-linux-gnu") / name
    if not path.exists():
        pytest.skip(f"{path} not here")
    out = subprocess.run(["readelf", "-dlW", str(path)], capture_output=True, text=True, check=True).stdout
    with ElfFile.open(path) as elf:
        assert list(elf.needed) == re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", out)
        assert [elf.soname] == (re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", out) or [None])
        assert [elf.runpath] == (re.findall(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", out) or [None])
        interp = re.findall(r"Requesting program interpreter: (.*)\]", out)
        assert [elf.interpreter] == (interp or [None])
        stack = re.search(r"GNU_STACK\s+(?:\S+\s+){5}(\S+)", out)
        assert stack is not None and elf.executable_stack == ("E" in stack.group(1))


def test_executable_has_interpreter() -> None:
    with ElfFile.open(os.path.realpath("/bin/sh")) as elf:
        assert elf.e_type in (ET_DYN, ET_EXEC)
        assert elf.interpreter and elf.interpreter.startswith("/lib")


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_synthetic_all_classes_and_byte_orders(bits: int, byteorder: str) -> None:
    data = synth_elf(
        bits=bits, byteorder=byteorder, machine=22, needed=("libcudnn.so.9", "libc.so.6"), soname="libx.so.1",
        rpath="/r", stack_flags=7,
    )  # fmt: skip
    elf = ElfFile(io.BytesIO(data))
    assert (elf.header.bits, elf.header.byteorder, elf.machine) == (bits, byteorder, 22)
    assert elf.needed == ("libcudnn.so.9", "libc.so.6")
    assert (elf.soname, elf.rpath, elf.runpath) == ("libx.so.1", "/r", None)
    assert elf.executable_stack is True


def test_missing_gnu_stack_is_unknown() -> None:
    assert ElfFile(io.BytesIO(synth_elf(stack_flags=None))).executable_stack is None


@pytest.mark.parametrize(
    "name", ["libcudnn.so.9", "libcudnn_ops.so.9.1.0", "libfoo.so", "libnvrtc-builtins.so.12.4", "libc++.so.1"]
)
def test_soname_like(name: str) -> None:
    assert is_soname_like(name)


@pytest.mark.parametrize("name", ["cudnn.so.9", "libfoo.so.x", "libfoo.a", "lib.so", "libfoo.so.%d"])
def test_not_soname_like(name: str) -> None:
    assert not is_soname_like(name)


CORRUPT = {
    "empty": b"",
    "text": b"INPUT(libcudnn.so.9)\n",
    "short-ident": b"\x7fELF\x02\x01",
    "bad-class": b"\x7fELF\x07\x01\x01" + bytes(100),
    "bad-data": b"\x7fELF\x02\x09\x01" + bytes(100),
    "header-only-half": synth_elf()[:40],
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_inputs_raise_elf_error(name: str) -> None:
    with pytest.raises(ElfError) as info:
        ElfFile(io.BytesIO(CORRUPT[name]))
    assert isinstance(info.value, EnvsolveError) and info.value.reference == "elf-invalid"


def _patched(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


@pytest.mark.parametrize(
    "data",
    [
        _patched(synth_elf(), 32, "<Q", 1 << 60),  # e_phoff far past the end
        _patched(synth_elf(), 54, "<HH", 0xFFFF, 0xFFFF),  # phentsize * phnum: 4 GB table
        _patched(synth_elf(), 54, "<H", 8),  # phentsize smaller than a program header
        _patched(synth_elf(needed=("libx.so",)), 64 + 56 + 8, "<Q", 1 << 40),  # PT_DYNAMIC offset past end
        synth_elf(needed=("libx.so",))[:-20],  # dynamic section cut short: no DT_STRTAB
    ],
    ids=["phoff", "huge-table", "small-phentsize", "dynamic-offset", "cut-dynamic"],
)
def test_corrupt_tables_raise_elf_error(data: bytes) -> None:
    with pytest.raises(ElfError):
        ElfFile(io.BytesIO(data))


def test_open_missing_file_is_elf_error(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="cannot open"):
        ElfFile.open(tmp_path / "nope.so")
    with pytest.raises(ElfError):
        ElfFile.open(tmp_path)  # a directory


@needs_gcc
def test_every_truncation_of_a_real_object(built: dict[str, Path]) -> None:
    data = built["runpath"].read_bytes()
    for cut in list(range(0, 200)) + list(range(200, len(data), 97)):
        _parse_or_elf_error(data[:cut])


def _parse_or_elf_error(data: bytes) -> None:
    with contextlib.suppress(ElfError):
        ElfFile(io.BytesIO(data))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parse_or_elf_error(data)
    _parse_or_elf_error(b"\x7fELF\x02\x01\x01" + data)


_SEED = synth_elf(needed=("libcudnn.so.9", "libc.so.6"), soname="libx.so", runpath="$ORIGIN", rodata=b"libz.so.1\0")


@settings(max_examples=500, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), min_size=1, max_size=12))
def test_fuzz_mutated_real_headers(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for offset, value in mutations:
        data[offset] = value
    start = time.perf_counter()
    _parse_or_elf_error(bytes(data))
    assert time.perf_counter() - start < 1


def test_huge_sparse_file_is_bounded(tmp_path: Path) -> None:
    """A 2 GB file whose read-only segment claims all of it: parsing reads a few tables, the scan stops at
    its limit."""
    path = tmp_path / "libhuge.so"
    size = 2 << 30
    data = bytearray(synth_elf(needed=("libcudnn.so.9",), rodata=b"\0libcublas.so.12\0"))
    struct.pack_into("<QQ", data, 64 + 32, size, size)  # PT_LOAD p_filesz, p_memsz
    with open(path, "wb") as f:
        f.write(data)
        f.truncate(size)
    start = time.perf_counter()
    with ElfFile.open(path) as elf:
        assert elf.needed == ("libcudnn.so.9",)
    assert dlopen_names(str(path), 64 << 20) == ("libcudnn.so.9", "libcublas.so.12")
    assert time.perf_counter() - start < 10


# ---------------------------------------------------------------- the sonames a binary dlopens


@needs_gcc
def test_dlopen_names_of_a_real_consumer(built: dict[str, Path]) -> None:
    names = dlopen_names(str(built["runpath"]))
    assert "libcublas.so.12" in names  # the name its code passes to dlopen (.rodata)
    assert "libcudnn.so.9" in names  # its DT_NEEDED entry is a string too; consumer_links skips those
    assert dlopen_names(str(built["runpath"]), 64) == ()  # the ELF header alone: the scan stops at the limit


def test_dlopen_names_takes_whole_names_only(tmp_path: Path) -> None:
    rodata = (b"\0libcublas.so.12\0Could not load libcudnn_ops.so.9.1 now\0libcudnn.so.%d\0xlibcufft.so.11\0"
              b"libnccl.so.2x\0libfoo.so.1\0libcublas.so.12\0")
    path = tmp_path / "libx.so"
    path.write_bytes(synth_elf(rodata=rodata) + b"libavutil.so.59")  # a name that ends the file counts
    assert dlopen_names(str(path)) == ("libcublas.so.12", "libcudnn_ops.so.9.1", "libavutil.so.59")


def test_dlopen_names_of_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "empty.so").write_bytes(b"")
    for path in (tmp_path / "missing.so", tmp_path / "empty.so", tmp_path):
        assert dlopen_names(str(path)) == ()


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_dlopen_names(data: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".so") as f:
        f.write(b"\0libcudnn.so.9\0" + data)
        f.flush()
        names = dlopen_names(f.name)
    assert names[0] == "libcudnn.so.9"
    assert all(is_soname_like(n) and n.startswith(REPORTED_PREFIXES) for n in names)
