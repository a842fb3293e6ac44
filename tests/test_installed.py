"""Installed distributions from metadata, torch's build from its own files; never imported."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from envsolve.resolver.probe.installed import (
    build_versions,
    native_consumers,
    parse_torch_pins,
    parse_torch_version_py,
    read_installed,
)

DATA = Path(__file__).parent / "data" / "probe"


def test_torch_version_py() -> None:
    facts = parse_torch_version_py((DATA / "torch-version-cu121.py.txt").read_text())
    assert facts == {"__version__": "2.5.1+cu121", "cuda": "12.1", "hip": None,
                     "git_version": "a8d6afb511a69687bbb2b7e88a3cf67917e1697e"}
    rocm = parse_torch_version_py((DATA / "torch-version-rocm.py.txt").read_text())
    assert rocm["cuda"] is None and rocm["hip"] == "6.1.40091-a8dbc0c19"


def test_torch_pins() -> None:
    pins = parse_torch_pins([
        'nvidia-cudnn-cu12==9.1.0.70; platform_system == "Linux" and platform_machine == "x86_64"',
        "nvidia_cublas_cu12 ==12.4.5.8 ; platform_system == 'Linux'",
        "filelock", "triton==3.1.0", "not a requirement !!",
    ])
    assert pins == (("nvidia-cudnn-cu12", "9.1.0.70"), ("nvidia-cublas-cu12", "12.4.5.8"))


@given(st.text(max_size=300))
def test_fuzz(text: str) -> None:
    facts = parse_torch_version_py(text)
    assert set(facts) <= {"__version__", "cuda", "hip", "git_version", "rocm", "xpu"}
    parse_torch_pins(text.splitlines())


def _dist(site: Path, name: str, version: str, files: dict[str, str]) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in files))


def test_read_installed_without_importing(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _dist(site, "torch", "2.11.0", {"torch/version.py": "__version__ = '2.11.0+cu130'\ncuda = '13.0'\n",
                                    "torch/__init__.py": "raise SystemExit('imported!')\n",
                                    "torch/lib/libtorch_cuda.so": "", "torch/lib/libtorch_global_deps.so": ""})
    _dist(site, "ctranslate2", "4.5.0", {"ctranslate2/__init__.py": "raise SystemExit('imported!')\n",
                                         "ctranslate2/_ext.cpython-311-x86_64-linux-gnu.so": "",
                                         "ctranslate2.libs/libctranslate2-0123abcd.so.4.5.0": ""})
    _dist(site, "torchcodec", "0.7.0", {"torchcodec/libtorchcodec_core6.so": "",
                                        "torchcodec/libtorchcodec_core7.so": ""})
    _dist(site, "Pyannote.Audio", "3.3.2", {})
    _dist(site, "nvidia-cudnn-cu12", "9.1.0.70", {})
    inst = read_installed([str(site)])
    assert inst.packages == {"torch": "2.11.0", "ctranslate2": "4.5.0", "torchcodec": "0.7.0",
                             "pyannote-audio": "3.3.2", "nvidia-cudnn-cu12": "9.1.0.70"}
    assert build_versions(inst) == {"torch": "2.11.0+cu130"}
    consumers = [(c.name, Path(c.path).name) for c in native_consumers(inst, "/usr/bin/python3")]
    assert consumers == [("ctranslate2", "libctranslate2-0123abcd.so.4.5.0"),
                         ("torch", "libtorch_global_deps.so"), ("torch", "libtorch_cuda.so"),
                         ("torchcodec", "libtorchcodec_core7.so"), ("torchcodec", "libtorchcodec_core6.so")]
    ct2 = native_consumers(inst, "/usr/bin/python3")[0]
    assert ct2.loaded_by[0].endswith("_ext.cpython-311-x86_64-linux-gnu.so")


def test_label_only_for_the_same_release(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _dist(site, "torch", "2.5.1", {"torch/version.py": "__version__ = '2.4.0+cu121'\n"})
    assert build_versions(read_installed([str(site)])) == {}
