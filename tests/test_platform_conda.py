"""Every rendered environment.yml through conda-lock 4.0.3's own parser (the `platforms` extra): the file the
printed `conda-lock lock -f environment.yml` reads. The PyTorch index is a pip repository there, every pin of the
plan is a pip dependency, python/pip/ffmpeg are conda dependencies. Not run here: solving (conda-forge is not
reachable, and no conda solver is installed), `conda env create`. conda-lock maps PyPI names to conda names with a
table it downloads from GitHub; the tests give it a local table instead (its own --pypi_to_conda_lookup_file
mechanism), holding the one name it looks up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from conftest import every_host
from envsolve.cli import main
from envsolve.render.kinds.environment import dev_environment

environment_yaml = pytest.importorskip("conda_lock.src_parser.environment_yaml",
                                       reason="the platforms extra (conda-lock) is not installed")
ROOT = Path(__file__).resolve().parent.parent
PYPI = "https://pypi.org/simple"


def _mapping(tmp: Path) -> str:
    path = tmp / "pypi-mapping.json"
    path.write_text(json.dumps({"pip": {"conda_name": "pip", "conda_forge": "pip", "pypi_name": "pip"}}))
    return str(path)


def _parse(path: Path, tmp: Path, platform: str = "linux-64") -> Any:
    return environment_yaml.parse_environment_file(path, [platform], _mapping(tmp))


def _plans() -> list[tuple[str, str]]:
    return [(h, w) for h in every_host() for w in ("pipeline", "whisperx", "faster-whisper")]


@pytest.mark.parametrize(("host", "workload"), _plans(), ids=[f"{h}:{w}" for h, w in _plans()])
def test_conda_lock_reads_every_rendered_environment(host: str, workload: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    capsys.readouterr()
    if main(["plan", "--host", host, "--workload", workload, "--json"]) != 0:
        return  # no stack fits: nothing is rendered
    plan = json.loads(capsys.readouterr().out)
    assert main(["render", "environment", "--host", host, "--workload", workload, "-o", str(tmp_path)]) == 0
    platform = {"x86_64": "linux-64", "aarch64": "linux-aarch64"}[plan["target"]["arch"]]
    spec = _parse(tmp_path / "environment.yml", tmp_path, platform)
    assert [r.url for r in spec.pip_repositories] == sorted({p["index"] for p in plan["packages"]} - {PYPI})
    deps = spec.dependencies[platform]
    pip = {canonicalize_name(d.name): d for d in deps if d.manager == "pip"}
    for package in plan["packages"]:
        dependency = pip[canonicalize_name(package["name"])]
        expected = f"=={package['version']}" if package["exact"] else package["version"]
        assert SpecifierSet(dependency.version) == SpecifierSet(expected), (dependency, package)
    assert {"python", "pip"} <= {d.name for d in deps if d.manager == "conda"}


def test_the_index_as_a_pip_line_is_what_conda_lock_refused(tmp_path: Path) -> None:
    """Why pip-repositories: the former rendering put the index in the pip list, which conda-lock's parser
    takes for a requirement and refuses (13 of 29 rendered files in the report)."""
    from packaging.requirements import InvalidRequirement

    old = tmp_path / "environment.yml"
    old.write_text("name: e\nchannels: [conda-forge]\ndependencies:\n  - python=3.10\n  - pip\n  - pip:\n"
                   "      - --extra-index-url https://download.pytorch.org/whl/cu126\n      - torch==2.14.1+cu126\n")
    with pytest.raises(InvalidRequirement):
        _parse(old, tmp_path)


def test_the_repository_environment_parses_too(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(dev_environment())
    spec = _parse(path, tmp_path)
    assert spec.pip_repositories == [] and {"python", "pip", "sox"} <= {d.name for d in spec.dependencies["linux-64"]}
