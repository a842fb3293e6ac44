"""One error type for everything a user can cause.

Shaped after pip's DiagnosticPipError: a short kebab-case reference, what went wrong, the context,
and a hint that says exactly what to do. The CLI prints these as one paragraph and exits non-zero;
any other exception reaching the CLI is a bug in envsolve.
"""

from __future__ import annotations


class EnvsolveError(Exception):
    """A problem the user can act on."""

    exit_code = 2
    # One paragraph is one line: a newline in a value (a path) must not split it. An explanation in layers
    # (no consistent stack) keeps its own line breaks.
    multiline = False

    def __init__(
        self,
        reference: str,
        message: str,
        *,
        context: str | None = None,
        hint: str | None = None,
        link: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reference = reference
        self.message = message
        self.context = context
        self.hint = hint
        self.link = link
        if exit_code is not None:
            self.exit_code = exit_code

    def render(self) -> str:
        """The one-paragraph text the CLI prints."""
        parts = [f"error[{self.reference}]: {self.message}"]
        if self.context:
            parts.append(self.context)
        if self.hint:
            parts.append(f"Fix: {self.hint}")
        if self.link:
            parts.append(f"See {self.link}")
        return " ".join(part.rstrip() for part in parts)

    def __str__(self) -> str:
        return self.render()
