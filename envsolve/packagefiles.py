"""A package's data folder, read directly when it is on disk.

importlib.resources.files imports zipfile (a twentieth of `envsolve plan`'s start-up) to serve packages inside
zip archives; envsolve is installed unpacked (a wheel or an editable install), so a folder on disk is used as it
is, and importlib.resources serves any other case.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["folder"]


@cache
def folder(package: str) -> Traversable:
    """The folder of `package` (a dotted name), as importlib.resources.files would give it."""
    module = importlib.import_module(package)
    found = Path(module.__file__ or "").parent
    if module.__file__ and found.is_dir():
        return found
    from importlib import resources

    return resources.files(module)
