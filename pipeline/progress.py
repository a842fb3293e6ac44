"""Per-stage progress for `envsolve run`: a bar with ETA on a terminal, plain lines in logs, JSON lines for
programs.

Everything goes to stderr (stdout carries the transcript and the summary, so it stays pipeable).
In JSON mode each line is one object with at least `event`, `file`, `stage`, `fraction` and
`eta_s` for progress events; `note` and `file` events carry messages and per-file results.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from envsolve.terminal import printable

__all__ = ["MODES", "Progress", "make_progress"]

MODES = ("auto", "json", "none")
_BAR = 24
_TTY_INTERVAL_S = 0.1  # redraw at most ten times a second; more only costs CPU over ssh


class Progress:
    """Reports stages of one file at a time. The base class is silent (`--progress none`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.file = ""
        self.stage = ""
        self.started = 0.0
        self.fraction = 0.0

    def start(self, file: str, stage: str) -> None:
        self.file, self.stage, self.started, self.fraction = file, stage, time.monotonic(), 0.0
        self._show(final=False)

    def update(self, fraction: float) -> None:
        self.fraction = min(1.0, max(self.fraction, fraction))  # never run backwards
        self._show(final=False)

    def finish(self) -> None:
        self.fraction = 1.0
        self._show(final=True)

    def note(self, message: str) -> None:
        """A message worth a line of its own (a warning, a decision the user should know about)."""

    def result(self, record: dict[str, Any]) -> None:
        """One file's outcome, for machine consumers."""

    def eta(self) -> float | None:
        """Seconds left in the stage, by linear extrapolation; None before there is anything to go on."""
        if not 0 < self.fraction < 1:
            return 0.0 if self.fraction >= 1 else None
        return (time.monotonic() - self.started) * (1 - self.fraction) / self.fraction

    def _show(self, *, final: bool) -> None:
        pass


class _Plain(Progress):
    """One line per finished stage: fine in CI logs and files, where carriage returns make a mess."""

    def _show(self, *, final: bool) -> None:
        if final:
            print(printable(f"{self.file}: {self.stage} done in {time.monotonic() - self.started:.2f} s"),
                  file=self.stream)

    def note(self, message: str) -> None:
        # File names and messages are escaped: an input named with an escape sequence must not drive the terminal.
        print(printable(f"{self.file}: {message}" if self.file else message), file=self.stream)


class _Quiet(_Plain):
    """No progress, but notes still print: they say what was skipped or left out, and why."""

    def _show(self, *, final: bool) -> None:
        pass


class _Tty(_Plain):
    """A redrawn bar with ETA, kept on one line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.drawn = 0.0

    def _show(self, *, final: bool) -> None:
        now = time.monotonic()
        if not final and now - self.drawn < _TTY_INTERVAL_S:
            return
        self.drawn = now
        filled = round(self.fraction * _BAR)
        eta = self.eta()
        tail = f"{now - self.started:.1f} s" if final else (f"ETA {eta:.0f} s" if eta is not None else "")
        bar = f"[{'#' * filled}{'.' * (_BAR - filled)}]"
        line = f"{printable(self.file)}: {self.stage:<9} {bar} {self.fraction:4.0%} {tail}"
        self.stream.write("\r\x1b[K" + line + ("\n" if final else ""))
        self.stream.flush()

    def note(self, message: str) -> None:
        self.stream.write("\r\x1b[K")
        super().note(message)


class _Json(Progress):
    def _emit(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()

    def _show(self, *, final: bool) -> None:
        eta = self.eta()
        self._emit({"event": "progress", "file": self.file, "stage": self.stage, "fraction": round(self.fraction, 4),
                    "eta_s": None if eta is None else round(eta, 3),
                    "elapsed_s": round(time.monotonic() - self.started, 3)})

    def note(self, message: str) -> None:
        self._emit({"event": "note", "file": self.file, "message": message})

    def result(self, record: dict[str, Any]) -> None:
        self._emit({"event": "file", **record})


def make_progress(mode: str, stream: TextIO | None = None) -> Progress:
    """`auto`: a bar on a terminal, plain lines otherwise; `json`: JSON lines; `none`: notes only."""
    stream = stream if stream is not None else sys.stderr
    if mode == "json":
        return _Json(stream)
    if mode == "none":
        return _Quiet(stream)
    isatty = getattr(stream, "isatty", None)
    return _Tty(stream) if isatty is not None and isatty() else _Plain(stream)
