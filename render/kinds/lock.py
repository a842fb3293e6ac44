"""requirements.lock (hashed, for `pip install --require-hashes --no-deps`) and, when an index could not be
reached, requirements-index.txt (exact pins, unhashed, labelled).

`render --check` does not resolve again (every new release of a transitive dependency would be drift, and
`render lock` is how a lock is refreshed on purpose). It protects the lock instead: the files on disk are
read back into a `Lock`, which must hold every pin of the plan, and rendered again for this plan. Options and
index lines come from the plan, so an added `--extra-index-url`, a removed `--require-hashes` or a swapped
index URL shows as a diff line; the header records a digest of the resolved set (every name, version and
hash), so a removed package, a changed version or a changed hash shows as a changed digest line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from packaging.utils import canonicalize_name

from envsolve.render.contract import Package
from envsolve.render.files import Output, RenderContext, header, read_rendered, template
from envsolve.render.lock import Lock, Locked, resolve

INDEX_FILE = "requirements-index.txt"
LOCK_FILE = "requirements.lock"
MAX_LOCK_BYTES = 4 * 1024 * 1024
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!_-]*)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
INDEX_OPTION = re.compile(r"--extra-index-url (\S+)")


def render(context: RenderContext, kind: str) -> list[Output]:
    if context.checking:
        return _as_on_disk(context)
    if kind != "lock":  # implied by a kind that reads the lock: keep a lock this plan already has
        current = current_lock(context)
        if current is not None:
            return outputs(context, current)
        context.warn("no lock of this plan is in the folder, so it is resolved now (a file rendered here reads it)")
    lock = resolve(context.contract, context.roots, warn=context.warn)
    return outputs(context, lock)


def digest(lock: Lock) -> str:
    """sha256 of the resolved set: every locked name, version and hash, the unhashed pins and their indexes."""
    body = {"python": lock.python, "arch": lock.arch, "indexes": list(lock.indexes),
            "hashed": [[i.name, i.version, list(i.hashes), i.source_build] for i in lock.hashed],
            "unhashed": [p.requirement for p in lock.unhashed], "unreachable": list(lock.unreachable)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def outputs(context: RenderContext, lock: Lock) -> list[Output]:
    out = [Output(LOCK_FILE, template("requirements.lock.j2", context.contract, lock=lock, digest=digest(lock)))]
    if lock.unhashed:
        out.append(Output(INDEX_FILE, template("requirements-index.txt.j2", context.contract, lock=lock)))
    else:  # the install steps install this file whenever it exists: a stale one must go
        out.append(Output(INDEX_FILE, "", remove=True))
    return out


def _read(path: Path) -> str | None:
    """The file's text: a regular file, bounded, read without blocking (render/files.read_rendered), else None."""
    data, _ = read_rendered(path)
    if data is None or len(data) > MAX_LOCK_BYTES:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse(context: RenderContext) -> Lock | None:
    """The lock in the folder read back for this plan, or None when it is missing or not a lock of this plan's
    shape (an unknown line, a pin without a hash, an unhashed pin the plan does not name)."""
    c = context.contract
    text = _read(context.folder / LOCK_FILE)
    if text is None:
        return None
    hashed: list[Locked] = []
    indexes: list[str] = []
    no_binary: set[str] = set()
    for line in _logical_lines(text):
        if line in ("--require-hashes", "--only-binary :all:"):
            continue
        if line.startswith("--no-binary "):
            no_binary.add(canonicalize_name(line.removeprefix("--no-binary ")))
        elif (index := INDEX_OPTION.fullmatch(line)) and index.group(1) in c.extra_indexes:
            indexes.append(index.group(1))
        elif (pin := PIN.match(line)) and (hashes := tuple(HASH.findall(line))):
            name = canonicalize_name(pin.group(1))
            hashed.append(Locked(name, pin.group(2), hashes, source_build=name in no_binary))
        elif not line.startswith("--extra-index-url "):  # an index the plan does not use is left out, so it shows
            return None
    unhashed: list[Package] = []
    unreachable: list[str] = []
    index_text = _read(context.folder / INDEX_FILE) if os.path.lexists(context.folder / INDEX_FILE) else ""
    if index_text is None:
        return None
    by_name = {canonicalize_name(p.name): p for p in c.packages}
    for line in _logical_lines(index_text):
        if (index := INDEX_OPTION.fullmatch(line)) and index.group(1) in c.extra_indexes:
            unreachable.append(index.group(1))
        elif (pin := PIN.fullmatch(line)) and (planned := by_name.get(canonicalize_name(pin.group(1)))):
            unhashed.append(Package(planned.name, pin.group(2), planned.index, True))
        elif not line.startswith("--extra-index-url "):
            return None
    pins = {item.name: item.version for item in hashed} | {canonicalize_name(p.name): p.version for p in unhashed}
    if any(p.exact and pins.get(canonicalize_name(p.name)) not in (p.version, p.version.split("+")[0])
           for p in c.packages):
        return None
    return Lock(c.python, c.target.arch, tuple(hashed), tuple(unhashed), tuple(unreachable), tuple(indexes))


def _logical_lines(text: str) -> list[str]:
    """The file's requirement and option lines, continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [" ".join(line.split()) for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def current_lock(context: RenderContext) -> Lock | None:
    """The folder's lock when it is exactly what this plan's lock renders as (nothing edited since)."""
    lock = parse(context)
    if lock is None:
        return None
    size = len(header(context.contract).splitlines())
    for output in outputs(context, lock):
        on_disk = _read(context.folder / output.path)
        if (on_disk is not None) == output.remove or (
                not output.remove and _body(on_disk, size) != _body(output.text, size)):
            return None
    return lock


def _with_disk_header(context: RenderContext, output: Output) -> Output:
    """The output with the folder's regenerate command when its plan line matches (the lock was made from this
    plan, through a path spelled another way), so --check reports what changed in the lock, not the spelling."""
    on_disk = _read(context.folder / output.path)
    size = len(header(context.contract).splitlines())
    if output.remove or on_disk is None or _body(on_disk, size)[0] != _body(output.text, size)[0]:
        return output
    lines = on_disk.splitlines(keepends=True)[:size]
    return Output(output.path, "".join(lines) + _body(output.text, size)[1])


def _body(text: str | None, header_size: int) -> tuple[str, str]:
    """A rendered file without the header's regenerate command (the plan's path may be spelled differently),
    keeping its first line, which names the plan's sha256."""
    lines = (text or "").splitlines(keepends=True)
    return "".join(lines[:1]), "".join(lines[header_size:])


def _as_on_disk(context: RenderContext) -> list[Output]:
    """For --check: the folder's lock rendered again for this plan (what differs shows as a diff), or a
    placeholder saying what is wanted when there is no lock of this plan to read."""
    lock = parse(context)
    if lock is not None:
        return [_with_disk_header(context, output) for output in outputs(context, lock)]
    wanted = template("requirements.lock.j2", context.contract, lock=Lock(context.contract.python,
                      context.contract.target.arch, (), (), (), ()), digest="").splitlines()[0]
    pins = ", ".join(p.requirement for p in context.contract.packages if p.exact)
    return [Output(LOCK_FILE, f"{wanted}\n(a lock of this plan, holding {pins}, with a sha256 on every line and no "
                   "option the plan does not write: run `envsolve render lock` with the same plan)\n")]
