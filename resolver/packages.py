"""Package versions as candidates: one builder per package, each reading its matrix row.

A package whose version is not in its matrix still becomes a candidate (it provides itself), and
the gap is reported as unknown rather than guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from envsolve.resolver import matrices
from envsolve.resolver.check import satisfies
from envsolve.resolver.host import Host
from envsolve.resolver.loadorder import TORCH_LOADED
from envsolve.resolver.model import Candidate, Provide, Require
from envsolve.resolver.pairing import torch_abi_rule
from envsolve.resolver.rulebook import (
    WATCHED_TORCHAUDIO_API,
    Context,
    Runtime,
    arch_rule,
    candidate,
    ct2_on_gpu,
    driver_rule,
    family_rule,
    library_rule,
    pip_library,
    python_rule,
    row_for,
    row_pythons,
    row_source,
    spec_rule,
    split_local,
    torch_row,
    torch_rows,
)

__all__ = ["NUMPY_ABI", "Builder", "compute_type_rule", "ctranslate2_candidate", "faster_whisper_candidate",
           "huggingface_hub_candidate", "installed_torch", "matrix_candidate", "nvidia_library_candidate",
           "onnxruntime_gpu_candidate", "pyannote_candidate", "runs_on_gpu", "torch_candidate", "torchaudio_candidate",
           "torchcodec_candidate", "torchvision_candidate", "whisperx_candidate"]


Builder = Callable[[str, Context], Candidate]


def torch_candidate(row: Mapping[str, Any], context: Context) -> Candidate:
    """A torch build (one row of matrices/torch.toml); with `context.pip_libs` it brings its nvidia-* wheels."""
    variant = str(row["variant"])
    name = "torch"
    src = row_source(row)
    provides = [Provide("pkg:torch", str(row["torch"]), {"variant": variant}), Provide("torch-variant", variant)]
    requires: list[Require] = python_rule("torch", row_pythons(row), src)
    requires += _platform_rule("torch", variant, row.get("platforms"), src)
    requires += numpy_abi_rule("torch", str(row["torch"]))
    if variant == "cpu":
        if context.runtime.gpu:
            requires.append(Require("cuda-driver", "no-cuda-build", "this torch build has no CUDA (variant cpu)",
                                    src, forbid=True, fix="Install a CUDA build of torch "
                                    "(`envsolve plan` picks the variant the driver and GPU allow)."))
        return candidate(name, f"{row['torch']}+cpu", provides, requires, src)
    if context.pip_libs:
        # A CUDA torch wheel always depends on its CUDA major's cuBLAS and (2.x) cuDNN wheels; the
        # PyTorch-index rows just do not record the pinned versions, so the version may be unknown.
        cuda_major = int(row["cuda_major"])
        for lib, major in (("cublas", cuda_major), ("cudnn", int(row.get("cudnn_major") or 0))):
            if not major:
                continue
            provides.append(pip_library(lib, str(row[lib]) if row.get(lib) else None, major, cuda_major,
                                        str(row.get(f"{lib}_package") or f"nvidia-{lib}-cu{cuda_major}")))
    # libtorch_cuda.so links cuBLAS and cuDNN (DT_NEEDED), so `import torch` loads them: a later dlopen of
    # the same soname in that process (ctranslate2's) gets torch's copy (loadorder.LoaderView).
    cuda_major = int(row["cuda_major"])
    provides.append(Provide(f"{TORCH_LOADED}cublas", str(cuda_major), {"cuda_major": str(cuda_major)}))
    if row.get("cudnn_major"):
        provides.append(Provide(f"{TORCH_LOADED}cudnn", str(row["cudnn_major"]), {"cuda_major": str(cuda_major)}))
    if context.runtime.gpu:
        requires += driver_rule(f"torch {row['torch']}+{variant}", int(row["cuda_major"]), row.get("cuda"), src)
        requires += arch_rule(f"torch {row['torch']}+{variant}", row.get("arch"), row.get("ptx"), context.host, src,
                              cuda_major=int(row["cuda_major"]))
        if row.get("cudnn_major"):
            requires.append(library_rule("torch", "cudnn", int(row["cudnn_major"]), "torch", src,
                                         min_version=_major_minor(row.get("cudnn"))))
    return candidate(name, f"{row['torch']}+{variant}", provides, requires, src)


NUMPY_ABI = "numpy-abi"


def numpy_abi_rule(dist: str, version: str) -> list[Require]:
    """A release whose extensions were compiled against NumPy 1.x headers needs numpy<2 (matrices/numpy_abi.toml):
    with NumPy 2 they fail to import its C API, and torch.from_numpy raises "Numpy is not available"."""
    for row in matrices.load("numpy_abi"):
        if row["package"] != dist or not row.get("numpy") or not satisfies(version, str(row["versions"])):
            continue
        return [Require("pkg:numpy", NUMPY_ABI, f"{dist} {version}'s native extensions were compiled against NumPy "
                        f"{row['c_api']}.x headers and cannot use NumPy outside {row['numpy']}", row_source(row),
                        spec=str(row["numpy"]), fix=f'pip install "numpy{row["numpy"]}" (the plan pins it with '
                        f"{dist} {version}), or move to a {dist} built against NumPy 2 (`envsolve plan` says which).")]
    return []


def _major_minor(version: Any) -> str | None:
    return ".".join(str(version).split(".")[:2]) if version else None


def _platform_rule(name: str, variant: str, platforms: Any, source: str) -> list[Require]:
    return wheel_rules(f"{name} ({variant})", {"platforms": platforms} if platforms else {}, source, python=False)


def wheel_rules(name: str, row: Mapping[str, Any], source: str, python: bool = True) -> list[Require]:
    """A binary package's wheels exist for some Pythons and machine architectures only (the row's `python`
    and `platforms`, from the index's file names). A row that records no platforms is not "any machine": only
    x86_64 is taken as evidenced (every derivation and curated source reads x86_64 wheels), and it says so."""
    rules = python_rule(name, row_pythons(row), source) if python else []
    platforms = row.get("platforms")
    if platforms:
        why = f"{name} has Linux wheels for {', '.join(platforms)} only"
    else:
        platforms, why = ["x86_64"], f"{name}: its row records no platforms, so only x86_64 wheels are evidenced"
    rules.append(Require("arch", "no-build-for-platform", why, source, allowed=tuple(platforms),
                         fix="Pick another build or release (`envsolve plan` picks one with a wheel for this "
                         "machine), or another machine architecture."))
    return rules


def installed_torch(version: str, context: Context) -> Candidate:
    row = torch_row(version, None)
    if row is None:
        return candidate("torch", version, [Provide("pkg:torch", split_local(version)[0]),
                                            Provide("torch-variant", split_local(version)[1] or "unknown")], [],
                         "not in matrices/torch.toml")
    return torch_candidate(row, context)


def torchaudio_candidate(version: str, context: Context) -> Candidate:
    row = row_for("torchaudio", version)
    base, _ = split_local(version)
    provides = [Provide("pkg:torchaudio", base)]
    if row is None:
        # Unknown release: assume nothing removed, and say so through the missing row.
        provides += [Provide(f"api:torchaudio.{api}", base, {"unknown": "1"}) for api in WATCHED_TORCHAUDIO_API]
        return candidate("torchaudio", version, provides, [], "not in matrices/torchaudio.toml")
    provides += [Provide(f"api:torchaudio.{api}", base) for api in row.get("exports", [])]
    # torchaudio's wheels pin torch==X; 2.11.0's declare nothing, and the torch matrix pairs it by release; 2.11.1
    # declares a range (torch>=2.11), which is what it accepts, and its binaries narrow it (torch_abi).
    pinned = row.get("torch") or next((r["torch"] for r in torch_rows() if r.get("torchaudio") == base), None)
    declared = row.get("torch_requires") if not row.get("torch") else None
    spec = declared or (f"=={pinned}" if pinned else None)
    local = split_local(version)[1]
    requires = family_rule("torchaudio", str(spec), local, row_source(row)) if spec else []
    requires += torch_abi_rule(f"torchaudio {base}", row)
    requires += wheel_rules(f"torchaudio {base}", row, row_source(row))
    return candidate("torchaudio", version, provides, requires, row_source(row))


def torchvision_candidate(version: str, context: Context) -> Candidate:
    base, local = split_local(version)
    rows = [r for r in torch_rows() if r.get("torchvision") == base]
    own = row_for("torchvision", version)
    provides = [Provide("pkg:torchvision", base)]
    abi = (torch_abi_rule(f"torchvision {base}", own) + wheel_rules(f"torchvision {base}", own, row_source(own))
           if own else [])
    if rows and not (own and own.get("torch_requires") and not own.get("torch")):
        requires = family_rule("torchvision", f"=={rows[0]['torch']}", local, row_source(rows[0]))
        return candidate("torchvision", version, provides, requires + abi, row_source(rows[0]))
    if own and own.get("torch_requires"):
        # A release declaring an open range (torchvision 0.29.x: torch>=2.14.0) serves every torch it admits
        # whose binaries it loads with (torch_abi), not only the first torch row that pairs it.
        # A release no torch row pairs (torchvision 0.29.1: torch>=2.14.0): its own Requires-Dist and binaries.
        requires = family_rule("torchvision", str(own["torch_requires"]), local, row_source(own))
        return candidate("torchvision", version, provides, requires + abi, row_source(own))
    return candidate("torchvision", version, provides, abi, row_source(own) if own else "not in matrices/torch.toml")


def torchcodec_candidate(version: str, context: Context) -> Candidate:
    row, provides, unknown = _lookup("torchcodec", "torchcodec", version)
    if row is None:
        return unknown
    src = row_source(row)
    requires = family_rule("torchcodec", torch_spec(str(row["torch"])), None, src) if row.get("torch") else []
    requires += torch_abi_rule(f"torchcodec {split_local(version)[0]}", row)
    requires += wheel_rules(f"torchcodec {split_local(version)[0]}", row, src)
    if row.get("cuda_major"):
        # PyPI's torchcodec 0.11.0 and >= 0.14.0 are +cu130 builds: they need a CUDA 13 torch.
        variants = tuple(sorted({str(r["variant"]) for r in torch_rows()
                                 if str(r["variant"]).startswith(f"cu{row['cuda_major']}")}))
        requires.append(Require("torch-variant", "torch-family-mismatch",
                                f"torchcodec {version} from PyPI is a CUDA {row['cuda_major']} build", src,
                                allowed=variants, fix="Install the torchcodec built for the installed torch's "
                                "variant (PyTorch index: pip install torchcodec --index-url "
                                "https://download.pytorch.org/whl/<variant>), or let `envsolve plan` choose."))
    majors = tuple(str(m) for m in row.get("ffmpeg_majors", []))
    if majors:
        requires.append(Require("ffmpeg-libs", "ffmpeg-libs-missing",
                                f"torchcodec {version} loads the FFmpeg shared libraries of major {', '.join(majors)}",
                                src, allowed=majors, absent="fail", gate="libraries-listed", severity="warning",
                                fix="Install FFmpeg's shared libraries (Debian/Ubuntu: apt-get install ffmpeg; "
                                "conda: conda install 'ffmpeg<8'). envsolve's pipeline passes waveforms, so only "
                                "decoding files through torchcodec needs them."))
    return candidate("torchcodec", version, provides, requires, src)


def ptx_cuda(isa: object) -> str | None:
    """The CUDA release that emits a PTX ISA version (matrices/ptx_isa.toml)."""
    row = matrices.load("ptx_isa").one(ptx_isa=str(isa)) if isa else None
    return str(row["cuda"]) if row else None


def _lookup(name: str, matrix: str, version: str) -> tuple[Mapping[str, Any] | None, list[Provide], Candidate]:
    """A package's matrix row, what any version of it provides, and the candidate it is when the matrix
    does not know the version (it provides itself and requires nothing: unknown, not guessed)."""
    provides = [Provide(f"pkg:{name}", split_local(version)[0])]
    unknown = candidate(name, version, provides, [], f"not in matrices/{matrix}.toml")
    return row_for(matrix, version), provides, unknown


def torch_spec(paired: str) -> str:
    """A matrix's torch pairing as a specifier: '2.8' -> '==2.8.*', '>=2.11' stays as it is."""
    return paired if paired[:1] in "<>=!~" else f"=={paired}.*"


def ctranslate2_candidate(version: str, context: Context) -> Candidate:
    row, provides, unknown = _lookup("ctranslate2", "ctranslate2", version)
    if row is None:
        return unknown
    src = row_source(row)
    name = f"ctranslate2 {split_local(version)[0]}"
    requires = python_rule("ctranslate2", row_pythons(row), src)
    if row.get("execstack"):
        requires.append(Require("glibc", "glibc-execstack",
                                f"{name} ships libctranslate2 with an executable stack, which glibc >= 2.41 "
                                "refuses to load (\"cannot enable executable stack\")", src, spec="<2.41",
                                fix="Use ctranslate2 >= 4.6.0 (built without executable stack), or a base with "
                                "glibc < 2.41 (e.g. Debian bookworm, Ubuntu 24.04)."))
    if row.get("glibc_min"):
        requires.append(Require("glibc", "glibc-too-old", f"{name} wheels need glibc >= {row['glibc_min']}", src,
                                spec=f">={row['glibc_min']}", fix="Use an older ctranslate2 or a newer OS."))
    cuda_platforms = tuple(row.get("cuda_platforms", ()))
    if context.runtime.gpu and not runs_on_gpu(row, context.host):
        # PyPI's aarch64 ctranslate2 is CPU-only. A plan may choose that on purpose (ASR on the CPU, the plan's
        # `devices` says so): a warning. An installed one on a GPU host is what the user did not know:
        # device="auto" silently transcribes on the CPU and device="cuda" fails, so doctor reports an error.
        requires.append(Require("arch", "no-cuda-build",
                                f"{name} has CUDA wheels only for {', '.join(cuda_platforms) or 'no platform'}; "
                                "on this GPU host faster-whisper's device=\"auto\" silently transcribes on the CPU "
                                "and device=\"cuda\" fails", src, allowed=cuda_platforms,
                                severity="warning" if context.planning else "error",
                                fix="Accept CPU transcription (int8: pass device=\"cpu\" so it is a choice), or "
                                "build CTranslate2 from source with CUDA for this architecture (`envsolve plan` "
                                "says which components run where)."))
    elif context.runtime.gpu and context.runtime.asr_gpu:
        if row.get("cuda_major"):
            major = int(row["cuda_major"])
            requires += driver_rule(name, major, row.get("cuda"), src)
            requires.append(library_rule("ctranslate2", "cublas", major, "ld", src))
            ptx = (row.get("ptx_arch") or [None])[-1]
            requires += arch_rule(name, row.get("arch"), ptx, context.host, src, jit_cuda=ptx_cuda(row.get("ptx_isa")),
                                  cuda_major=major)
        cudnn = int(row.get("cudnn_major") or 0)
        if cudnn:
            requires.append(library_rule("ctranslate2", "cudnn", cudnn, "ld", src,
                                         cuda_major=int(row["cuda_major"]) if row.get("cuda_major") else None,
                                         front=bundled_cudnn_front(row)))
        if context.runtime.compute_type:
            requires += compute_type_rule(context.runtime.compute_type)
    if not ct2_on_gpu(row, context.host, context.runtime):
        platforms = cuda_platforms + tuple(row.get("cpu_platforms", ()))
        if platforms:
            requires.append(Require("arch", "no-build-for-platform", f"{name} has wheels for {', '.join(platforms)}",
                                    src, allowed=platforms, fix="Pick another machine architecture."))
    return candidate("ctranslate2", version, provides, requires, src)


def bundled_cudnn_front(row: Mapping[str, Any]) -> str | None:
    """The version of the cuDNN front a ctranslate2 wheel grafts in (`bundled`: libcudnn.so.9.1.0 -> 9.1.0), if any.

    Read from the wheels' ELF (matrices/ctranslate2.toml): libctranslate2's DT_NEEDED names the renamed front
    (libcudnn-74a4c495.so.9.1.0), whose only cuDNN names are the sub-libraries it dlopens (libcudnn_cnn.so ...,
    tried as .so.9.1.0, .so.9.1, .so.9, .so) and whose RPATH reaches no copy of them.
    """
    for name in row.get("bundled") or ():
        if str(name).startswith("libcudnn.so."):
            return str(name).removeprefix("libcudnn.so.")
    return None


def runs_on_gpu(row: Mapping[str, Any], host: Host | None) -> bool:
    """Does this ctranslate2 release have a CUDA wheel for the host's architecture (unknown: assume so)?"""
    return ct2_on_gpu(row, host, Runtime(gpu=True))


def compute_type_rule(compute_type: str) -> list[Require]:
    row = matrices.load("compute_types").one(compute_type=compute_type)
    if row is None or not row.get("gpu_min_cc"):
        return []
    return [Require("compute-capability", "compute-type-unsupported",
                    f"compute type {compute_type} needs compute capability >= {row['gpu_min_cc']}", row_source(row),
                    spec=f">={row['gpu_min_cc']}", every=True,
                    fix="Use the compute type `envsolve plan` reports for this GPU (float32 or int8_float32 below "
                    "7.0, float16/int8_float16 from 7.0, bfloat16 from 8.0).")]


def faster_whisper_candidate(version: str, context: Context) -> Candidate:
    row, provides, unknown = _lookup("faster-whisper", "faster_whisper", version)
    if row is None:
        return unknown
    src = row_source(row)
    requires = spec_rule(f"faster-whisper {version}", "ctranslate2", row.get("ctranslate2"), src)
    requires += _requires_python(f"faster-whisper {version}", row.get("python_requires"), src)
    if context.planning:
        requires += binary_wheel_rule(f"faster-whisper {version}", "av", row.get("av"))
    if row.get("transcription_options") is not None:
        # The keywords TranscriptionOptions takes (whisperx builds it from a dict); the bare capability says
        # they are known, so a release whose fields were never read leaves whisperx's need unchecked.
        provides.append(Provide(TRANSCRIPTION_OPTIONS, version))
        provides += [Provide(f"{TRANSCRIPTION_OPTIONS}:{k}", version) for k in row["transcription_options"]]
    return candidate("faster-whisper", version, provides, requires, src)


TRANSCRIPTION_OPTIONS = "kw:faster_whisper.TranscriptionOptions"


def binary_wheel_rule(name: str, dependency: str, spec: Any) -> list[Require]:
    """A plan installs from wheels: a pin matching only source-only releases of a native dependency
    (matrices/binary_wheels.toml) is a requirement nothing can meet. Planning only: an environment that
    has it installed (built from source) is not wrong, and doctor judges what is there."""
    row = matrices.load("binary_wheels").one(package=dependency)
    if not spec or row is None:
        return []
    try:
        wanted = SpecifierSet(str(spec))
    except InvalidSpecifier:
        return []
    if any(wanted.contains(v, prereleases=True) for v in row.get("wheels", [])):
        return []
    matching = ", ".join(v for v in row.get("sdist_only", []) if wanted.contains(v, prereleases=True)) or "no release"
    building = row.get("build", "see the source")
    return [Require(f"wheel:{dependency}{spec}", "dependency-source-only",
                    f"{name} requires {dependency}{spec}, which PyPI has only as source ({matching}; building it: "
                    f"{building})", row_source(row), absent="fail",
                    fix=f"Pick a release whose {dependency} pin has wheels (`envsolve plan` does), or build "
                    f"{dependency} from source first.")]


PIPELINE_FROM_PRETRAINED = "kw:pyannote.audio.Pipeline.from_pretrained"


def _requires_python(name: str, spec: Any, source: str) -> list[Require]:
    if not spec:
        return []
    return [Require("python", "python-unsupported", f"{name} requires Python {spec}", source, spec=str(spec),
                    fix=f"Use a Python that satisfies {spec}.")]


def pyannote_candidate(version: str, context: Context) -> Candidate:
    row, provides, unknown = _lookup("pyannote-audio", "pyannote_audio", version)
    if row is None:
        return unknown
    src = row_source(row)
    name = f"pyannote.audio {version}"
    requires = _requires_python(name, row.get("python_requires"), src)
    for dependency in ("torch", "torchaudio", "torchcodec", "huggingface_hub"):
        requires += spec_rule(name, dependency.replace("_", "-"), row.get(dependency), src)
    requires += torchaudio_api_rules(name, row, "Use pyannote.audio >= 4 (it decodes with torchcodec), or pin "
                                     "torchaudio to a release that still has this API (matrices/torchaudio.toml).")
    if row.get("auth_keyword"):
        provides += [Provide(PIPELINE_FROM_PRETRAINED, version),
                     Provide(f"{PIPELINE_FROM_PRETRAINED}:{row['auth_keyword']}", version)]
    if row.get("auth_keyword") == "use_auth_token":
        requires.append(Require("hf:use_auth_token", "hf-auth-keyword",
                                f"{name} passes use_auth_token= to huggingface_hub, which removed that keyword",
                                src, absent="fail", gate="pkg:huggingface-hub",
                                fix="Pin huggingface_hub below the release that removed use_auth_token "
                                "(matrices/huggingface_hub.toml), or upgrade pyannote.audio to 4.x (token=)."))
    return candidate("pyannote-audio", version, provides, requires, src)


def torchaudio_api_rules(name: str, row: Mapping[str, Any], fix: str) -> list[Require]:
    """The torchaudio names a release calls (its row's `torchaudio_apis`) must exist in the torchaudio there."""
    return [Require(f"api:torchaudio.{api}", "torchaudio-api-removed",
                    f"{name} calls torchaudio.{api}, which this torchaudio no longer has", row_source(row),
                    absent="fail",
                    gate="pkg:torchaudio", fix=fix) for api in row.get("torchaudio_apis", [])]


def matrix_candidate(dist: str, matrix: str, dependencies: tuple[str, ...] = ()) -> Builder:
    """A builder read entirely from a matrix row: Requires-Python, the row's specs on `dependencies`, the
    torchaudio APIs it calls. A family that needs no rule of its own is its matrix plus this."""

    def build(version: str, context: Context) -> Candidate:
        row, provides, unknown = _lookup(dist, matrix, version)
        if row is None:
            return unknown
        name = f"{dist} {version}"
        requires = _requires_python(name, row.get("python_requires"), row_source(row))
        for dependency in dependencies:
            requires += spec_rule(name, dependency, row.get(dependency.replace("-", "_")), row_source(row))
        requires += torchaudio_api_rules(name, row, f"Use a {dist} release that does not call it (matrices/"
                                         f"{matrix}.toml; `envsolve plan` picks one), or a torchaudio that has it.")
        return candidate(dist, version, provides, requires, row_source(row))

    return build


def huggingface_hub_candidate(version: str, context: Context) -> Candidate:
    base, _ = split_local(version)
    provides = [Provide("pkg:huggingface-hub", base)]
    source = "not in matrices/huggingface_hub.toml"
    for row in matrices.load("huggingface_hub"):
        upper = f",<{row['max']}" if row.get("max") else ""
        if satisfies(base, f">={row['min']}{upper}"):
            source = row_source(row)
            if row.get("use_auth_token") in ("accepted", "deprecated"):
                provides.append(Provide("hf:use_auth_token", base))
    return candidate("huggingface-hub", version, provides, [], source)


def whisperx_candidate(version: str, context: Context) -> Candidate:
    row, provides, unknown = _lookup("whisperx", "whisperx", version)
    if row is None:
        return unknown
    src = row_source(row)
    requires = _requires_python(f"whisperx {version}", row.get("python_requires"), src)
    for dependency in ("torch", "torchaudio", "torchvision", "ctranslate2", "faster_whisper", "pyannote_audio",
                       "torchcodec"):
        requires += spec_rule(f"whisperx {version}", dependency.replace("_", "-"), row.get(dependency), src)
    requires += whisperx_keyword_rules(f"whisperx {version}", row, src)
    return candidate("whisperx", version, provides, requires, src)


def whisperx_keyword_rules(name: str, row: Mapping[str, Any], src: str) -> list[Require]:
    """What whisperx's code passes to the packages under it must be a keyword they take (read from both
    wheels' code: matrices/whisperx.toml faster_whisper_options/pyannote_auth_keyword, faster_whisper.toml
    transcription_options, pyannote_audio.toml auth_keyword). Unchecked where a side was never read (gate)."""
    rules = [Require(f"{TRANSCRIPTION_OPTIONS}:{option}", "whisperx-asr-option-unknown",
                     f"{name} passes {option}= to faster-whisper's TranscriptionOptions (whisperx/asr.py load_model); "
                     "this faster-whisper does not take it (TypeError at load_model)", src, absent="fail",
                     gate=TRANSCRIPTION_OPTIONS, fix="Install the faster-whisper release this whisperx was built "
                     "against (a newer one: the keyword was added there), or let `envsolve plan` choose the pair.")
             for option in row.get("faster_whisper_options") or ()]
    keyword = row.get("pyannote_auth_keyword")
    if keyword:
        other = "token" if keyword == "use_auth_token" else "use_auth_token"
        rules.append(Require(f"{PIPELINE_FROM_PRETRAINED}:{keyword}", "whisperx-diarize-auth-keyword",
                             f"{name} calls pyannote.audio's Pipeline.from_pretrained(..., {keyword}=) "
                             f"(whisperx/diarize.py); this pyannote.audio takes {other}= instead (TypeError at "
                             "diarization)", src, absent="fail", gate=PIPELINE_FROM_PRETRAINED,
                             fix="Pin pyannote.audio to the major this whisperx calls (3.x takes use_auth_token=, "
                             "4.x token=), or use a whisperx release written for the installed pyannote.audio."))
    return rules


def onnxruntime_gpu_candidate(version: str, context: Context) -> Candidate:
    src = "https://github.com/microsoft/onnxruntime/issues/4982 (both packages install the same onnxruntime module)"
    require = Require("pkg:onnxruntime", "onnxruntime-shadowed",
                      "onnxruntime and onnxruntime-gpu are both installed; they write the same `onnxruntime` "
                      "module, and the CPU build usually wins", src, forbid=True,
                      fix="pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu")
    return candidate("onnxruntime-gpu", version, [Provide("pkg:onnxruntime-gpu", version)], [require], src)


def nvidia_library_candidate(dist: str, version: str | None) -> Candidate | None:
    """nvidia-cudnn-cu12 9.1.0.70, nvidia-cublas-cu12 12.4.5.8, nvidia-cublas 13.0.0.19 (CUDA 13 naming).

    cuDNN's soname major is its own version's major; the CUDA libraries' is the CUDA major, which
    the -cuNN suffix names, or for CUDA 13's unsuffixed wheels the version itself.
    """
    names = {"cudnn": "nvidia-cudnn", "cublas": "nvidia-cublas", "cudart": "nvidia-cuda-runtime"}
    for lib, stem in names.items():
        if dist != stem and not dist.startswith(f"{stem}-cu"):
            continue
        suffix = dist.removeprefix(stem).removeprefix("-cu")
        released = (version or "").split(".")[0]  # a version of None: the major may still be in the name
        cuda_major = suffix or released
        major = released if lib == "cudnn" else cuda_major
        if not (major.isdigit() and cuda_major.isdigit()):
            return None  # not a layout we know: its library stays unknown
        return candidate(dist, version or "(version unknown)",
                         [pip_library(lib, version, int(major), int(cuda_major), dist)], [], f"{dist} wheel layout")
    return None
