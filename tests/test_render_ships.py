"""What rendered files need to run where they are used (issue: rendered files that run): envsolve's own wheel
written beside them, --envsolve-spec that pip can never read as an option, the lock rendered with the kinds that
read it and protected by --check, envsolve's own dependencies for the target's Python, the pip that resolving
needs, and the model `envsolve run` takes when none is named. Hermetic: the committed locks under
tests/data/render stand for a resolution."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from envsolve.cli import main
from envsolve.errors import EnvsolveError
from envsolve.render.lock import check_pip
from envsolve.render.plans import envsolve_roots
from envsolve.render.selfwheel import build_wheel, envsolve_source, wheel_name

DATA = Path(__file__).parent / "data" / "render"
PLAN = DATA / "cpu-faster-whisper.plan.json"
WHEEL = wheel_name()


def _folder(tmp_path: Path, name: str = "cpu-faster-whisper") -> Path:
    out = tmp_path / "out"
    shutil.copytree(DATA / name, out)
    return out


def test_the_wheel_is_reproducible_and_installs_as_envsolve() -> None:
    first, second = build_wheel(), build_wheel()
    assert first == second
    archive = zipfile.ZipFile(io.BytesIO(first))
    names = archive.namelist()
    for name in ("envsolve/cli.py", "envsolve/render/selfwheel.py", "envsolve/matrices/torch.toml"):
        assert name in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert archive.read(f"envsolve-{WHEEL.split('-')[1]}.dist-info/METADATA").startswith(b"Metadata-Version")


def test_every_file_kind_installs_envsolve_from_the_wheel_beside_it(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = _folder(tmp_path)
    assert main(["render", "dockerfile", "script", "environment", "--plan", str(PLAN), "-o", str(out)]) == 0
    assert "resolved now" not in capsys.readouterr().err  # the committed lock is this plan's: kept
    assert (out / WHEEL).read_bytes() == build_wheel()
    dockerfile = (out / "Dockerfile").read_text()
    assert f"COPY requirements.lock requirements-index.tx[t] {WHEEL} /tmp/envsolve/" in dockerfile
    assert f"ARG ENVSOLVE_SPEC=/tmp/envsolve/{WHEEL}" in dockerfile
    assert f"!{WHEEL}" in (out / ".dockerignore").read_text().splitlines()
    assert f'ENVSOLVE_SPEC="${{ENVSOLVE_SPEC:-$LOCK_DIR/{WHEEL}}}"' in (out / "install.sh").read_text()
    assert f"python -m pip install ./{WHEEL}" in (out / "environment.yml").read_text()  # its own step (conda-lock)
    assert main(["render", "dockerfile", "script", "environment", "--plan", str(PLAN), "-o", str(out), "--check"]) == 0


def test_envsolve_spec_takes_a_release_a_url_or_a_wheel_and_never_a_pip_option(tmp_path: Path) -> None:
    for hostile in ("-r/etc/passwd", "-e.", "--no-index", "-rrequirements.txt", str(tmp_path), "envsolve; rm -rf /",
                    "http://example.com/envsolve-1.0-py3-none-any.whl", "other-1.0-py3-none-any.whl"):
        with pytest.raises(EnvsolveError) as refused:
            envsolve_source(hostile)
        assert refused.value.reference == "render-bad-value" and refused.value.exit_code == 2
    assert envsolve_source("envsolve==0.2.0").spec == "envsolve==0.2.0"
    url = "https://files.example.org/packages/envsolve-0.2.0-py3-none-any.whl"
    assert envsolve_source(url).spec == url
    wheel = tmp_path / "dist" / "envsolve-0.2.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(build_wheel())
    out = _folder(tmp_path)
    assert main(["render", "dockerfile", "--plan", str(PLAN), "-o", str(out), "--envsolve-spec", str(wheel)]) == 0
    assert (out / wheel.name).read_bytes() == wheel.read_bytes()  # copied in, so the build context holds it
    assert f"ARG ENVSOLVE_SPEC=/tmp/envsolve/{wheel.name}" in (out / "Dockerfile").read_text()
    released = _folder(tmp_path / "released")
    assert main(["render", "dockerfile", "--plan", str(PLAN), "-o", str(released), "--envsolve-spec",
                 "envsolve==0.2.0"]) == 0
    assert "ARG ENVSOLVE_SPEC=envsolve==0.2.0" in (released / "Dockerfile").read_text()
    assert not list(released.glob("*.whl"))  # a released envsolve comes from the index, no wheel beside


LOCK_EDITS = {
    "a package removed": lambda t: t.replace("idna==", "#idna==", 1),
    "an index added": lambda t: t.replace("--require-hashes\n", "--require-hashes\n--extra-index-url "
                                          "https://evil.example/simple\n", 1),
    "--require-hashes removed": lambda t: t.replace("--require-hashes\n", "", 1),
    "a hash changed": lambda t: t.replace("--hash=sha256:8", "--hash=sha256:9", 1),
    "a transitive version changed": lambda t: t.replace("idna==3.21", "idna==3.20", 1),
}


@pytest.mark.parametrize("edit", sorted(LOCK_EDITS))
def test_check_catches_every_edit_to_the_lock(edit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _folder(tmp_path)
    args = ["render", "lock", "--plan", str(PLAN), "-o", str(out), "--check"]
    assert main(args) == 0
    lock = out / "requirements.lock"
    edited = LOCK_EDITS[edit](lock.read_text())
    assert edited != lock.read_text(), edit
    lock.write_text(edited)
    capsys.readouterr()
    assert main(args) == 1, edit
    assert "requirements.lock" in capsys.readouterr().out


def test_check_catches_a_swapped_index_url(tmp_path: Path) -> None:
    """A plan whose torch comes from an index that could not be reached: requirements-index.txt names it."""
    from envsolve.cli import build_parser
    from envsolve.commands.render import render_context
    from envsolve.render.contract import Package
    from envsolve.render.files import write_outputs
    from envsolve.render.kinds import lock as lock_kind

    plan = json.loads(PLAN.read_text())
    index = "https://download.pytorch.org/whl/cpu"
    plan["packages"].append({"name": "torch", "version": "2.11.0+cpu", "index": index, "exact": True})
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = _folder(tmp_path)
    args = ["render", "lock", "--plan", str(tmp_path / "plan.json"), "-o", str(out)]
    context = render_context(build_parser().parse_args(args))
    committed = lock_kind.parse(render_context(build_parser().parse_args(
        ["render", "lock", "--plan", str(PLAN), "-o", str(out)])))
    assert committed is not None
    from dataclasses import replace

    with_index = replace(committed, unhashed=(Package("torch", "2.11.0+cpu", index, True),), unreachable=(index,))
    write_outputs(out, lock_kind.outputs(context, with_index))
    assert main([*args, "--check"]) == 0
    index_file = out / "requirements-index.txt"
    index_file.write_text(index_file.read_text().replace(index, "https://evil.example/whl/cpu"))
    assert main([*args, "--check"]) == 1


def test_the_lock_roots_are_the_targets_envsolve_dependencies() -> None:
    assert any(r.startswith("tomli") for r in envsolve_roots("3.10", "x86_64"))  # Ubuntu 22.04's Python
    assert not any(r.startswith("tomli") for r in envsolve_roots("3.11", "x86_64"))
    assert any(r.startswith("pip>=") for r in envsolve_roots("3.11", "x86_64"))


def test_a_fresh_venvs_pip_is_named_as_the_cause(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    version = subprocess.run([str(venv / "bin/python"), "-m", "pip", "--version"], capture_output=True, text=True,
                             timeout=60).stdout.split()[1]
    if tuple(int(p) for p in version.split(".")[:2]) >= (23, 3):
        pytest.skip(f"this Python's ensurepip brings pip {version}, new enough")
    with pytest.raises(EnvsolveError) as refused:
        check_pip(str(venv / "bin/python"))
    assert refused.value.reference == "pip-too-old" and version in refused.value.message
    assert "pip install --upgrade 'pip>=23.3'" in refused.value.hint
    check_pip(sys.executable)  # envsolve's own environment has the pip it declares


def _every_host() -> list[str]:
    examples = Path(__file__).resolve().parent.parent / "envsolve" / "data" / "examples"
    return [f"example:{p.stem}" for p in sorted(examples.glob("*.json"))] + [
        str(p) for p in sorted((Path(__file__).parent / "hosts").glob("*.json"))]


@pytest.mark.parametrize("host", _every_host(), ids=lambda h: Path(h).stem)
def test_each_kind_alone_brings_the_lock_it_reads_and_envsolve(host: str, tmp_path: Path) -> None:
    """Any kind rendered alone, for every built-in example and test host: a kind that installs from the lock
    brings the lock (seen here through --check, which reads it instead of resolving), and a kind that installs
    envsolve brings its wheel and names it, never an envsolve release no index has."""
    from envsolve.cli import build_parser
    from envsolve.commands.render import render_context
    from envsolve.render import KINDS
    from envsolve.render.files import render_kinds
    from envsolve.resolver.failure import NoSolution

    for kind in KINDS:
        args = build_parser().parse_args(["render", kind.name, "--host", host, "-o", str(tmp_path), "--check"])
        try:
            context = render_context(args)
        except NoSolution:
            return  # no stack fits this host: refused, nothing rendered
        outputs, skipped = render_kinds([kind.name], context)
        if skipped:
            continue
        paths = {o.path for o in outputs}
        assert ("requirements.lock" in paths) == (kind.reads_lock or kind.name == "lock"), kind.name
        assert (WHEEL in paths) == kind.ships_envsolve, kind.name
        for output in outputs:
            if output.data is None and kind.name not in ("colab", "kaggle"):  # cells cannot carry a file
                assert f"envsolve=={WHEEL.split('-')[1]}" not in output.text, (kind.name, output.path)
