"""Which copy of a native library each consumer gets: glibc's search order, per consumer, as data.

The engine's model of the dynamic loader (the probe measures the real one; its recorded links,
when a snapshot has them, override this derivation):

- torch reaches its nvidia-* wheels through DT_RPATH (`$ORIGIN/../../nvidia/<lib>/lib` on
  libtorch_cuda.so, libc10_cuda.so and torch 2.0's libtorch_global_deps.so), which glibc searches
  before LD_LIBRARY_PATH. cuDNN is the exception that bites: pip's libcudnn.so.N shim (cuDNN 8 and
  9 alike) dlopens its sub-libraries (libcudnn_ops_infer.so.8 ..., libcudnn_ops.so.9 ...) with only
  RUNPATH=$ORIGIN, searched after LD_LIBRARY_PATH, so another cuDNN of the same major there
  supplies the sub-libraries beside torch's own shim (readelf on torch 2.0.1 / 2.11.0 and on
  nvidia-cudnn-cu11 8.5.0.96 / nvidia-cudnn 9.x wheels).
- ctranslate2 has no path into site-packages/nvidia: LD_LIBRARY_PATH, then the ld.so cache and
  the default directories. But one process shares what it loaded: once torch is imported
  (WhisperX, envsolve's pipeline with diarization), libcublas.so.N and libcudnn.so.N are loaded,
  and ctranslate2's later dlopen of the same soname gets that copy (man 3 dlopen: a library
  already loaded under that name is returned).
- Except cuDNN for a ctranslate2 that grafts its own cuDNN front (3.x-4.6.2: `bundled` libcudnn.so.8.x/9.1.0,
  under an auditwheel-renamed SONAME such as libcudnn-74a4c495.so.9.1.0). That front is another object than
  torch's libcudnn.so.N, and `import torch` loads only torch's front, not the sub-libraries (it dlopens them at
  its first cuDNN call). ctranslate2's front dlopens libcudnn_cnn.so.9.1.0, .9.1, .9 through its own search; only
  when torch already ran a cuDNN operation is a sub-library with that SONAME (libcudnn_cnn.so.9) in the process
  to be returned. What it gets then depends on what ran first (`torch_pick`; check's cudnn-load-order).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from envsolve.resolver.host import Host, LoaderLink
from envsolve.resolver.model import LibraryNeed, Provide

__all__ = ["TORCH_LOADED", "LoaderView"]

# The capability a torch build provides for each library its libtorch_cuda.so links (DT_NEEDED), so
# that "torch is imported first" can be modelled: version = the soname major.
TORCH_LOADED = "loads:"


@dataclass(frozen=True)
class LoaderView:
    """How the dynamic loader will search on this host, for the process being modelled."""

    ld_library_path: tuple[str, ...]
    links: dict[tuple[str, str], LoaderLink]  # (consumer, soname) -> what the probe saw the loader do
    complete: bool = False  # the host's library list is every copy there is (absence is known)
    torch_first: bool = False  # the process imports torch before ctranslate2 loads its libraries

    @classmethod
    def of(cls, host: Host | None, *, torch_first: bool = False) -> LoaderView:
        if host is None:
            return cls((), {}, torch_first=torch_first)
        dirs = tuple(d.rstrip("/") for d in host.env.get("LD_LIBRARY_PATH", "").split(":") if d)
        links = {(x.consumer, x.needs): x for x in host.loader or ()}
        complete = host.libraries is not None and host.libraries_complete
        return cls(dirs, links, complete, torch_first)

    def order(self, providers: Iterable[Provide], need: LibraryNeed,
              torch_loads: Iterable[Provide] = ()) -> list[tuple[Provide, str]]:
        """Providers in the order the loader tries them for this consumer, each with why.

        `torch_loads` are torch's `loads:<lib>` provides: with `torch_first`, a consumer searching
        like ctranslate2 gets the copy torch's own search picked, already in the process.
        """
        providers = list(providers)
        if self.torch_first and need.search == "ld" and need.front is None and any(
                p.version == str(need.major) for p in torch_loads):
            torch_need = LibraryNeed(need.name, need.major, search="torch", consumer="torch",
                                     cuda_major=need.cuda_major)
            first = self.order(providers, torch_need)
            if first:
                picked = first[0][0]
                rest = [(p, why) for p, why in self.order(providers, need) if p is not picked]
                return [(picked, f"already loaded in this process by torch (imported first; {first[0][1]})"),
                        *rest]
        rpath_first = need.search == "torch" and need.name != "cudnn"
        ranked: list[tuple[int, int, Provide, str]] = []
        for p in providers:
            directory = os.path.dirname(p.detail.get("path", "")).rstrip("/")
            origin = p.detail.get("origin", "system")
            if origin == "pip" and rpath_first:
                ranked.append((-1, 0, p, "torch's RPATH into site-packages/nvidia"))
            elif directory and directory in self.ld_library_path:
                ranked.append((0, self.ld_library_path.index(directory), p, "LD_LIBRARY_PATH"))
            elif origin == "pip" and need.search == "torch":
                ranked.append((1, 0, p, "torch's RPATH (cuDNN's own sub-libraries are searched after "
                                        "LD_LIBRARY_PATH)"))
            elif origin == "image":
                ranked.append((2, 0, p, "ld.so cache of the base image"))
            elif origin in ("system", "conda"):
                ranked.append((2, 0, p, "ld.so cache / default directories"))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return [(p, why) for _, _, p, why in ranked]

    def torch_pick(self, providers: Iterable[Provide], need: LibraryNeed,
                   torch_loads: Iterable[Provide] = ()) -> tuple[Provide, str] | None:
        """The copy torch's own cuDNN front takes its sub-libraries from, in a process that imports torch
        first; None unless the consumer brings its own front (`need.front`) and torch loads that major."""
        if not (self.torch_first and need.front and any(p.version == str(need.major) for p in torch_loads)):
            return None
        first = self.order(providers, LibraryNeed(need.name, need.major, search="torch", consumer="torch",
                                                  cuda_major=need.cuda_major))
        return first[0] if first else None

    def places(self, need: LibraryNeed) -> str:
        """Where the loader looks for this consumer, in words (the evidence for 'no copy anywhere')."""
        llp = ":".join(self.ld_library_path) or "(empty)"
        places = [f"LD_LIBRARY_PATH={llp}", "the ld.so cache", "the default directories"]
        if need.search == "torch":
            places.insert(0, f"torch's RPATH site-packages/nvidia/{need.name}/lib")
        return "searched: " + ", ".join(places)

    def probed(self, need: LibraryNeed) -> LoaderLink | None:
        """What the live probe saw the loader pick for this consumer and library, if it looked."""
        for (consumer, soname), link in self.links.items():
            if consumer == need.consumer and soname.startswith(f"lib{need.name}") and \
                    soname.endswith(f".so.{need.major}"):
                return link
        return None
