"""The removals the law requires, each recorded in `$removals` (who, when, what, why): `delete`,
`truncate`, `retention`, `retain` and `forget`.

A removal hides events from every read and (but a soft delete) erases their payloads, keeping each
event's hash, so every hash chain and audit proof still verifies; `forget` destroys a subject's
key, erasing the personal fields sealed with it. docs/removal.md is the guide.
"""

from __future__ import annotations

import getpass
import re
import socket
from datetime import timedelta
from typing import Annotated, Final

import typer
from rich.text import Text

from eventvault.audit import SubjectKeys
from eventvault.cli.errors import CommandLineError
from eventvault.cli.options import StoreURL, parse_expected_version
from eventvault.cli.render import stderr_console, stdout_console
from eventvault.cli.stores import DEFAULT_URL, open_existing_store, open_store
from eventvault.types import Removal, StreamMetadata

__all__ = ["delete", "forget", "retain", "retention", "truncate"]

Reason = Annotated[
    str,
    typer.Option(
        "--reason",
        "-r",
        help="Why (a ticket, an erasure request's reference): recorded with the removal.",
        show_default=False,
    ),
]


def default_actor() -> str:
    """Who runs the command, when --actor is not given: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


Actor = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who removes (recorded); default: the user and host running the command.",
        show_default=False,
    ),
]

_DURATION: Final = re.compile(r"(\d+)\s*([smhdw])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> timedelta:
    """Read a duration: a number and a unit, `s`, `m`, `h`, `d` or `w` (`30d`, `12h`, `2w`).

    Raises:
        CommandLineError: not such a duration, or zero.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise CommandLineError(
            "--max-age",
            f"{text!r} is not a duration such as 30d, 12h or 2w (a number > 0, then s, m, h, d "
            "or w)",
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _describe(removal: Removal) -> str:
    if not removal.count:
        return f"nothing to remove from {removal.stream_name!r}: nothing was written"
    what = "erased" if removal.erased else "hid (bytes kept)"
    return (
        f"{what} {removal.count} events of {removal.stream_name!r} (positions "
        f"{removal.first_position} to {removal.before - 1}); recorded in $removals at global "
        f"position {removal.record_position}"
    )


def _done(message: str) -> None:
    stderr_console().print(Text(message, style="green"))


def delete(
    stream: Annotated[str, typer.Argument(metavar="STREAM", help="The stream to delete.")],
    reason: Reason,
    hard: Annotated[
        bool,
        typer.Option("--hard", help="Erase the events' data and metadata too, for good."),
    ] = False,
    expected_version: Annotated[
        str,
        typer.Option(
            "--expected-version",
            "-e",
            metavar="any|N",
            help="Delete only if the stream's last event is at position N.",
        ),
    ] = "any",
    actor: Actor = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Delete a stream: no read returns its events any more; each keeps its hash.

    A soft delete hides them and keeps their bytes (in the store and its exports) until a hard
    delete, a truncation or retention erases them; --hard erases their data and metadata now.
    The stream keeps its version: a later append continues it. The deletion is recorded in
    $removals with --actor and --reason; snapshots of the stream are deleted with it.

    Example:

        eventvault delete cart-7 --reason "abandoned carts older than a year"

        eventvault delete customer-42 --hard --reason "erasure request 2026-118"
    \f
    Args:
        stream: the stream.
        reason: why, recorded.
        hard: erase the payloads.
        expected_version: the stream's version to expect.
        actor: who, recorded.
        url: the store.

    Raises:
        StreamNotFoundError: the stream has no events.
        WrongExpectedVersionError: the stream's version is not the expected one.
    """
    expected = parse_expected_version(expected_version)
    with open_existing_store(url) as store:
        removal = store.delete_stream(
            stream,
            hard=hard,
            expected_version=expected,
            actor=actor or default_actor(),
            reason=reason,
        )
    _done(_describe(removal))


def truncate(
    stream: Annotated[str, typer.Argument(metavar="STREAM", help="The stream to truncate.")],
    before: Annotated[
        int,
        typer.Option("--before", "-b", min=0, help="The first stream position to keep."),
    ],
    reason: Reason,
    actor: Actor = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Erase a stream's events before a position, keeping their hashes.

    Reads of the stream start at --before; the removal is recorded in $removals. Snapshots of
    the stream are deleted (they include what was removed).

    Example:

        eventvault truncate sensor-12 --before 100000 --reason "kept for 90 days"
    \f
    Args:
        stream: the stream.
        before: the first position kept.
        reason: why, recorded.
        actor: who, recorded.
        url: the store.

    Raises:
        StreamNotFoundError: the stream has no events.
        InvalidArgumentError: --before lies past the stream's end.
    """
    with open_existing_store(url) as store:
        removal = store.truncate_stream(
            stream, before=before, actor=actor or default_actor(), reason=reason
        )
    _done(_describe(removal))


def retention(
    stream: Annotated[str, typer.Argument(metavar="STREAM", help="The stream.")],
    max_age: Annotated[
        str | None,
        typer.Option("--max-age", metavar="DURATION", help="Keep events this young: 30d, 12h, 2w."),
    ] = None,
    max_count: Annotated[
        int | None,
        typer.Option("--max-count", min=1, help="Keep at most this many of the newest events."),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Keep every event again (no retention).")
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", help="Why, recorded (needed to change the retention)."),
    ] = None,
    actor: Actor = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Show or set a stream's retention, which `eventvault retain` applies.

    Without options it shows the retention. With --max-age and/or --max-count it replaces it
    (a change recorded in $removals); --clear removes it. Nothing is removed until `retain`
    runs.

    Example:

        eventvault retention sensor-12 --max-age 90d --reason "policy DP-4"

        eventvault retention sensor-12
    \f
    Args:
        stream: the stream.
        max_age: the most age kept.
        max_count: the most events kept.
        clear: remove the retention.
        reason: why, recorded.
        actor: who, recorded.
        url: the store.

    Raises:
        CommandLineError: a change without --reason, or --clear with other options.
    """
    changing = max_age is not None or max_count is not None or clear
    if not changing:
        with open_store(url, read_only=True) as store:
            metadata = store.get_stream_metadata(stream)
        age = "any" if metadata.max_age is None else str(metadata.max_age)
        count = "any" if metadata.max_count is None else str(metadata.max_count)
        stdout_console().print(f"{stream}: keep events of age {age}, count {count}")
        return
    if clear and (max_age is not None or max_count is not None):
        raise CommandLineError("--clear", "clears the retention: give it alone")
    if reason is None:
        raise CommandLineError(
            "--reason", "a change of retention is recorded: say why with --reason"
        )
    metadata = StreamMetadata(
        max_age=None if max_age is None else parse_duration(max_age), max_count=max_count
    )
    with open_existing_store(url) as store:
        store.set_stream_metadata(stream, metadata, actor=actor or default_actor(), reason=reason)
    _done(f"set the retention of {stream!r}; `eventvault retain` applies it")


def retain(
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why, recorded.")
    ] = "retention policy",
    actor: Actor = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Apply every stream's retention: erase the events it no longer keeps.

    Run it from cron or a timer. Each stream is one removal (recorded in $removals); an event
    stays while any event before it in its stream is younger than --max-age.

    Example:

        eventvault retain --url postgresql://ops@db/bank
    \f
    Args:
        reason: why, recorded.
        actor: who, recorded.
        url: the store.
    """
    with open_existing_store(url) as store:
        removals = store.enforce_retention(actor=actor or default_actor(), reason=reason)
    for removal in removals:
        _done(_describe(removal))
    if not removals:
        _done("every stream keeps what its retention allows: nothing was removed")


def forget(
    subject: Annotated[
        str, typer.Argument(metavar="SUBJECT", help="The subject's id (a customer's, ...).")
    ],
    reason: Reason,
    actor: Actor = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Forget a subject: destroy its keys, erasing every personal field sealed for it.

    The events stay, and every hash, chain and audit proof still verifies; the fields read as
    erased from now on, in the store and in every export or backup. Snapshots of the streams
    that held them are deleted. Recorded in $removals with --actor and --reason.

    Example:

        eventvault forget customer-42 --reason "erasure request 2026-118"
    \f
    Args:
        subject: the subject.
        reason: why, recorded.
        actor: who, recorded.
        url: the store.

    Raises:
        SubjectNotFoundError: nothing was ever sealed for the subject.
    """
    with open_existing_store(url) as store:
        forgotten = SubjectKeys(store).forget(
            subject, actor=actor or default_actor(), reason=reason
        )
    if forgotten.record_position is None:
        _done(f"subject {subject!r} was forgotten already: nothing was written")
        return
    streams = ", ".join(repr(s) for s in forgotten.streams) or "no stream"
    _done(
        f"forgot subject {subject!r}: destroyed {len(forgotten.keys)} key(s); its fields in "
        f"{streams} read as erased; recorded in $removals at global position "
        f"{forgotten.record_position}"
    )
