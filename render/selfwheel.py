"""envsolve ships with what it renders: the wheel of the running envsolve, and where else a user may point.

No index has this envsolve (a development tree, a fork, a release not yet published), so every rendered kind
that can carry a file installs envsolve from a wheel written beside it, as cog writes its own wheel into the
build context. The wheel is rebuilt from the files the running envsolve imports, in a fixed order with fixed
timestamps and modes, so the same envsolve gives the same bytes and `render --check` can compare them. It is
what setuptools builds from the same tree (tests/test_packaging.py compares the two), without needing
setuptools or a build step at render time.

`--envsolve-spec` overrides it with a released version (`envsolve==X`), an https URL of a wheel, or the path of
an envsolve wheel (copied into the folder). It is never passed to pip as written when it could be read as an
option: only those three shapes are accepted.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from envsolve import __version__
from envsolve.errors import EnvsolveError
from envsolve.render.grammar import GRAMMARS

__all__ = ["PARTS", "EnvsolveSource", "build_wheel", "envsolve_source", "is_envsolve_wheel", "wheel_files"]

# The folders pyproject.toml's package-dir maps under envsolve.* (tests/test_render_wheel.py checks they agree).
PARTS = ("derive", "matrices", "pipeline", "render", "resolver", "templates")  # pyproject's package-dir; test_packaging
# zip cannot store times before 1980; a fixed time makes the archive a function of its files.
EPOCH = (1980, 1, 1, 0, 0, 0)
DIST_INFO_FILES = ("METADATA", "entry_points.txt", "top_level.txt")
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".tmp", ".swp")
SPEC = GRAMMARS["envsolve-spec"][0]  # a requirement or a wheel's https URL
WHEEL_NAME = GRAMMARS["wheel"][0]


@dataclass(frozen=True)
class EnvsolveSource:
    """Where rendered files install envsolve from: a wheel in the rendered folder (`wheel`, its file name, and
    `data`, its bytes), or a requirement or URL that pip fetches (`spec`)."""

    wheel: str = ""
    data: bytes = b""
    spec: str = ""

    @property
    def pip_argument(self) -> str:
        """What a step that cannot see the folder (a notebook cell) passes to pip."""
        return self.spec or f"envsolve=={__version__}"


def wheel_name(version: str = __version__) -> str:
    return f"envsolve-{version.replace('-', '_')}-py3-none-any.whl"


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # no import: the pipeline's heavy modules stay unloaded
    if spec is None or not spec.submodule_search_locations:
        raise EnvsolveError("envsolve-wheel", f"Cannot find the files of {name} to ship envsolve with the render.",
                            hint="Reinstall envsolve (pip install --force-reinstall envsolve), or pass "
                            "--envsolve-spec with a released version or a wheel.")
    return Path(next(iter(spec.submodule_search_locations)))


def wheel_files() -> dict[str, Path]:
    """Archive name -> file, for every file the running envsolve's packages hold (caches and temporaries
    excepted). An installed envsolve holds the mapped folders inside envsolve/; a development install maps
    them from the source tree, where they are found one by one."""
    roots = {"envsolve": _package_folder("envsolve")}
    for part in PARTS:
        folder = _package_folder(f"envsolve.{part}")
        if folder.parent != roots["envsolve"]:
            roots[f"envsolve/{part}"] = folder
    files: dict[str, Path] = {}
    for prefix, folder in roots.items():
        for path in folder.rglob("*"):
            rel = path.relative_to(folder)
            if (not path.is_file() or "__pycache__" in rel.parts or path.name.endswith(SKIPPED_SUFFIXES)
                    or any(part.startswith(".") for part in rel.parts)):
                continue
            files.setdefault(f"{prefix}/{rel.as_posix()}", path)
    return files


def _dist_info() -> dict[str, bytes]:
    # An egg-info folder left in a source checkout (setuptools' build) can shadow the installed dist-info.
    distribution = next((d for d in metadata.distributions(name="envsolve") if d.read_text("METADATA")), None)
    if distribution is None:
        raise EnvsolveError("envsolve-wheel", "envsolve's metadata is not installed, so its wheel cannot be made.",
                            hint="Install envsolve (pip install -e . in a checkout), or pass --envsolve-spec with a "
                            "released version or a wheel.")
    folder = f"envsolve-{__version__}.dist-info"
    out = {f"{folder}/{name}": (distribution.read_text(name) or "").encode() for name in DIST_INFO_FILES
           if distribution.read_text(name) is not None}
    out[f"{folder}/METADATA"] = _without_description(distribution.read_text("METADATA") or "").encode()
    out[f"{folder}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: envsolve\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    return out


def _without_description(metadata_text: str) -> str:
    """METADATA's headers only: the long description (the README) is left out, so an editable install whose
    metadata was made before the README last changed ships the same bytes as a fresh install."""
    headers = metadata_text.split("\n\n", 1)[0]
    lines = [line for line in headers.splitlines() if not line.startswith("Description-Content-Type:")]
    return "\n".join(lines) + "\n"


def build_wheel() -> bytes:
    """The running envsolve as a wheel: the same files give the same bytes."""
    entries = {name: path.read_bytes() for name, path in wheel_files().items()}
    dist_info = _dist_info()
    record_name = next(iter(dist_info)).split("/")[0] + "/RECORD"
    ordered = sorted(entries.items()) + sorted(dist_info.items())
    record = "".join(f"{name},sha256={_digest(data)},{len(data)}\n" for name, data in ordered) + f"{record_name},,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in [*ordered, (record_name, record.encode())]:
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def is_envsolve_wheel(data: bytes) -> bool:
    """Whether `data` is a wheel of envsolve (a zip holding an envsolve-*.dist-info): what render may replace
    with another envsolve wheel without --force, having no header to carry."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return False
    return any(n.startswith("envsolve-") and n.split("/")[0].endswith(".dist-info") for n in names)


def envsolve_source(spec: str | None) -> EnvsolveSource:
    """What --envsolve-spec asks for (None: this envsolve's own wheel); EnvsolveError for anything else."""
    if spec is None:
        return EnvsolveSource(wheel=wheel_name(), data=build_wheel())
    if SPEC.fullmatch(spec):
        return EnvsolveSource(spec=spec)
    path = Path(spec)
    if WHEEL_NAME.fullmatch(path.name) and not spec.startswith("-"):
        try:
            data = path.read_bytes() if path.is_file() else None
        except OSError:
            data = None
        if data is not None and zipfile.is_zipfile(io.BytesIO(data)):
            return EnvsolveSource(wheel=path.name, data=data)
    raise EnvsolveError(
        "render-bad-value", f"--envsolve-spec is {spec[:120]!r}, which is not envsolve[==VERSION], an https URL of an "
        "envsolve wheel, or the path of an envsolve wheel file.",
        context="The rendered files install envsolve with pip; a value pip could read as an option (-r, -e, "
        "--index-url) or a folder is refused.",
        hint="Leave --envsolve-spec out to ship this envsolve's own wheel with the files, or build a wheel of a "
        "source tree first (pip wheel --no-deps -w dist FOLDER) and pass dist/envsolve-*.whl.")
