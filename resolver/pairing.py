"""The binary pairing of a torch extension (torchaudio, torchvision, torchcodec) as a requirement on torch.

A matrix row's `torch_abi` says which torch releases export every torch symbol the build's native libraries
import (read from the wheels by `envsolve matrices refresh`); outside it `import` fails with "undefined symbol",
whatever the Requires-Dist allowed. Absent `torch_abi` means unknown: no requirement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envsolve.resolver.model import Require

__all__ = ["torch_abi_rule"]


def torch_abi_rule(name: str, row: Mapping[str, Any]) -> list[Require]:
    """torch-family-mismatch unless the installed torch is one the build's symbols are all in."""
    spec = row.get("torch_abi")
    if not spec:
        return []
    missing: Mapping[str, Any] = row.get("torch_abi_missing") or {}
    lacks = "; ".join(f"torch {release} lacks {', '.join(symbols)}" for release, symbols in missing.items())
    why = (f"{name}'s native libraries import torch symbols that only torch {spec} exports"
           + (f" ({lacks})" if lacks else "") + "; with another torch `import` fails with 'undefined symbol'")
    evidence = [str(e) for e in row.get("evidence", ())]
    artifact = f"{row['artifact']} (sha256 {row.get('sha256', '?')})" if row.get("artifact") else ""
    source = "; ".join(part for part in (*evidence, artifact, str(row.get("source", ""))) if part)
    return [Require("pkg:torch", "torch-family-mismatch", why, source, spec=str(spec),
                    fix=f"Install a torch in {spec} beside {name}, or the release of {name.split()[0]} built for the "
                    "installed torch; `envsolve plan` pins the family together.")]
