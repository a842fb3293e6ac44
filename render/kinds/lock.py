"""requirements.lock (hashed, for `pip install --require-hashes --no-deps`) and, when an index could not be
reached, requirements-index.txt (exact pins, unhashed, labelled).

`render --check` does not resolve again: a lock is current when it was made from this plan (its header names
the plan's hash) and holds every pin of the plan. Re-resolving would report every new release of a
transitive dependency as drift; `render lock` is how a lock is refreshed on purpose.
"""

from __future__ import annotations

from packaging.utils import canonicalize_name

from envsolve.render.files import Output, RenderContext, header, read_rendered, template
from envsolve.render.lock import Lock, resolve

INDEX_FILE = "requirements-index.txt"


def render(context: RenderContext, kind: str) -> list[Output]:
    if context.checking:
        return _as_on_disk(context)
    lock = resolve(context.contract, context.roots, warn=context.warn)
    return outputs(context, lock)


def outputs(context: RenderContext, lock: Lock) -> list[Output]:
    out = [Output("requirements.lock", template("requirements.lock.j2", context.contract, lock=lock))]
    if lock.unhashed:
        out.append(Output(INDEX_FILE, template("requirements-index.txt.j2", context.contract, lock=lock)))
    else:  # the install steps install this file whenever it exists: a stale one must go
        out.append(Output(INDEX_FILE, "", remove=True))
    return out


def _as_on_disk(context: RenderContext) -> list[Output]:
    """For --check: the files on disk when they belong to this plan and hold its pins, else what differs."""
    found = []
    for name in ("requirements.lock", INDEX_FILE):
        data, _ = read_rendered(context.folder / name)  # bounded, regular files only; check_outputs names the rest
        if data is not None:
            found.append((name, data.decode("utf-8", "replace")))
    if not found:
        return [Output("requirements.lock", "(no lock: run `envsolve render lock` with the same plan)\n")]
    text = "".join(t for _, t in found)
    wanted = header(context.contract).splitlines()[0]
    pinned = {canonicalize_name(line.split("==")[0]): line.split("==")[1].split()[0].rstrip("\\").strip()
              for line in text.splitlines() if "==" in line and not line.startswith(("#", "-"))}
    missing = [p.requirement for p in context.contract.packages if p.exact and pinned.get(canonicalize_name(p.name))
               not in (p.version, p.version.split("+")[0])]
    if wanted in text and not missing:
        return [Output(name, body) for name, body in found]
    return [Output(found[0][0], f"{wanted}\n(a lock of this plan, holding {', '.join(missing) or 'its pins'})\n")]
