"""Which device a model runs on: one rule for Whisper (CTranslate2) and for pyannote (torch).

Each library is asked whether it sees a GPU, since that is what decides where its model can run
(a CPU-only torch beside a CUDA CTranslate2 is common). The libraries are imported only when a
GPU is in question, so `--device cpu` never loads torch or CTranslate2's CUDA runtime here.
"""

from __future__ import annotations

from collections.abc import Callable

from envsolve.errors import EnvsolveError

__all__ = ["DEVICES", "pick_device"]

DEVICES = ("auto", "cpu", "cuda")


def _ctranslate2() -> tuple[bool, str]:
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0, f"ctranslate2 {ctranslate2.__version__}"


def _torch() -> tuple[bool, str]:
    import torch

    return torch.cuda.is_available(), f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'})"


# Library -> (does it see a CUDA device, what it is for the error message).
_LIBRARIES: dict[str, Callable[[], tuple[bool, str]]] = {"ctranslate2": _ctranslate2, "torch": _torch}


def pick_device(wanted: str, library: str) -> str:
    """`cpu` or `cuda` for a model run by `library` (ctranslate2 or torch).

    `auto` is cuda when the library sees a CUDA device, else cpu. `cuda` where it sees none is an
    EnvsolveError naming the library, rather than a failure deep inside it at load time.
    """
    if wanted not in DEVICES:
        raise EnvsolveError("device-unknown", f"Unknown device {wanted!r}.", hint=f"Use {', '.join(DEVICES)}.")
    if wanted == "cpu":
        return "cpu"
    visible, what = _LIBRARIES[library]()
    if visible:
        return "cuda"
    if wanted == "auto":
        return "cpu"
    raise EnvsolveError(
        "cuda-not-visible",
        f"The device is cuda, but {library} sees no CUDA device.",
        context=f"{what}.",
        hint=f"Use --device cpu, or run `envsolve doctor` to see why {library} cannot reach the GPU.",
    )
