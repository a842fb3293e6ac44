"""Derive matrices/torch.toml: torch releases, their CUDA variants, cuDNN/cuBLAS pins, vision/audio pairs.

Facts about the wheel that `pip install torch==X` gets from PyPI on Linux come from PyPI itself: the
project JSON (files, upload dates) and each wheel's PEP 658 METADATA (Requires-Dist nvidia-* pins).
torchvision/torchaudio pairs come from THEIR wheels' `Requires-Dist: torch==X`. Facts about the
download.pytorch.org variants (cpu, cu118, ...) cannot be read from here, so they come from the
hand-curated VARIANTS/CUDNN/ARCH tables below (data kept in this script), each naming its source.
WHEEL_ARCH keeps the CUDA arch flags read once from each release's PyPI Linux x86_64 wheel (sha256 cited).
Run: python scripts/derive_torch.py [--check] [--cache-dir DIR] [--no-cache]
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.parser
import hashlib
import json
import re
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _matrix_io import MATRICES, render_matrix, write_or_check

FIRST = Version("2.0.0")
PYPI = "https://pypi.org/pypi/{}/json"
INDEX = "https://download.pytorch.org/whl/{}"
CACHE = Path.home() / ".cache" / "envsolve-derive"
Row = dict[str, Any]

# --- hand-curated PyTorch-index variants (download.pytorch.org is not reachable from here) -------------
KR = "github.com/PyTorchKorea/pytorch.kr@{} {}"
PREV = KR.format(
    "9d7312fb5116b73ffc466e0de9f0826b0688e84a",
    "_get_started/previous-versions.md (mirror of "
    "pytorch.org/get-started/previous-versions): 'pip install ... --index-url <index>' per release",
)
PREV_UP = (
    "github.com/pytorch/pytorch.github.io@04862e376ea686ba351674864400db1d93113979 "
    "_get_started/previous-versions.md: 'pip install torch==2.0.x+cu117 ... --index-url .../whl/cu117'"
)
BLOG_212 = KR.format(
    "9d7312fb5116b73ffc466e0de9f0826b0688e84a",
    "_posts/2026-05-13-pytorch-2-12-release-blog.md "
    "'Deprecation of the CUDA 12.8 Wheel' (cu126 kept, cu130 default, cu132 experimental)",
)
RCM = KR.format(
    "305897c9215b3f761278c978725227509234995e",
    "_get_started/version-compatibility.md "
    "'Release Compatibility Matrix' (mirror of pytorch/pytorch RELEASE.md; cuDNN per minor)",
)
CSM = KR.format(
    "305897c9215b3f761278c978725227509234995e",
    "_get_started/version-compatibility.md 'PyTorch CUDA Support Matrix' for 2.11",
)
CURATED_CHECKED = "curated by hand from the named sources on 2026-11-21 (download.pytorch.org not reachable)"
_V20, _V21, _V24 = ["cu117", "cu118", "cpu"], ["cu118", "cu121", "cpu"], ["cu118", "cu121", "cu124", "cpu"]
_V29 = ["cu126", "cu128", "cu130", "cpu"]
# torch release -> (index variants, source)
VARIANTS: dict[str, tuple[list[str], str]] = {
    **{v: (_V20, f"{PREV}; {PREV_UP}") for v in ("2.0.0", "2.0.1")},
    **{v: (_V21, PREV) for v in ("2.1.0", "2.1.1", "2.1.2", "2.2.0", "2.2.1", "2.2.2", "2.3.0", "2.3.1")},
    **{v: (_V24, PREV) for v in ("2.4.0", "2.4.1", "2.5.0", "2.5.1")},
    "2.6.0": (["cu118", "cu124", "cu126", "cpu"], PREV),
    **{v: (["cu118", "cu126", "cu128", "cpu"], PREV) for v in ("2.7.0", "2.7.1")},
    "2.8.0": (["cu126", "cu128", "cu129", "cpu"], PREV),
    **{v: (_V29, PREV) for v in ("2.9.0", "2.9.1", "2.10.0", "2.11.0")},
    **{v: (["cu126", "cu130", "cu132"], BLOG_212) for v in ("2.12.0", "2.12.1")},
}
# (minor, variant) -> cuDNN, only where the Release Compatibility Matrix states it for that CUDA
CUDNN: dict[tuple[str, str], str] = {
    ("2.0", "cu117"): "8.5.0.96",
    ("2.0", "cu118"): "8.7.0.84",
    **{(m, v): c for m in ("2.1", "2.2", "2.3") for v, c in (("cu118", "8.7.0.84"), ("cu121", "8.9.2.26"))},
    **{(m, v): "9.1.0.70" for m in ("2.4", "2.5") for v in ("cu118", "cu121", "cu124")},
    ("2.6", "cu124"): "9.1.0.70",
    ("2.6", "cu126"): "9.5.1.17",
    ("2.7", "cu118"): "9.1.0.70",
    ("2.7", "cu126"): "9.5.1.17",
    ("2.7", "cu128"): "9.7.1.26",
    **{("2.8", v): "9.10.2.21" for v in ("cu126", "cu128", "cu129")},
    ("2.9", "cu126"): "9.10.2.21",
    ("2.9", "cu128"): "9.10.2.21",
    ("2.9", "cu130"): "9.13.0.50",
    ("2.10", "cu126"): "9.10.2.21",
    ("2.10", "cu128"): "9.10.2.21",
    ("2.10", "cu130"): "9.15.1.9",
    ("2.11", "cu126"): "9.10.2.21",
    ("2.11", "cu128"): "9.17.1.4",
    ("2.11", "cu130"): "9.17.1.4",
}
# --- GPU architectures: (minor or exact release, variant) -> SASS compute capabilities, PTX, platforms, note, source --
_BUILDER = "github.com/pytorch/builder@{} manywheel/build_cuda.sh (branch release/{}): TORCH_CUDA_ARCH_LIST {}, no +PTX"
_B = {
    "2.0": "9f0fad92f342b146272d0f99d3969c2c148e80ba",
    "2.1": "55d40b1b06379fddd0ba14744dc3fdd768530da6",
    "2.2": "af60d11447443059c6c6c7590241a446a33db0f9",
    "2.3": "ba10bae9fe9b93365412297d40bc9a3a3eae6155",
    "2.4": "4ce1afeb2262808c1e9707b93682ac66acf2db2a",
    "2.5": "aec5fb5de2380a9084f4bb430eec4e576066a17c",
}
COG = (
    "github.com/replicate/cog@6110c912377d4ded0f57165d305821a14a9a4418 pkg/doctor/gpu_compatibility.go "
    "(torch._C._cuda_getArchFlags() measured per wheel): {}"
)
PT = "github.com/pytorch/pytorch"
BUILD_28 = (
    f"{PT}@00c7a380b8369d08e02dd400aa76dc6c0738b589 .ci/manywheel/build_cuda.sh (a 2.8-cycle revision with only "
    "12.6/12.8/12.9 arms and the #157517 'keep sm_70' comment; read at that commit, not at tag v2.8.0): "
    "12.6 '5.0;6.0;7.0;7.5;8.0;8.6;9.0', 12.8 '7.0;7.5;8.0;8.6;9.0;10.0;12.0', "
    "12.9 '7.0;7.5;8.0;8.6;9.0;10.0;12.0+PTX'; "
    "its 12.8 arm matches the measured torch 2.8.0 PyPI (cu128) wheel"
)
RM_29 = (
    f"{PT}/pull/164471 (merged 2025-10-02) RELEASE.md 'PyTorch CUDA Support Matrix' 'For Release 2.9': "
    "12.6.3 Maxwell(5.0)..Hopper(9.0); 12.8.1 Volta(7.0)..Blackwell(10.0, 12.0); "
    "13.0.0 Turing(7.5)..Blackwell(10.0, 12.0+PTX), +PTX on linux builds only"
)
RM_210 = (
    f"{PT}/pull/175253 RELEASE.md diff: the matrix headed 'For Release 2.9 and 2.10' (same rows as for 2.9) "
    "before the 2.11 update"
)
RM_212 = (
    f"{PT}/pull/182849 '[release 2.12] Update PyTorch CUDA Support Matrix' RELEASE.md: "
    "x86 12.6.3 Maxwell(5.0)..Hopper(9.0); "
    "13.0.2 and 13.2.1 Turing(7.5)..Blackwell(10.0, 12.0+PTX), +PTX on linux builds only; aarch64 12.6.3 8.0, 9.0; "
    "13.0.2 8.0, 9.0, 10.0, 11.0, 12.0+PTX"
)
_BL = {
    "cu118": "11.8 '5.0;6.0;7.0;7.5;8.0;8.6;3.7;9.0'",
    "cu121": "12.1 '5.0;6.0;7.0;7.5;8.0;8.6;9.0'",
    "cu124": "12.4 '5.0;6.0;7.0;7.5;8.0;8.6;9.0' (cuda-aarch64: '9.0')",
}
COG_241 = COG.format("'torch 2.4.1+cu124 cubins: sm_50 ... sm_90 PTX: none'")
_A37 = ["3.7", "5.0", "6.0", "7.0", "7.5", "8.0", "8.6"]
_A50 = ["5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"]
_A70 = ["7.0", "7.5", "8.0", "8.6", "9.0", "10.0", "12.0"]
_A75 = ["7.5", "8.0", "8.6", "9.0", "10.0", "12.0"]
ArchEntry = tuple[list[str], str | None, list[str] | None, str | None, str]
ARCH: dict[tuple[str, str], ArchEntry] = {
    ("2.0", "cu117"): (
        _A37,
        None,
        None,
        None,
        _BUILDER.format(_B["2.0"], "2.0", "11.[67] '3.7;5.0;6.0;7.0;7.5;8.0;8.6'"),
    ),
    ("2.0", "cu118"): (
        [*_A37, "9.0"],
        None,
        None,
        None,
        _BUILDER.format(_B["2.0"], "2.0", "11.8 '3.7;5.0;6.0;7.0;7.5;8.0;8.6;9.0'")
        + "; "
        + COG.format("'torch 2.0.1+cu118 cubins: sm_37 ... sm_90 PTX: none'"),
    ),
    **{
        (m, v): (
            [*_A37, "9.0"] if v == "cu118" else _A50,
            None,
            None,
            "aarch64 builds: 9.0 only" if v == "cu124" else None,
            _BUILDER.format(_B[m], m, _BL[v]) + (f"; {COG_241}" if (m, v) == ("2.4", "cu124") else ""),
        )
        for m in ("2.1", "2.2", "2.3", "2.4", "2.5")
        for v in ("cu118", "cu121", *(("cu124",) if m in ("2.4", "2.5") else ()))
    },
    ("2.7.0", "cu128"): (
        _A75,
        "12.0",
        None,
        None,
        COG.format("'torch 2.7.0+cu128 cubins: sm_75 sm_80 sm_86 sm_90 sm_100 sm_120 PTX: compute_120'"),
    ),
    **{
        ("2.8", v): (lst, ptx, None, None, BUILD_28) for v, lst, ptx in (("cu126", _A50, None), ("cu129", _A70, "12.0"))
    },
    **{
        (m, v): (lst, ptx, None, note, src)
        for m, src in (("2.9", RM_29), ("2.10", f"{RM_210}; {RM_29}"))
        for v, lst, ptx, note in (
            ("cu126", _A50, None, "CUDA 12.6.3"),
            ("cu128", _A70, None, "CUDA 12.8.1"),
            ("cu130", _A75, "12.0", "CUDA 13.0.0; +PTX on Linux builds only"),
        )
    },
    ("2.11", "cu126"): (_A50, None, ["x86_64", "aarch64"], "CUDA 12.6.3; aarch64 builds: 8.0, 9.0", CSM),
    ("2.11", "cu128"): (_A75, None, ["x86_64", "aarch64"], "CUDA 12.8.1; aarch64 builds: 8.0, 9.0, 10.0, 12.0", CSM),
    ("2.11", "cu130"): (
        _A75,
        "12.0",
        ["x86_64", "aarch64"],
        "CUDA 13.0.2; +PTX on Linux builds only; aarch64 builds: 8.0, 9.0, 10.0, 11.0, 12.0+PTX",
        CSM,
    ),
    **{
        (m, v): (lst, ptx, plat, note, RM_212)
        for m in ("2.12",)
        for v, lst, ptx, plat, note in (
            ("cu126", _A50, None, ["x86_64", "aarch64"], "CUDA 12.6.3; aarch64 builds: 8.0, 9.0"),
            (
                "cu130",
                _A75,
                "12.0",
                ["x86_64", "aarch64"],
                "CUDA 13.0.2; +PTX on Linux builds only; aarch64 builds: 8.0, 9.0, 10.0, 11.0, 12.0+PTX",
            ),
            ("cu132", _A75, "12.0", None, "CUDA 13.2.1; +PTX on Linux builds only"),
        )
    },
}
# torch release -> (arch flags, sha256) of its PyPI Linux x86_64 cp311 wheel: the CUDA_ARCH_FLAGS string compiled into
# torch/lib/libtorch_python.so (what torch.cuda.get_arch_list() returns; compute_XY would mean PTX), read by HTTP Range
# from the wheel on 2026-11-21. It describes the PyPI default build only and wins over ARCH on that merged row.
_F37 = "sm_37 sm_50 sm_60 sm_70 sm_75 sm_80 sm_86"
_F50 = "sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90"
_F70 = "sm_70 sm_75 sm_80 sm_86 sm_90 sm_100 sm_120"
_F75 = "sm_75 sm_80 sm_86 sm_90 sm_100 sm_120"
WHEEL_ARCH: dict[str, tuple[str, str]] = {
    "2.0.0": (_F37, "09651bff72e439d004c991f15add0c397c66f98ab36fe60d5514b44e4da722e8"),
    "2.0.1": (_F37, "e617b1d0abaf6ced02dbb9486803abfef0d581609b09641b34fa315c9c40766d"),
    "2.1.0": (_F50, "2224622407ca52611cbc5b628106fde22ed8e679031f5a99ce286629fc696128"),
    "2.1.1": (_F50, "98fea993639b0bb432dfceb7b538f07c0f1c33386d63f635219f49254968c80f"),
    "2.1.2": (_F50, "a6ebbe517097ef289cc7952783588c72de071d4b15ce0f8b285093f0916b1162"),
    "2.2.0": (_F50, "0d1c580e379c0d48f0f0a08ea28d8e373295aa254de4f9ad0631f9ed8bc04c24"),
    "2.2.1": (_F50, "d86664ec85902967d902e78272e97d1aff1d331f7619d398d3ffab1c9b8e9157"),
    "2.2.2": (_F50, "ad4c03b786e074f46606f4151c0a1e3740268bcf29fbd2fdf6666d66341c1dcb"),
    "2.3.0": (_F50, "493d54ee2f9df100b5ce1d18c96dbb8d14908721f76351e908c9d2622773a788"),
    "2.3.1": (_F50, "b2ec81b61bb094ea4a9dee1cd3f7b76a44555375719ad29f05c0ca8ef596ad39"),
    "2.4.0": (_F50, "e743adadd8c8152bb8373543964551a7cb7cc20ba898dc8f9c0cdbe47c283de0"),
    "2.4.1": (_F50, "0b5f88afdfa05a335d80351e3cea57d38e578c8689f751d35e0ff36bce872113"),
    "2.5.0": (_F50, "499a68a756d3b30d10f7e0f6214dc3767b130b797265db3b1c02e9094e2a07be"),
    "2.5.1": (_F50, "de5b7d6740c4b636ef4db92be922f0edc425b65ed78c5076c43c42d362a45457"),
    "2.6.0": (_F50, "7979834102cd5b7a43cc64e87f2f3b14bd0e1458f06e9f88ffa386d07c7446e1"),
    "2.7.0": (_F50, "fd5cfbb4c3bbadd57ad1b27d56a28008f8d8753733411a140fcfb84d7f933a25"),
    "2.7.1": (_F50, "06eea61f859436622e78dd0cdd51dbc8f8c6d76917a9cf0555a333f9eac31ec1"),
    "2.8.0": (_F70, "c12fa219f51a933d5f80eeb3a7a5d0cbe9168c0a14bbb4055f1979431660879b"),
    "2.9.0": (_F70, "51de31219c97c51cf4bf2be94d622e3deb5dcc526c6dc00e97c17eaec0fc1d67"),
    "2.9.1": (_F70, "d033ff0ac3f5400df862a51bdde9bad83561f3739ea0046e68f5401ebfa67c1b"),
    "2.10.0": (_F70, "a2f9edd8dbc99f62bc4dfb78af7bf89499bca3d753423ac1b4e06592e467b763"),
    "2.11.0": (_F75, "7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a"),
    "2.12.0": (_F75, "415c1b8d0412f67551c8e89a2daca0fb3e56694af0281ba155eaa9da481f58b4"),
    "2.12.1": (_F75, "6e29e7e74d05bda7d955c75e99459f878ebd970ef851b4057edbd3b34a5eb4a3"),
    "2.13.0": (_F75, "60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7"),
    "2.14.0": (_F75, "8d9e232b6376c62f3090237889fb1cb6887c0ece9f73e6c1052e80fc1481f999"),
    "2.14.1": (_F75, "305a61f61f35f128579f299c5bd33d475f6a01c6307336139632e30856c4854d"),
    "2.15.0": (_F75, "48c2d861134c0b5697c7602cb5ffa68f62a2989fdcd1717e593356f67996ca1e"),
}
WHEEL_SRC = (
    "CUDA_ARCH_FLAGS '{}' in torch/lib/libtorch_python.so of PyPI's torch-{}-cp311-cp311-manylinux*_x86_64.whl "
    "(sha256 {}), read by HTTP Range on 2026-11-21"
)


def http_get(url: str, cache: Path | None, max_age_s: float | None = None, span: str = "") -> bytes:
    """GET (optionally a byte range) through an on-disk cache; max_age_s None = immutable, never expires."""
    path = cache / hashlib.sha256(f"{url}#{span}".encode()).hexdigest()[:40] if cache else None
    if path and path.exists() and (max_age_s is None or time.time() - path.stat().st_mtime < max_age_s):
        return path.read_bytes()
    headers = {"User-Agent": "envsolve-derive/1"} | ({"Range": f"bytes={span}"} if span else {})
    req = urllib.request.Request(url, headers=headers)
    for attempt in range(4):
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                data: bytes = resp.read()
            break
        except urllib.error.URLError as err:
            if attempt == 3 or (isinstance(err, urllib.error.HTTPError) and err.code == 404):
                raise
            time.sleep(2**attempt)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data


def wheel_url(project_json_url: str, url: str) -> str:
    """Absolute files.pythonhosted.org URL (mirrors answer with '../../packages/packages/...')."""
    full = urljoin(project_json_url, url)
    parts = urlsplit(full)
    if parts.path.startswith("/packages/packages/"):
        return "https://files.pythonhosted.org" + parts.path[len("/packages") :]
    return full


class PyPI:
    def __init__(self, cache: Path | None) -> None:
        self.cache = cache

    def releases(self, name: str) -> dict[Version, list[dict[str, Any]]]:
        url = PYPI.format(name)
        data = json.loads(http_get(url, self.cache, max_age_s=6 * 3600))
        out: dict[Version, list[dict[str, Any]]] = {}
        for ver, files in data["releases"].items():
            keep = [dict(f, url=wheel_url(url, f["url"])) for f in files if not f.get("yanked")]
            if keep and Version(ver) >= Version("0.15") and not Version(ver).is_prerelease:
                out[Version(ver)] = keep
        return out

    def latest_requires(self, name: str) -> tuple[Version, list[Requirement]]:
        """The newest release and the Requires-Dist PyPI's project JSON shows for it (info)."""
        data = json.loads(http_get(PYPI.format(name), self.cache, max_age_s=6 * 3600))
        info = data["info"]
        return Version(info["version"]), [Requirement(r) for r in info.get("requires_dist") or []]

    def metadata(self, url: str) -> str:
        """A wheel's METADATA: PEP 658 `<url>.metadata`, else HTTP Range reads of the zip's directory."""
        try:
            return http_get(url + ".metadata", self.cache).decode("utf-8")
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise
        tail = http_get(url, self.cache, span="-65536")
        eocd = tail.rfind(b"PK\x05\x06")
        cd_size, cd_off = struct.unpack("<II", tail[eocd + 12 : eocd + 20])
        cd = http_get(url, self.cache, span=f"{cd_off}-{cd_off + cd_size - 1}")
        pos = 0
        while cd[pos : pos + 4] == b"PK\x01\x02":
            (method,) = struct.unpack("<H", cd[pos + 10 : pos + 12])
            csize, _, nlen, xlen, clen = struct.unpack("<IIHHH", cd[pos + 20 : pos + 34])
            (local,) = struct.unpack("<I", cd[pos + 42 : pos + 46])
            name = cd[pos + 46 : pos + 46 + nlen].decode()
            if re.fullmatch(r"[^/]+\.dist-info/METADATA", name):
                blob = http_get(url, self.cache, span=f"{local}-{local + 30 + nlen + 1024 + csize}")
                start = 30 + sum(struct.unpack("<HH", blob[26:30]))
                raw = blob[start : start + csize]
                return (zlib.decompress(raw, -15) if method == 8 else raw).decode("utf-8")
            pos += 46 + nlen + xlen + clen
        raise RuntimeError(f"no METADATA in {url}")

    def requires(self, url: str) -> list[Requirement]:
        """Requires-Dist of a wheel, read without downloading the wheel."""
        text = self.metadata(url)
        msg = email.parser.Parser().parsestr(text, headersonly=True)
        return [Requirement(r) for r in msg.get_all("Requires-Dist") or []]


def linux_wheels(files: list[dict[str, Any]], machine: str) -> dict[str, dict[str, Any]]:
    """python 'X.Y' -> file, for CPython (not free-threaded) Linux wheels of one machine."""
    out: dict[str, dict[str, Any]] = {}
    for f in files:
        if not f["filename"].endswith(".whl"):
            continue
        for tag in parse_wheel_filename(f["filename"])[3]:
            m = re.fullmatch(r"cp3(\d+)", tag.interpreter)
            linux = "linux" in tag.platform and tag.platform.endswith(machine)
            if m and linux and tag.abi == tag.interpreter:
                out.setdefault(f"3.{m.group(1)}", f)
    return dict(sorted(out.items(), key=lambda kv: Version(kv[0])))


def nvidia_pins(reqs: list[Requirement], machine: str, python: str) -> dict[str, tuple[str, str]]:
    """nvidia-* requirements that apply on Linux/<machine>/<python>: kind -> (package, pinned version)."""
    env = {
        "platform_system": "Linux",
        "sys_platform": "linux",
        "platform_machine": machine,
        "python_version": python,
        "python_full_version": python + ".0",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    pins: dict[str, tuple[str, str]] = {}
    for r in reqs:
        if not r.name.startswith(("nvidia-", "cuda-toolkit")) or (r.marker and not r.marker.evaluate(env)):
            continue
        exact = [s.version for s in r.specifier if s.operator == "=="]
        m = re.fullmatch(r"nvidia-(cuda-runtime|cudnn|cublas)(-cu\d+)?", r.name)
        if m and exact:
            pins[m.group(1)] = (r.name, exact[0])
        elif r.name == "cuda-toolkit" and "cudart" in r.extras and exact:  # CUDA 13 wheels: one meta-package
            pins["cuda-runtime"] = (f"cuda-toolkit[{','.join(sorted(r.extras))}]", exact[0])
    return pins


def companions(pypi: PyPI, name: str) -> dict[Version, tuple[str, str]]:
    """torch version -> (highest <name> release pairing with it, evidence URL).

    A release pairs with torch X when its Linux x86_64 wheel pins torch==X, or names X as lower bound.
    """
    out: dict[Version, tuple[str, str]] = {}
    latest, latest_requires = pypi.latest_requires(name)
    for ver, files in sorted(pypi.releases(name).items()):
        linux = [f for f in files if re.search(r"linux[\w.]*_x86_64\.whl$", f["filename"])]
        if not linux:
            continue
        f = linux[0]
        requires = pypi.requires(f["url"])
        evidence = f["url"]
        if not requires and ver == latest:
            # torchaudio 2.11.0's Linux wheels carry no Requires-Dist; PyPI's project JSON does.
            requires, evidence = latest_requires, f"{PYPI.format(name)} info.requires_dist"
        for r in requires:
            # An exact pin, or else the lower bound: torchaudio 2.11.0 says torch>=2.11, the
            # release it was built with (its wheels hold compiled code, so later torch is a guess).
            exact = [s.version for s in r.specifier if s.operator == "=="] or [
                s.version for s in r.specifier if s.operator == ">="
            ]
            if r.name == "torch" and exact and Version(exact[0]) >= FIRST:
                out[Version(exact[0])] = (str(ver), evidence)
    return out


def pypi_row(pypi: PyPI, ver: Version, files: list[dict[str, Any]], today: str) -> Row:
    """The row of the build `pip install torch==ver` gets from PyPI on Linux x86_64."""
    x86 = linux_wheels(files, "x86_64")
    seen = {py: nvidia_pins(pypi.requires(f["url"]), "x86_64", py) for py, f in x86.items()}
    py0, f0 = next(reversed(x86.items()))
    pins = seen[py0]
    notes = [f"pins differ on python {py}" for py, p in seen.items() if p != pins]
    row: Row = {"torch": str(ver), "python": list(x86)}
    if "cuda-runtime" in pins:
        cuda = ".".join(pins["cuda-runtime"][1].split(".")[:2])
        row.update(variant="cu" + cuda.replace(".", ""), cuda=cuda, cuda_major=int(cuda.split(".")[0]))
    else:
        row["variant"] = "cpu"
    if "cudnn" in pins:
        row.update(
            cudnn_package=pins["cudnn"][0],
            cudnn=pins["cudnn"][1],
            cudnn_major=int(pins["cudnn"][1].split(".")[0]),
        )
    if "cublas" in pins:
        row.update(cublas_package=pins["cublas"][0], cublas=pins["cublas"][1])
    elif pins.get("cuda-runtime", ("",))[0].startswith("cuda-toolkit"):
        notes.append(f"CUDA libraries come from {'=='.join(pins['cuda-runtime'])}; no separate cuBLAS pin")
    arm = linux_wheels(files, "aarch64")
    arm_kind = None
    if arm:
        pya, fa = next(reversed(arm.items()))
        apins = nvidia_pins(pypi.requires(fa["url"]), "aarch64", pya)
        arm_kind = "cuda" if "cuda-runtime" in apins else "cpu"
        same = apins == pins
        row["platforms"] = ["x86_64", "aarch64"] if same else ["x86_64"]
        if arm_kind == "cuda" and not same:
            notes.append(
                "PyPI's aarch64 wheel is CUDA-enabled but pins differ: "
                + ", ".join(f"{n}=={v}" for n, v in apins.values())
            )
        elif arm_kind == "cpu" and row["variant"] != "cpu":
            notes.append("PyPI's Linux aarch64 wheel is CPU-only (no nvidia-* Requires-Dist)")
    else:
        row["platforms"] = ["x86_64"]
    row.update(index="pypi", pypi_default=True, pypi_aarch64=arm_kind)
    if notes:
        row["note"] = "; ".join(notes)
    row["source"] = (
        f"{PYPI.format('torch')} (files, upload dates) + PEP 658 METADATA Requires-Dist of "
        f"{f0['url']} and the release's other Linux wheels"
    )
    row["checked"] = (
        f"scripts/derive_torch.py read PyPI's JSON and the METADATA of every Linux x86_64 wheel and "
        f"one aarch64 wheel of torch {ver} on {today}"
    )
    return row


def curated_rows(ver: Version) -> list[Row]:
    minor = f"{ver.major}.{ver.minor}"
    variants, vsource = VARIANTS.get(str(ver), ([], ""))
    rows: list[Row] = []
    for variant in variants:
        row: Row = {"torch": str(ver), "variant": variant}
        src = [vsource]
        if variant != "cpu":
            cuda = f"{variant[2:-1]}.{variant[-1]}"  # cu124 -> 12.4, cu130 -> 13.0
            row.update(cuda=cuda, cuda_major=int(cuda.split(".")[0]))
        if (minor, variant) in CUDNN:
            cudnn = CUDNN[(minor, variant)]
            row.update(cudnn=cudnn, cudnn_major=int(cudnn.split(".")[0]))
            src.append(RCM)
        entry = ARCH.get((str(ver), variant)) or ARCH.get((minor, variant))
        if entry:
            arch, ptx, platforms, note, asrc = entry
            row.update(arch=arch, ptx=ptx)
            row.update({k: v for k, v in (("platforms", platforms), ("note", note)) if v})
            src.append(asrc)
        if variant == "cu132":
            row["note"] = "; ".join(filter(None, [row.get("note"), "experimental build per the 2.12 release post"]))
        row.update(source="; ".join(src), checked=CURATED_CHECKED)
        rows.append(row)
    return rows


def merge(pypi: Row, curated: Row) -> Row:
    """The PyPI default is also a download.pytorch.org variant: PyPI metadata wins, conflicts are noted."""
    out = dict(curated)
    notes = [n for n in (curated.get("note"), pypi.get("note")) if n]
    for field in ("cuda", "cudnn"):
        if field in curated and field in pypi and curated[field] != pypi[field]:
            notes.append(f"curated {field} {curated[field]} disagrees with the PyPI pin {pypi[field]}")
    for field in ("arch", "ptx"):
        if field in curated and field in pypi and curated[field] != pypi[field]:
            notes.append(f"curated {field} {curated[field]} is not what the PyPI wheel ships ({pypi[field]})")
    out.update({k: v for k, v in pypi.items() if k not in ("note", "source", "checked")})
    out["note"] = "; ".join([*notes, f"also listed on {INDEX.format(pypi['variant'])} (+{pypi['variant']})"])
    out["source"] = f"{pypi['source']}; {curated['source']}"
    out["checked"] = f"{pypi['checked']}; {curated['checked']}"
    return out


FIELDS = [
    "torch",
    "variant",
    "cuda",
    "released",
    "torchvision",
    "torchaudio",
    "index",
    "pypi_default",
    "local",
    "python",
    "platforms",
    "pypi_aarch64",
    "cudnn",
    "cudnn_package",
    "cudnn_major",
    "cublas",
    "cublas_package",
    "cuda_major",
    "arch",
    "ptx",
    "note",
    "source",
    "checked",
]


def derive(pypi: PyPI, today: str) -> list[Row]:
    vision, audio = companions(pypi, "torchvision"), companions(pypi, "torchaudio")
    rows: list[Row] = []
    for ver, files in sorted(pypi.releases("torch").items()):
        if ver < FIRST or not linux_wheels(files, "x86_64"):
            continue
        base = pypi_row(pypi, ver, files, today)
        if str(ver) in WHEEL_ARCH:
            flags, sha = WHEEL_ARCH[str(ver)]
            base["arch"] = [f"{sm[3:-1]}.{sm[-1]}" for sm in flags.split() if sm.startswith("sm_")]
            base["ptx"] = next((f"{c[8:-1]}.{c[-1]}" for c in flags.split() if c.startswith("compute_")), None)
            base["source"] += "; " + WHEEL_SRC.format(flags, ver, sha)
        by_variant = {r["variant"]: r for r in curated_rows(ver)}
        pv = base["variant"]
        by_variant[pv] = merge(base, by_variant[pv]) if pv in by_variant else base
        released = min(f["upload_time_iso_8601"] for f in files)[:10]
        for variant, row in sorted(by_variant.items()):
            row.update(released=released)
            for field, pairs in (("torchvision", vision), ("torchaudio", audio)):
                if ver in pairs:
                    row[field] = pairs[ver][0]
                    row["source"] += f"; {field}: Requires-Dist torch (==/>=) {ver} in {pairs[ver][1]}"
            if row.get("index") != "pypi":
                row.update(index=INDEX.format(variant), pypi_default=False, local="+" + variant)
            rows.append({f: row.get(f) for f in FIELDS})
    return rows


HEADER = """generated by envsolve scripts/derive_torch.py, regenerate with: python scripts/derive_torch.py
derived on {today} from PyPI (torch/torchvision/torchaudio JSON + PEP 658 wheel METADATA) and the curated
download.pytorch.org variant table inside the script (sources named per row).
One row per (torch release, variant). index = "pypi" marks the build `pip install torch==X` gets on
Linux x86_64; other rows live on download.pytorch.org with a local label. pypi_aarch64 = what PyPI's
Linux aarch64 wheel is ("cuda"/"cpu"). arch = compute capabilities with SASS kernels (Linux x86_64);
ptx = arch shipped as PTX. python = CPython versions with Linux x86_64 wheels on PyPI (free-threaded
't' builds left out). torchvision/torchaudio pair with the torch release their wheels pin (torch==X) or, failing
that, name as lower bound (torchaudio 2.11.0: torch>=2.11); absent where none does."""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 with a diff if matrices/torch.toml drifted")
    ap.add_argument("--cache-dir", type=Path, default=CACHE, help=f"HTTP cache (default {CACHE})")
    ap.add_argument("--no-cache", action="store_true", help="ignore and do not write the HTTP cache")
    args = ap.parse_args()
    today = dt.date.today().isoformat()
    committed = MATRICES / "torch.toml"
    if args.check and committed.exists():  # keep the committed stamp so only facts can drift
        m = re.search(r"^# derived on (\d{4}-\d\d-\d\d)", committed.read_text(encoding="utf-8"), re.M)
        today = m.group(1) if m else today
    rows = derive(PyPI(None if args.no_cache else args.cache_dir), today)
    text = render_matrix(
        "torch",
        "torch: PyPI default and download.pytorch.org variants per release (CUDA, "
        "cuDNN, cuBLAS, arches, torchvision/torchaudio)",
        ["torch", "variant"],
        "torch",
        rows,
        HEADER.format(today=today),
    )
    return write_or_check("torch", text, args.check)


if __name__ == "__main__":
    sys.exit(main())
