"""The loader order loadorder.LoaderView derives when no probe recorded what the loader did."""

from __future__ import annotations

from envsolve.resolver.loadorder import LoaderView
from envsolve.resolver.model import LibraryNeed, Provide

SYSTEM = "/usr/local/cuda/lib64"
PIP = "$SITE_PACKAGES/nvidia"


def _lib(name: str, version: str, folder: str, origin: str) -> Provide:
    major = version.split(".")[0] if name == "cudnn" else "12"
    return Provide(f"lib:{name}", version, {"origin": origin, "major": major, "path": f"{folder}/lib{name}.so.{major}"})


def _first(view: LoaderView, need: LibraryNeed, *providers: Provide) -> str | None:
    order = view.order(providers, need)
    return order[0][0].version if order else None


def test_torch_cudnn_takes_an_older_copy_on_ld_library_path() -> None:
    """cuDNN's shim dlopens its sub-libraries after LD_LIBRARY_PATH: the system copy is mixed in."""
    view = LoaderView((SYSTEM,), {})
    need = LibraryNeed("cudnn", 9, "9.10", "torch", "torch")
    assert _first(view, need, _lib("cudnn", "9.10.2", f"{PIP}/cudnn/lib", "pip"),
                  _lib("cudnn", "9.1.0", SYSTEM, "system")) == "9.1.0"


def test_torch_cublas_keeps_its_own_copy() -> None:
    """torch's DT_RPATH is searched before LD_LIBRARY_PATH for what it links directly."""
    view = LoaderView((SYSTEM,), {})
    need = LibraryNeed("cublas", 12, None, "torch", "torch")
    assert _first(view, need, _lib("cublas", "12.1.3", SYSTEM, "system"),
                  _lib("cublas", "12.8.4", f"{PIP}/cublas/lib", "pip")) == "12.8.4"


def test_ctranslate2_sees_pip_libraries_only_through_ld_library_path() -> None:
    need = LibraryNeed("cudnn", 9, None, "ld", "ctranslate2")
    pip = _lib("cudnn", "9.1.0", f"{PIP}/cudnn/lib", "pip")
    assert _first(LoaderView((), {}), need, pip) is None
    assert _first(LoaderView((f"{PIP}/cudnn/lib",), {}), need, pip) == "9.1.0"


def test_ld_library_path_order_decides_between_folders() -> None:
    need = LibraryNeed("cublas", 12, None, "ld", "ctranslate2")
    a, b = _lib("cublas", "12.1", "/opt/a", "system"), _lib("cublas", "12.8", "/opt/b", "system")
    assert _first(LoaderView(("/opt/b", "/opt/a"), {}), need, a, b) == "12.8"
    assert _first(LoaderView(("/opt/a", "/opt/b"), {}), need, a, b) == "12.1"
