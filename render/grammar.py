"""The grammar every value from outside must match before a template sees it.

Templates render with autoescaping off (a Dockerfile, a shell script and a requirements file have no one
escaping rule), so safety comes from here: a value reaches a template only as one of these shapes, and
none of them can hold a quote, a newline, `$(...)`, a backtick, a semicolon or a Jinja delimiter. A value
that does not match is refused with an error naming the field, never cleaned up and used.
"""

from __future__ import annotations

import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envsolve.errors import EnvsolveError
from envsolve.terminal import printable

__all__ = ["GRAMMARS", "checked"]

# Each grammar: a full-match pattern and how a person would describe it in an error.
GRAMMARS: dict[str, tuple[re.Pattern[str], str]] = {
    # PEP 508 names (the normalised or original spelling: dots, dashes and underscores between letters).
    "package": (re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?"), "a PEP 508 package name"),
    # PEP 440 versions with an optional local label (2.5.1+cu121); checked again with packaging below.
    "version": (re.compile(r"[0-9][0-9A-Za-z.+!_-]{0,63}"), "a PEP 440 version such as 2.5.1+cu121"),
    "specifier": (re.compile(r"[<>=!~][0-9A-Za-z.,<>=!~*+_-]{1,120}"), "a PEP 440 specifier such as >=0.13,<1.0"),
    # https URLs of package indexes: host and path characters only, no query, no credentials.
    "url": (re.compile(r"https://[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%-]*){0,16}"),
            "an https index URL without credentials or query"),
    # Docker references: [registry/]repo[/more]:tag, optionally @sha256 digest (the distribution spec's grammar).
    "image": (re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
                         r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:@sha256:[0-9a-f]{64})?"),
              "a Docker image reference with a tag (repo:tag, optionally @sha256:...)"),
    "python": (re.compile(r"3\.[0-9]{1,2}"), "a Python version X.Y"),
    "env-name": (re.compile(r"[A-Z_][A-Z0-9_]{0,63}"), "an environment variable name (A-Z, 0-9, _)"),
    # Environment values the plan sets: paths and flags; $SITE_PACKAGES is the one placeholder allowed.
    "env-value": (re.compile(r"(?:\$SITE_PACKAGES|[A-Za-z0-9_./,=+-]){0,512}"),
                  "letters, digits and . / , = + - _ (and $SITE_PACKAGES)"),
    "path": (re.compile(r"(?:\$SITE_PACKAGES|[A-Za-z0-9_./+-]){1,512}"), "a path of letters, digits and . / + - _"),
    "word": (re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}"), "a word of letters, digits and . + - _"),
    # Names for conda environments, Modal apps, notebook cells.
    "name": (re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"), "a name of letters, digits and . - _"),
    # What pip installs envsolve from where the rendered folder is not at hand: a requirement or a wheel's URL,
    # never a path (pip would read "-r/etc/passwd" as an option); a wheel in the folder has its own grammar.
    "envsolve-spec": (re.compile(r"envsolve(?:\[[a-z,-]+\])?(?:(?:==|>=|<=|~=|!=|<|>)[0-9][0-9A-Za-z.*+!-]*)?|"
                                 r"https://[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%+-]+){1,16}\.whl"),
                      "envsolve[==VERSION] or the https URL of an envsolve wheel"),
    "wheel": (re.compile(r"envsolve-[0-9][0-9A-Za-z.+_]{0,62}-py3-none-any\.whl"), "an envsolve wheel's file name"),
    "sha256": (re.compile(r"[0-9a-f]{64}"), "a sha256 hex digest"),
    # Regenerate commands written into headers and workflow `run:` lines: argv words, each re-quoted by shlex.
    # Spaces are words' own (`--plan "my plan.json"`, `-c "ctranslate2 <4.5"`, which plan accepts); ": " is not,
    # since it would end a YAML plain scalar, and neither are spaces around a word. % is a wheel path's %20.
    "argument": (re.compile(r"(?!.*: )(?! )(?!.* $)[A-Za-z0-9_./:=,<>!~+@% -]{1,512}"),
                 "letters, digits, spaces and . / : = , < > ! ~ + @ % - _"),
}


def checked(kind: str, value: object, field: str, *, hint: str | None = None) -> str:
    """`value` as a str when it matches grammar `kind`, else EnvsolveError `render-bad-value` naming `field`
    (with `hint` as the fix when the default, regenerating the plan, is not it)."""
    pattern, description = GRAMMARS[kind]
    text = value if isinstance(value, str) else None
    if text is None or not pattern.fullmatch(text) or not _semantic(kind, text):
        shown = printable(repr(value)[:80])
        raise EnvsolveError(
            "render-bad-value", f"{field} is {shown}, which is not {description}.",
            context="Values from a plan file, a host snapshot or a flag reach rendered Dockerfiles and shell "
            "scripts only when they match their grammar; nothing is escaped or guessed.",
            hint=hint or "Regenerate the plan with `envsolve plan --json` (do not edit it by hand), or correct the "
            "flag.")
    return text


def _semantic(kind: str, text: str) -> bool:
    """What a pattern cannot say: the version and specifier parse as PEP 440."""
    try:
        if kind == "version":
            Version(text)
        elif kind == "specifier":
            SpecifierSet(text)
    except (InvalidVersion, InvalidSpecifier):
        return False
    return True
