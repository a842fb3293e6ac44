"""cuda_images.toml: which nvidia/cuda Ubuntu tags exist and what is inside them (not a registry: a git checkout).

Reads a git checkout (bare or work tree) of NVIDIA's GitLab repo nvidia/container-images/cuda (or a GitHub
mirror of it): doc/supported-tags.md and doc/unsupported-tags.md name the tags,
dist/[end-of-life/]<cuda>/<os>/{base,runtime,devel}/[cudnn*/]Dockerfile say what is inside (NVIDIA_REQUIRE_CUDA,
NV_CUDNN_VERSION, NV_CUDNN_PACKAGE_NAME, from the amd64 build stage). Optionally a git dir of replicate/cog adds
CUDA versions the repo does not have yet, from cog's Docker Hub crawl pkg/config/cuda_compatibility.json.

    envsolve matrices refresh cuda_images --cuda-images-repo PATH [--cuda-images-rev REV] [--cog-repo PATH]
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from typing import Any

from envsolve.derive._context import DeriveContext
from envsolve.derive._toml import Derived

__all__ = ["NeedsCheckout", "derive_cuda_images"]


class NeedsCheckout(Exception):
    """cuda_images is read from a git checkout, not from the package index."""


OSES = ("ubuntu20.04", "ubuntu22.04", "ubuntu24.04")
MIN_CUDA = (11, 8, 0)
FLAVORS = ("base", "runtime", "devel")
TAG_RE = re.compile(r"^(\d+\.\d+\.\d+)-(?:(cudnn\d*)-)?(base|runtime|devel)-(ubuntu\d+\.\d+)$")
UPSTREAM = "gitlab.com/nvidia/container-images/cuda"
COG_FILE = "pkg/config/cuda_compatibility.json"
COG_URL = "https://github.com/replicate/cog/blob/{sha}/" + COG_FILE
FIELDS = (
    "cuda",
    "os",
    "flavors",
    "cudnn_tag",
    "cudnn_flavors",
    "cudnn",
    "cudnn_major",
    "cudnn_package",
    "require_cuda",
    "require_cuda_full",
    "status",
    "note",
    "source",
    "checked",
)


def git(repo: str, *args: str) -> str:
    out = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True)
    return out.stdout


def vkey(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def scan_tags(text: str) -> dict[tuple[str, str], set[tuple[str | None, str]]]:
    """Every in-scope tag named in a tags document: (cuda, os) -> {(cudnn token or None, flavor)}."""
    found: dict[tuple[str, str], set[tuple[str | None, str]]] = {}
    for tag in re.findall(r"`([^`\s]+)`", text):
        m = TAG_RE.match(tag)
        if m and m.group(4) in OSES and vkey(m.group(1)) >= MIN_CUDA:
            found.setdefault((m.group(1), m.group(4)), set()).add((m.group(2), m.group(3)))
    return found


def stage_env(dockerfile: str) -> dict[str, dict[str, str]]:
    """ENV settings per build stage ('' for a stage without a name); later settings win."""
    stages: dict[str, dict[str, str]] = {}
    env = stages.setdefault("", {})
    for line in dockerfile.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].upper() == "FROM":
            name = words[3] if len(words) >= 4 and words[2].upper() == "AS" else ""
            env = stages.setdefault(name, {})
        elif words[0].upper() == "ENV" and len(words) >= 2:
            rest = line.split(None, 1)[1]
            if "=" in words[1]:
                for item in shlex.split(rest):
                    key, _, value = item.partition("=")
                    env[key] = value
            else:
                key, value = rest.split(None, 1)
                env[key] = " ".join(shlex.split(value))
    return stages


def arch_env(dockerfile: str) -> tuple[dict[str, str], dict[str, str]]:
    stages = stage_env(dockerfile)
    amd64 = stages.get("base-amd64") or stages.get("", {})
    return amd64, stages.get("base-arm64", amd64)


def find_dockerfile(paths: set[str], cuda: str, osdir: str, sub: str) -> str | None:
    for root in (f"dist/{cuda}", f"dist/end-of-life/{cuda}"):
        if f"{root}/{osdir}/{sub}/Dockerfile" in paths:
            return f"{root}/{osdir}/{sub}/Dockerfile"
    return None


def derive_repo(repo: str, rev: str, label: str) -> list[dict[str, Any]]:
    sha = git(repo, "rev-parse", f"{rev}^{{commit}}").strip()
    log = git(repo, "log", "-1", "--format=%H %ad %s", "--date=short", sha, "--", "doc", "dist")
    last = log.split(" ", 2)
    paths = set(git(repo, "ls-tree", "-r", "--name-only", sha, "dist").split())
    supported = scan_tags(git(repo, "show", f"{sha}:doc/supported-tags.md"))
    unsupported = scan_tags(git(repo, "show", f"{sha}:doc/unsupported-tags.md"))
    upstream = f"{UPSTREAM} (mirror {label}) at {sha[:12]}"
    checked = (
        f"envsolve matrices refresh read these files with git at commit {sha} of {label} "
        f"(doc/ and dist/ last changed by {last[0]} {last[1]} {last[2].strip()!r})"
    )
    rows = []
    for cuda, os_ in sorted(set(supported) | set(unsupported), key=lambda k: (vkey(k[0]), k[1])):
        in_sup, in_uns = (cuda, os_) in supported, (cuda, os_) in unsupported
        tags = supported.get((cuda, os_), set()) | unsupported.get((cuda, os_), set())
        notes: list[str] = []
        if in_sup and in_uns:
            notes.append("listed in both supported-tags.md and unsupported-tags.md")
        status = "supported" if in_sup else "unsupported"
        doc = "doc/supported-tags.md" if in_sup else "doc/unsupported-tags.md"
        flavors = [f for f in FLAVORS if (None, f) in tags]
        tokens = sorted({t for t, _ in tags if t})
        if len(tokens) > 1:
            notes.append(f"several cuDNN tag tokens listed: {', '.join(tokens)}; row describes {tokens[0]}")
        token = tokens[0] if tokens else None
        cudnn_flavors = [f for f in ("runtime", "devel") if (token, f) in tags] if token else []
        osdir = os_.replace(".", "")

        files = [doc]
        row: dict[str, Any] = {"cuda": cuda, "os": os_, "flavors": flavors or None}
        base = find_dockerfile(paths, cuda, osdir, "base")
        if base:
            files.append(base)
            amd, arm = arch_env(git(repo, "show", f"{sha}:{base}"))
            full = amd.get("NVIDIA_REQUIRE_CUDA")
            if full:
                m = re.search(r"cuda>=\S+", full)
                row["require_cuda"] = m.group(0) if m else None
                row["require_cuda_full"] = full
                if arm.get("NVIDIA_REQUIRE_CUDA", full) != full:
                    row["require_cuda_full_note"] = arm["NVIDIA_REQUIRE_CUDA"]
        elif "base" in flavors:
            notes.append("no base Dockerfile in dist/: NVIDIA_REQUIRE_CUDA unknown")
        if token:
            row["cudnn_tag"] = token
            row["cudnn_flavors"] = cudnn_flavors
            seen: dict[str, tuple[str | None, str | None, str | None]] = {}
            for flavor in cudnn_flavors:
                path = find_dockerfile(paths, cuda, osdir, f"{flavor}/{token}")
                if not path:
                    notes.append(f"no Dockerfile in dist/ for {cuda}-{token}-{flavor}-{os_}")
                    continue
                files.append(path)
                amd, arm = arch_env(git(repo, "show", f"{sha}:{path}"))
                seen[flavor] = (
                    amd.get("NV_CUDNN_VERSION"),
                    amd.get("NV_CUDNN_PACKAGE_NAME"),
                    arm.get("NV_CUDNN_VERSION"),
                )
            values = set(seen.values())
            if len({(v, p) for v, p, _ in values}) > 1:
                notes.append("cuDNN runtime and devel Dockerfiles disagree: " + json.dumps(seen))
            if values:
                version, package, arm_version = sorted(values, key=str)[0]
                m = re.match(r"\d+(?:\.\d+)+", version or "")
                if m:
                    row["cudnn"] = m.group(0)
                    row["cudnn_major"] = int(m.group(0).split(".")[0])
                row["cudnn_package"] = package
                if arm_version != version:
                    notes.append(f"arm64 stage sets NV_CUDNN_VERSION={arm_version}")
        arm_req = row.pop("require_cuda_full_note", None)
        if arm_req:
            notes.append(f"require_cuda_full is the amd64 stage; arm64 sets NVIDIA_REQUIRE_CUDA={arm_req!r}")
        if status == "unsupported":
            notes.append(
                "unsupported-tags.md: the tag may still exist, but NVIDIA deletes EOL tags "
                "from Docker Hub six months after EOL (doc/support-policy.md)"
            )
        row.update(
            status=status,
            note="; ".join(notes) or None,
            source=f"{upstream}: " + ", ".join(files),
            checked=checked,
        )
        rows.append(row)
    return rows


def read_cog(cog: str) -> tuple[dict[tuple[str, str], dict[str, Any]], str, str]:
    sha = git(cog, "rev-parse", "HEAD^{commit}").strip()
    last = git(cog, "log", "-1", "--format=%h %ad", "--date=short", sha, "--", COG_FILE).strip()
    crawl: dict[tuple[str, str], dict[str, Any]] = {}
    for item in json.loads(git(cog, "show", f"{sha}:{COG_FILE}")):
        m = TAG_RE.match(item["Tag"])
        if m and m.group(4) in OSES and vkey(m.group(1)) >= MIN_CUDA and m.group(2):
            crawl[(m.group(1), m.group(4))] = {
                "tag": item["Tag"],
                "token": m.group(2),
                "major": int(item["CuDNN"]),
                "flavor": m.group(3),
            }
    return crawl, sha, last


def merge_cog(rows: list[dict[str, Any]], crawl: dict[tuple[str, str], dict[str, Any]], sha: str,
              last: str) -> list[dict[str, Any]]:
    where = f"replicate/cog {COG_FILE} at {sha} (regenerated {last})"
    by_key = {(r["cuda"], r["os"]): r for r in rows}
    for row in rows:
        hit = crawl.get((row["cuda"], row["os"]))
        if "devel" not in row.get("cudnn_flavors", []):
            if hit:
                extra = f"the crawl in {where} has {hit['tag']}, which the container-images docs do not list"
                row["note"] = "; ".join(x for x in (row.get("note"), extra) if x)
            continue
        tag = f"{row['cuda']}-{row['cudnn_tag']}-devel-{row['os']}"
        if hit and hit["tag"] == tag and hit["major"] == row.get("cudnn_major", hit["major"]):
            row["checked"] += f"; {tag} also found on Docker Hub by the crawl in {where}"
        else:
            extra = (
                f"{tag} is not in the Docker Hub crawl in {where}"
                if not hit
                else (f"the crawl in {where} has {hit['tag']} with cuDNN major {hit['major']}")
            )
            row["note"] = "; ".join(x for x in (row.get("note"), extra) if x)
    for (cuda, os_), hit in crawl.items():
        if (cuda, os_) in by_key:
            continue
        by_key[(cuda, os_)] = {
            "cuda": cuda,
            "os": os_,
            "cudnn_tag": hit["token"],
            "cudnn_flavors": [hit["flavor"]],
            "cudnn_major": hit["major"],
            "note": (
                f"not in the container-images commit read; only {hit['tag']} is evidenced "
                "(cog crawls cuDNN devel tags only). Not verified: the plain base/runtime/devel "
                f"tags, {cuda}-{hit['token']}-runtime-{os_}, the full cuDNN version, its apt package, "
                "NVIDIA_REQUIRE_CUDA and support status"
            ),
            "source": COG_URL.format(sha=sha) + f" (Docker Hub crawl): {hit['tag']}",
            "checked": (
                f"envsolve matrices refresh read {where}; cog's tools/compatgen listed the tag "
                "on Docker Hub and took the cuDNN major from NV_CUDNN_VERSION in the image config"
            ),
        }
    return sorted(by_key.values(), key=lambda r: (vkey(r["cuda"]), r["os"]))


def ordered(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in FIELDS}


def derive_cuda_images(ctx: DeriveContext) -> Derived:
    repo = ctx.options.get("cuda_images_repo")
    if not repo:
        raise NeedsCheckout("cuda_images is read from a git checkout of nvidia/container-images/cuda, not from the "
                            "package index: pass --cuda-images-repo PATH")
    rev = ctx.options.get("cuda_images_rev") or "HEAD"
    label = ctx.options.get("cuda_images_label") or "github.com/abyss-solutions/nvidia_container_images"
    rows = derive_repo(repo, rev, label)
    if ctx.options.get("cog_repo"):
        rows = merge_cog(rows, *read_cog(ctx.options["cog_repo"]))
    command = f"envsolve matrices refresh cuda_images --cuda-images-repo <git dir of {label}>"
    if rev != "HEAD":
        command += f" --cuda-images-rev {rev}"
    if ctx.options.get("cog_repo"):
        command += " --cog-repo <git dir of github.com/replicate/cog>"
    header = f"""generated by envsolve matrices refresh cuda_images, regenerate with:
  {command}
nvidia/cuda tags are <cuda>-[<cudnn_tag>-]<flavor>-<os>; flavors lists
the plain tags, cudnn_flavors the <cuda>-<cudnn_tag>-<flavor>-<os> tags. Absent field = unknown."""
    return Derived("cuda_images", "nvidia/cuda Ubuntu image tags: flavors, cuDNN inside, NVIDIA_REQUIRE_CUDA",
                   ["cuda", "os"], "cuda", header, [ordered(r) for r in rows])
