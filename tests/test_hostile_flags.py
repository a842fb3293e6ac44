"""Hostile command lines: every out-of-range or meaningless option is a usage error (exit 2) before any work,
with one line naming the option; the ranges are the ones the README states."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envsolve.commands.run import RANGES, TEXT_LIMITS
from hostile import assert_clean, envsolve, one_line_error

ROOT = Path(__file__).resolve().parent.parent
RUN = ("run", "missing.wav", "--no-diarize")
BIG = "9" * 5000

# (argv, what the one-line error must say)
REFUSED = [
    ((*RUN, "--threads", "100000"), "--threads: 100000 is outside 0..256"),
    ((*RUN, "--threads", "5000"), "outside 0..256"),
    ((*RUN, "--threads", "-5"), "outside 0..256"),
    ((*RUN, "--threads", BIG), "--threads"),
    ((*RUN, "--beam-size", "100000"), "--beam-size"),
    ((*RUN, "--beam-size", "0"), "--beam-size"),
    ((*RUN, "--batch-size", "0"), "--batch-size"),
    ((*RUN, "--batch-size", "1e9"), "not a whole number"),
    ((*RUN, "--speakers", "65"), "--speakers"),
    ((*RUN, "--min-speakers", "-1"), "--min-speakers"),
    ((*RUN, "--max-speakers", "100000"), "--max-speakers"),
    ((*RUN, "--initial-prompt", "a" * 100_000), "at most 2000"),
    ((*RUN, "--hotwords", "b" * 2001), "--hotwords"),
    (("matrices", "verify", "--max-age", "nan"), "--max-age"),
    (("matrices", "verify", "--max-age", "-1"), "--max-age"),
    (("matrices", "verify", "--max-age", "inf"), "--max-age"),
    (("plan", "--host", "example:colab-l4", "--compute-type", "bogus"), "no compute type 'bogus'"),
    (("doctor", "--host", "example:colab-l4", "--device", "bogus", "--compute-type", "bogus"), "'bogus'"),
    (("doctor", "--host", "example:colab-l4", "--compute-type", "bogus"), "no compute type 'bogus'"),
    (("plan", "--host", "example:colab-l4", "--python", "abc"), "--python"),
    (("plan", "--host", "example:colab-l4", "--python", "3." + BIG), "--python"),
    (("plan", "--host", "example:colab-l4", "-c", "numpy<2"), "numpy"),
    (("plan", "--host", "example:colab-l4", "-c", "torch @ https://example.com/torch.whl"), "URL requirement"),
    (("plan", "--host", "example:colab-l4", "--workload", "faster-whisper", "-c", "torchaudio<2.5"),
     "does not plan torchaudio"),
    (("plan", "--host", "example:colab-l4", "-c", 'ctranslate2<4.5; python_version<"3"'), "marker"),
    (("plan", "--host", "example:colab-l4", "-c", "torch[foo]"), "extras"),
    (("plan", "--host", "example:colab-l4", "-c", "torch==" + BIG), "longer than 200"),
    (("plan", "--host", "example:colab-l4", "-c", "torch==1" + "1" * 12), "10 or more digits"),
    (("plan", "--host", "example:colab-l4", "-c", "torch==2.5\n\x1b[2J"), "bad-constraint"),
    # An unset variable (`--host "$SNAPSHOT"`) must not quietly plan for this machine instead (issue 21).
    (("plan", "--host", ""), "--host is empty"),
    (("doctor", "--host", " "), "--host is empty"),
    (("render", "requirements", "--host", "", "-o", "out"), "--host is empty"),
]


@pytest.mark.parametrize(("argv", "says"), REFUSED, ids=[" ".join(a)[:60] for a, _ in REFUSED])
def test_refused_as_usage(argv: tuple[str, ...], says: str, tmp_path: Path) -> None:
    result = envsolve(*argv, cwd=tmp_path, timeout=60)
    assert_clean(result, 2)
    assert says in one_line_error(result)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_the_ranges_are_in_the_readme_and_in_help() -> None:
    readme = (ROOT / "README.md").read_text()
    help_text = " ".join(envsolve("run", "--help").stdout.split())
    for option, (low, high) in RANGES.items():
        assert re.search(rf"`run [^|]*{option}`[^|]*\| {low}\.\.{high}", readme), option
        assert f"{low}..{high}" in help_text
    for option, limit in TEXT_LIMITS.items():
        assert re.search(rf"`run {option}`[^|]*\| {limit} characters", readme), option


def test_the_readme_states_the_exit_codes() -> None:
    section = (ROOT / "README.md").read_text().split("## Limits and exit codes")[1].split("\n## ")[0]
    for code in ("0", "1", "2", "130"):
        assert f"| {code} |" in section
    assert "16 MiB" in section


def test_a_valid_constraint_still_plans() -> None:
    assert_clean(envsolve("plan", "--host", "example:colab-l4", "-c", "ctranslate2<4.5"), 0)
