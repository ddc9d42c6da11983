"""Options that several commands share, and the parsing of their values."""

from __future__ import annotations

from typing import Annotated, Final

import typer

from eventvault.cli.errors import CommandLineError
from eventvault.cli.stores import URL_ENV
from eventvault.types import ExpectedVersion, StreamState

__all__ = [
    "EXPECTED_VERSION_WORDS",
    "JsonOutput",
    "Limit",
    "StoreURL",
    "parse_expected_version",
]

StoreURL = Annotated[
    str,
    typer.Option(
        "--url",
        "-u",
        envvar=URL_ENV,
        help="The store: a file path, sqlite:///path.db, memory:// or postgresql://user@host/db.",
        show_envvar=True,
    ),
]
"""`--url`: which store a command opens."""

JsonOutput = Annotated[
    bool,
    typer.Option("--json", help="Print JSON Lines (one JSON object per line) instead of a table."),
]
"""`--json`: machine-readable output."""

Limit = Annotated[
    int | None,
    typer.Option("--limit", "-n", min=0, help="Show at most this many events."),
]
"""`--limit`: the most events to show."""

EXPECTED_VERSION_WORDS: Final = {
    "any": StreamState.ANY,
    "no-stream": StreamState.NO_STREAM,
    "exists": StreamState.STREAM_EXISTS,
}
"""The words `--expected-version` takes besides a stream position."""


def parse_expected_version(text: str) -> ExpectedVersion:
    """Read `--expected-version`: `any`, `no-stream`, `exists`, or a stream position.

    Args:
        text: the option's value.

    Returns:
        The `StreamState`, or the position as an int.

    Raises:
        CommandLineError: the value is none of these.
    """
    word = EXPECTED_VERSION_WORDS.get(text.strip().lower())
    if word is not None:
        return word
    try:
        position = int(text)
    except ValueError:
        position = -1
    if position < 0:
        raise CommandLineError(
            "--expected-version",
            f"must be any, no-stream, exists or a stream position (an int >= 0), not {text!r}",
        )
    return position
