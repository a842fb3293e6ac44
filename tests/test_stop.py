"""Stop requests (envsolve.stop): SIGTERM and Ctrl-C raise KeyboardInterrupt once and are remembered, so a
failure that a library made of the interrupt is still read as the stop; `python -m envsolve` exits 130 even
when the interrupt ended code that CPython ran from a string."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from envsolve import stop
from envsolve.cli import main


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_is_a_remembered_interrupt_and_handlers_come_back(signum: int) -> None:
    before = signal.getsignal(signum)
    with pytest.raises(KeyboardInterrupt), stop.on_signals():
        assert not stop.requested()
        os.kill(os.getpid(), signum)
    assert stop.requested()
    with pytest.raises(KeyboardInterrupt):
        stop.check()
    assert signal.getsignal(signum) is before


def test_a_new_block_starts_without_a_request() -> None:
    with pytest.raises(KeyboardInterrupt), stop.on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
    with stop.on_signals():
        assert not stop.requested()
        stop.check()


def test_an_error_after_a_stop_request_is_the_interrupt(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A library that caught the KeyboardInterrupt and raised its own error: the run says interrupted, 130."""
    import envsolve.commands.plan as plan_command

    def swallowed(args: object) -> int:
        with contextlib.suppress(KeyboardInterrupt):  # as a bare `except:` in a dependency would
            os.kill(os.getpid(), signal.SIGTERM)
        raise RuntimeError("partially imported module")

    monkeypatch.setattr(plan_command, "run", swallowed)
    assert main(["plan"]) == stop.EXIT_CODE
    captured = capsys.readouterr()
    assert captured.err.strip() == "interrupted" and "Traceback" not in captured.err


def test_python_m_exits_with_our_code_after_an_interrupt_inside_exec(tmp_path: Path) -> None:
    """CPython's flag for an interrupt that ended an exec'd string would make `python -m` die by SIGINT (-2)."""
    (tmp_path / "probe.py").write_text(
        "import sys\nfrom envsolve import stop\n"
        "try:\n    exec('raise KeyboardInterrupt')\nexcept KeyboardInterrupt:\n    pass\n"
        "if sys.argv[1] == 'forget':\n    stop.forget_interrupt_in_exec()\n"
        "raise SystemExit(stop.EXIT_CODE)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    fixed = subprocess.run([sys.executable, "-m", "probe", "forget"], env=env, cwd=tmp_path, timeout=60)
    assert fixed.returncode == stop.EXIT_CODE
    plain = subprocess.run([sys.executable, "-m", "probe", "keep"], env=env, cwd=tmp_path, timeout=60)
    if sys.implementation.name == "cpython" and sys.version_info[:2] in ((3, 10), (3, 11), (3, 12)):
        assert plain.returncode == -signal.SIGINT  # what the workaround is for, on the interpreters we ship to


def test_a_signal_the_parent_ignored_stays_ignored() -> None:
    code = ("import os, signal\nfrom envsolve import stop\nwith stop.on_signals():\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n    assert not stop.requested()\nprint('still here')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert result.returncode == 0 and result.stdout == "still here\n", result.stderr
