"""Derive matrices/torch.toml: torch releases, their CUDA variants, cuDNN/cuBLAS pins, vision/audio pairs.

Facts about the wheel that `pip install torch==X` gets from PyPI on Linux come from PyPI itself: the
project JSON (files, upload dates) and each wheel's PEP 658 METADATA (Requires-Dist nvidia-* pins).
torchvision/torchaudio pairs come from THEIR wheels' `Requires-Dist: torch==X`. Facts about the
download.pytorch.org variants (cpu, cu118, ...) cannot be read from here, so they come from the
hand-curated VARIANTS/CUDNN/ARCH tables below (data kept in this script), each naming its source.
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
# (minor, variant) -> (SASS compute capabilities on Linux x86_64, PTX arch or None, Linux arches, note)
ARCH: dict[tuple[str, str], tuple[list[str], str | None, list[str], str]] = {
    ("2.11", "cu126"): (
        ["5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"],
        None,
        ["x86_64", "aarch64"],
        "CUDA 12.6.3; aarch64 builds: 8.0, 9.0",
    ),
    ("2.11", "cu128"): (
        ["7.5", "8.0", "8.6", "9.0", "10.0", "12.0"],
        None,
        ["x86_64", "aarch64"],
        "CUDA 12.8.1; aarch64 builds: 8.0, 9.0, 10.0, 12.0",
    ),
    ("2.11", "cu130"): (
        ["7.5", "8.0", "8.6", "9.0", "10.0", "12.0"],
        "12.0",
        ["x86_64", "aarch64"],
        "CUDA 13.0.2; +PTX on Linux builds only; aarch64 builds: 8.0, 9.0, 10.0, 11.0, 12.0+PTX",
    ),
}


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
        if (minor, variant) in ARCH:
            arch, ptx, platforms, note = ARCH[(minor, variant)]
            row.update(arch=arch, ptx=ptx, platforms=platforms, note=note)
            src.append(CSM)
        if variant == "cu132":
            row["note"] = "experimental build per the 2.12 release post"
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
