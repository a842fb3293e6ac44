"""torch.toml: one row per (torch release, variant).

The row of the build `pip install torch==X` gets from PyPI on Linux x86_64 is derived: the index's files
(python tags, upload dates, yanked), each Linux wheel's METADATA (Requires-Dist nvidia-* pins), the ELF of its
torch/lib libraries (CUDA sonames linked, the CUDA_ARCH_FLAGS string compiled into libtorch_python.so), and the
torchvision/torchaudio builds for it (family.py: Requires-Dist and the binaries). Rows for download.pytorch.org
variants are curated by hand (`curated = true`; that index is not reachable from here): refresh keeps them as
they are and fills in only what the same release's PyPI files say for every build (released, yanked, python)
and the torchvision/torchaudio pairing, saying so in the row's evidence."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

from envsolve.derive._binary import cuda_sonames
from envsolve.derive._common import artifact_fields, index_fields
from envsolve.derive._context import DeriveContext
from envsolve.derive._index import Dist
from envsolve.derive._toml import Derived, ordered
from envsolve.derive.family import FIRST_TORCH, Consumer, companions, header, torch_closure, torch_wheels

__all__ = ["derive_torch"]

Row = dict[str, Any]
FIELDS = ("torch", "variant", "cuda", "released", "yanked", "yanked_reason", "torchvision", "torchaudio", "index",
          "pypi_default", "local", "python", "platforms", "pypi_aarch64", "cudnn", "cudnn_package", "cudnn_major",
          "cublas", "cublas_package", "cuda_major", "cuda_sonames", "arch", "ptx", "artifact", "sha256", "evidence",
          "note", "index_note", "index_source", "curated", "source", "checked")
# Curated by hand on a derived row: what the PyTorch index's documentation says about the same build.
CURATED_FIELDS = ("index_note", "index_source")
# Facts refresh fills in on a curated row from the same release's PyPI files (and says so in its evidence); the
# torchvision/torchaudio pairing is filled in as on a derived row.
PROXY_FIELDS = ("released", "yanked", "yanked_reason", "python")


def linux_wheels(files: list[Dist], machine: str) -> dict[str, Dist]:
    """python 'X.Y' -> wheel, for CPython (not free-threaded) Linux wheels of one machine."""
    out: dict[str, Dist] = {}
    for f in sorted(files, key=lambda f: f.filename):
        for tag in f.tags:
            m = re.fullmatch(r"cp3(\d+)", tag.interpreter)
            if m and f.linux(machine) and tag.abi == tag.interpreter:
                out.setdefault(f"3.{m.group(1)}", f)
    return dict(sorted(out.items(), key=lambda kv: Version(kv[0])))


def _requires(ctx: DeriveContext, dist: Dist) -> list[Requirement]:
    return [Requirement(r) for r in ctx.metadata(dist).get_all("Requires-Dist") or []]


def nvidia_pins(reqs: list[Requirement], machine: str, python: str) -> dict[str, tuple[str, str, str]]:
    """nvidia-* requirements that apply on Linux/<machine>/<python>: kind -> (package, pinned version, line)."""
    env = {"platform_system": "Linux", "sys_platform": "linux", "platform_machine": machine, "python_version": python,
           "python_full_version": python + ".0", "os_name": "posix", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "extra": ""}
    pins: dict[str, tuple[str, str, str]] = {}
    for r in reqs:
        if not r.name.startswith(("nvidia-", "cuda-toolkit")) or (r.marker and not r.marker.evaluate(env)):
            continue
        exact = [s.version for s in r.specifier if s.operator == "=="]
        m = re.fullmatch(r"nvidia-(cuda-runtime|cudnn|cublas)(-cu\d+)?", r.name)
        line = f"Requires-Dist: {r}"
        if m and exact:
            pins[m.group(1)] = (r.name, exact[0], line)
        elif r.name == "cuda-toolkit" and "cudart" in r.extras and exact:  # CUDA 13 wheels: one meta-package
            pins["cuda-runtime"] = (f"cuda-toolkit[{','.join(sorted(r.extras))}]", exact[0], line)
    return pins


def toolkit_pin(ctx: DeriveContext, version: str, extras: set[str], wanted: str) -> tuple[str, str, str] | None:
    """What cuda-toolkit==version with these extras pins `wanted` to on Linux x86_64 (its METADATA), as
    (package, version, evidence line); None when the release or the pin is not there."""
    files = next((f for v, f in ctx.releases("cuda-toolkit").items() if v == Version(version)), None)
    wheel = next((f for f in files or () if f.is_wheel), None)
    if wheel is None:
        return None
    for text in ctx.metadata(wheel).get_all("Requires-Dist") or []:
        r = Requirement(text)
        env = {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux"}
        if r.name != wanted or r.marker is None or not any(r.marker.evaluate({**env, "extra": e}) for e in extras):
            continue
        exact = [s.version.removesuffix(".*") for s in r.specifier if s.operator == "=="]
        if exact:
            return wanted, exact[0], f"{wheel.filename}: Requires-Dist: {text}"
    return None


def pypi_row(ctx: DeriveContext, version: Version, files: list[Dist]) -> Row:
    """The row of the build `pip install torch==version` gets from PyPI on Linux x86_64."""
    x86 = linux_wheels(files, "x86_64")
    seen = {py: nvidia_pins(_requires(ctx, f), "x86_64", py) for py, f in x86.items()}
    py0, f0 = next(reversed(x86.items()))
    pins = seen[py0]
    notes = [f"pins differ on python {py}" for py, p in seen.items() if p != pins]
    facts = index_fields(files)
    notes += [facts.pop("_note")] if "_note" in facts else []
    row: Row = {"torch": str(version), **facts, "python": list(x86)}
    evidence = [f"{f0.filename}: {line}" for _, _, line in pins.values()]
    if "cuda-runtime" in pins:
        cuda = ".".join(pins["cuda-runtime"][1].split(".")[:2])
        row.update(variant="cu" + cuda.replace(".", ""), cuda=cuda, cuda_major=int(cuda.split(".")[0]))
    else:
        row["variant"] = "cpu"
    if "cudnn" in pins:
        cudnn = pins["cudnn"][1]
        row.update(cudnn_package=pins["cudnn"][0], cudnn=cudnn, cudnn_major=int(cudnn.split(".")[0]))
    declared = dict(pins)  # what the wheel itself requires (the aarch64 comparison below reads these)
    if "cublas" not in pins and pins.get("cuda-runtime", ("",))[0].startswith("cuda-toolkit"):
        # CUDA 13 wheels pin one cuda-toolkit[...] meta-package; its extras pin the unsuffixed nvidia-* wheels.
        extras = set(pins["cuda-runtime"][0].removeprefix("cuda-toolkit[").rstrip("]").split(","))
        found = toolkit_pin(ctx, pins["cuda-runtime"][1], extras, "nvidia-cublas")
        if found is not None:
            pins["cublas"] = found
            evidence.append(found[2])
        notes.append(f"CUDA libraries come from {pins['cuda-runtime'][0]}=={pins['cuda-runtime'][1]}"
                     + (f"; cuBLAS is its {found[0]}=={found[1]}" if found else "; it pins no cuBLAS"))
    if "cublas" in pins:
        row.update(cublas_package=pins["cublas"][0], cublas=pins["cublas"][1])
    arm = linux_wheels(files, "aarch64")
    arm_kind = None
    if arm:
        pya, fa = next(reversed(arm.items()))
        apins = nvidia_pins(_requires(ctx, fa), "aarch64", pya)
        arm_kind = "cuda" if "cuda-runtime" in apins else "cpu"
        same = {k: v[:2] for k, v in apins.items()} == {k: v[:2] for k, v in declared.items()}
        row["platforms"] = ["x86_64", "aarch64"] if same else ["x86_64"]
        if arm_kind == "cuda" and not same:
            notes.append("PyPI's aarch64 wheel is CUDA-enabled but pins differ: "
                         + ", ".join(f"{n}=={v}" for n, v, _ in apins.values()))
        elif arm_kind == "cpu" and row["variant"] != "cpu":
            notes.append("PyPI's Linux aarch64 wheel is CPU-only (no nvidia-* Requires-Dist)")
    else:
        row["platforms"] = ["x86_64"]
    row.update(index="pypi", pypi_default=True, pypi_aarch64=arm_kind)
    sources = [f"{ctx.index.project_url('torch')} (files, upload times, yanked) + METADATA Requires-Dist of "
               f"{f0.url} and the release's other Linux wheels"]
    binary = torch_wheels(ctx).get(str(version))
    if binary is not None:
        libs = torch_closure(ctx, str(version), ["libtorch.so", "libtorch_python.so"])
        row["cuda_sonames"] = cuda_sonames(libs) or ([] if libs else None)
        linked = [f"{lib}: {', '.join(n for n in e['needed'] if n in row['cuda_sonames'])}"
                  for lib, e in sorted(libs.items()) if any(n in row["cuda_sonames"] for n in e["needed"])]
        if linked:
            evidence.append(f"{binary.filename} DT_NEEDED: " + "; ".join(linked))
        flags = (libs.get("libtorch_python.so") or {}).get("arch_flags")
        if flags:
            row["arch"] = [f"{sm[3:-1]}.{sm[-1]}" for sm in flags.split() if sm.startswith("sm_")]
            row["ptx"] = next((f"{c[8:-1]}.{c[-1]}" for c in flags.split() if c.startswith("compute_")), None)
            evidence.append(f"{binary.filename} torch/lib/libtorch_python.so: CUDA_ARCH_FLAGS '{flags}'")
        row.update(artifact_fields(binary))
        sources.append(f"{binary.url}: ELF DT_NEEDED of torch/lib (from libtorch.so and libtorch_python.so) and the "
                       "arch flags string in libtorch_python.so, read by HTTP range requests")
    row["note"] = "; ".join(notes) or None
    row["evidence"] = evidence
    row["source"] = "; ".join(sources)
    row["checked"] = (f"envsolve matrices refresh read the index, the METADATA of every Linux x86_64 wheel and one "
                      f"aarch64 wheel, and the libraries of {binary.filename if binary else 'no wheel'} on {ctx.today}")
    return row


def _pair(row: Row, version: str, pairs: Mapping[str, Mapping[str, Consumer]]) -> None:
    for field, found in pairs.items():
        c = found.get(version)
        if c is None or c.wheel is None:
            row[field] = None
            continue
        row[field] = str(c.version)
        why = c.requires_line or "no Requires-Dist on torch"
        abi = f", torch_abi {c.abi.spec}" if c.abi and c.abi.spec else ""
        row.setdefault("evidence", []).append(f"{field} {c.version} ({c.wheel.filename}): {why}{abi}")


def derive_torch(ctx: DeriveContext) -> Derived:
    committed = ctx.committed("torch")
    curated: dict[str, list[Row]] = {}
    kept: dict[tuple[str, str], Row] = {}
    for old in committed.rows if committed else ():
        if old.get("curated"):
            curated.setdefault(str(old["torch"]), []).append(dict(old))
        else:
            kept[(str(old["torch"]), str(old["variant"]))] = dict(old)
    pairs = {"torchvision": companions(ctx, "torchvision"), "torchaudio": companions(ctx, "torchaudio")}
    rows: list[Row] = []
    notes: list[str] = []
    for version, files in ctx.releases("torch").items():
        if version < FIRST_TORCH or not linux_wheels(files, "x86_64"):
            continue
        ctx.progress.say(f"torch {version}: METADATA and libraries")
        base = pypi_row(ctx, version, files)
        old = kept.get((str(version), str(base["variant"])), {})
        for name in CURATED_FIELDS:
            base[name] = old.get(name)
        _pair(base, str(version), pairs)
        out = [base]
        for row in curated.pop(str(version), []):
            proxy = {k: base.get(k) for k in PROXY_FIELDS}
            row.update(proxy)
            row["evidence"] = [f"released, yanked, python: PyPI's torch {version} files (a fair proxy for this "
                               f"{row['variant']} build of the same release; {row['index']} is not reachable here)"]
            _pair(row, str(version), pairs)
            out.append(row)
        rows += [ordered({f: r.get(f) for f in FIELDS if r.get(f) is not None}
                         | {k: v for k, v in r.items() if k not in FIELDS}, FIELDS) for r in out]
    for version, left in curated.items():
        notes.append(f"curated rows for torch {version} kept, but the index has no such release")
        rows += left
    rows.sort(key=lambda r: (Version(str(r["torch"])), str(r["variant"])))
    what = """torch rows: index = "pypi" marks the build `pip install torch==X` gets on Linux x86_64 (derived from the
index: files, METADATA Requires-Dist, the wheel's ELF); other rows live on download.pytorch.org with a local
label and are curated by hand (curated = true: refresh keeps them as they are, filling in only released, yanked
and python from the same release's PyPI files, a fair proxy, and the torchvision/torchaudio pairing).
index_note/index_source on a derived row: what the PyTorch index's documentation says of the same build (curated).
pypi_aarch64 = what PyPI's Linux aarch64 wheel is ("cuda"/"cpu"). arch = compute capabilities with SASS kernels
(CUDA_ARCH_FLAGS in libtorch_python.so); ptx = arch shipped as PTX. python = CPython versions with Linux x86_64
wheels (free-threaded builds left out). cuda_sonames = CUDA libraries torch/lib links (DT_NEEDED from libtorch.so
and libtorch_python.so). torchvision/torchaudio = the newest non-yanked release for this torch whose binaries load
with it (torch_abi): one built for it (its exact pin, else the newer of its Requires-Dist lower bound and its torch_abi
floor), or one declaring an open range (torch>=X) from a floor at or below this release."""
    return Derived("torch", "torch: PyPI default and download.pytorch.org variants per release (CUDA, cuDNN, cuBLAS, "
                   "arches, torchvision/torchaudio)", ["torch", "variant"], "torch", header(what, "torch"), rows,
                   curated_fields=CURATED_FIELDS, notes=notes)
