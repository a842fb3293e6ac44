"""A stop request (SIGTERM from `kill`, `docker stop` or a CI timeout; Ctrl-C) as one fact the run can ask about.

The first signal raises KeyboardInterrupt where the main thread is, so a long transcription stops at once and
atomic writes remove their temporary files on the way out. That exception can land inside a library that
swallows it or turns it into its own error (a bare `except:` around an import, a C extension's callback): the
failure that follows is then the stop, not a broken input file, and `requested()` says so to whoever classifies
it. A second signal while stopping ends the process at once, as a second Ctrl-C does in most tools; what it
leaves (a temporary file) is removed by the next write into that folder (envsolve.atomic).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_CODE = 130  # 128 + SIGINT: what shells and CI runners read as "interrupted"
SIGNALS = (signal.SIGTERM, signal.SIGINT)

_requested = threading.Event()


def requested() -> bool:
    """Whether a stop signal arrived during this run."""
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt when a stop was requested: a loop that got past a swallowed interrupt stops here."""
    if _requested.is_set():
        raise KeyboardInterrupt


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _requested.is_set():
        os.write(2, b"interrupted again: stopping without cleaning up\n")
        os._exit(EXIT_CODE)
    _requested.set()
    raise KeyboardInterrupt


@contextmanager
def on_signals(afterwards: signal.Handlers | None = None) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT are stop requests. Afterwards the previous handlers come back, or
    `afterwards` (SIG_IGN for a process that is about to exit with its result: a signal then would only turn
    that result into a death by signal). Only the main thread can own signal handlers; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()
    # A signal the parent set to be ignored stays ignored (a job started with `&` from a script ignores
    # Ctrl-C, as Python itself leaves it).
    previous = {signum: signal.signal(signum, _on_signal) for signum in SIGNALS
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if afterwards is None else afterwards)


def forget_interrupt_in_exec() -> None:
    """Clear CPython's record of a KeyboardInterrupt that ended an exec'd string.

    CPython sets that flag when code run from a string (dataclasses, namedtuple and typing build methods with
    exec) ends in KeyboardInterrupt, even when a caller catches it; under `python -m`, Py_RunMain then kills
    the process with SIGINT (exit -2) instead of exiting with the code we return (Modules/main.c,
    pymain_run_module and Py_RunMain; bpo-1054041). Every string exec resets the flag when it starts, so an
    empty one clears it. The process entry calls it last, whatever the code: a library may have swallowed the
    interrupt and let the run finish.
    """
    if sys.implementation.name == "cpython":
        exec("")  # a constant empty string: see above
