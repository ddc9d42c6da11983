"""The commands that look at a store: `read`, `log` (also live), `streams`, `stats`."""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import Annotated, BinaryIO, Final

import msgspec
import typer
from rich.text import Text

from eventvault.cli.errors import CommandLineError, StreamNotFoundError
from eventvault.cli.io import json_line, stream_info_line
from eventvault.cli.options import JsonOutput, Limit, StoreURL
from eventvault.cli.render import (
    event_line,
    events_table,
    stats_table,
    stderr_console,
    stdout_console,
    streams_table,
)
from eventvault.cli.stores import DEFAULT_URL, open_store
from eventvault.store.base import EventStore
from eventvault.store.masking import mask_url
from eventvault.store.subscription import MAX_RETRY_INTERVAL, Subscription
from eventvault.types import RecordedEvent

__all__ = ["TABLE_ROWS", "log", "read", "stats", "streams"]

TABLE_ROWS: Final = 1000
"""The most rows a table shows when no `--limit` is given; `--json` has no such cap."""
FOLLOW_CHECK_INTERVAL: Final = 1.0
"""Seconds `log --follow` waits for events before it looks whether the store is unavailable."""

Backwards = Annotated[bool, typer.Option("--backwards", "-b", help="Newest first.")]


def _stdout() -> BinaryIO:
    return typer.get_binary_stream("stdout")


def _write_lines(lines: Iterable[bytes], *, flush_each: bool = False) -> None:
    out = _stdout()
    for line in lines:
        out.write(line)
        if flush_each:
            out.flush()
    out.flush()


def _note(message: str) -> None:
    stderr_console().print(Text(message, style="dim"))


def _show_events(
    events: Iterator[RecordedEvent], *, capped: bool, with_stream: bool, empty: str
) -> None:
    """Print events as a table; when `capped`, the events hold one row more than the cap."""
    rows = list(events)
    if not rows:
        _note(empty)
        return
    table = events_table(rows[:TABLE_ROWS] if capped else rows, with_stream=with_stream)
    if capped and len(rows) > TABLE_ROWS:
        table.caption = f"showing the first {TABLE_ROWS} events; use --limit N or --json for more"
    stdout_console().print(table)


def read(
    stream: Annotated[
        str, typer.Argument(metavar="STREAM", help="The stream to read, e.g. account-42.")
    ],
    from_position: Annotated[
        int | None,
        typer.Option(
            "--from",
            "-f",
            min=0,
            help="Start at this stream position (default: the first event, or the last with "
            "--backwards).",
        ),
    ] = None,
    backwards: Backwards = False,
    limit: Limit = None,
    json_output: JsonOutput = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Show the events of one stream, in stream order.

    A table shows the stream position, global position, type, time and the start of the data;
    --json prints every event in full, one JSON object per line. A stream without events exits
    with code 4.

    Example:

        eventvault read account-42

        eventvault read account-42 --backwards --limit 1 --json
    \f
    Args:
        stream: the stream.
        from_position: the first stream position to show.
        backwards: newest first.
        limit: the most events to show.
        json_output: JSON Lines instead of a table.
        url: the store.

    Raises:
        StoreNotFoundError: the SQLite file does not exist.
        StreamNotFoundError: the stream has no events.
    """
    with open_store(url, read_only=True) as store:
        if store.get_stream_version(stream) is None:
            raise StreamNotFoundError(stream)
        capped = limit is None and not json_output
        events = store.read_stream(
            stream,
            from_position=from_position,
            backwards=backwards,
            limit=TABLE_ROWS + 1 if capped else limit,
        )
        if json_output:
            _write_lines(json_line(event) for event in events)
            return
        _show_events(
            events,
            capped=capped,
            with_stream=False,
            empty=f"stream {stream!r} has no events at position {from_position} or "
            f"{'before' if backwards else 'after'} it",
        )


def log(
    after: Annotated[
        int | None,
        typer.Option(
            "--after",
            "-a",
            min=0,
            help="Start after this global position (backwards: before it). With --follow the "
            "default is the current end of the log.",
        ),
    ] = None,
    backwards: Backwards = False,
    limit: Limit = None,
    event_types: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", metavar="TYPE", help="Only events of this type (repeatable)."),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", "-p", help="Only events of streams whose names start with this."),
    ] = None,
    json_output: JsonOutput = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-F", help="Keep printing new events as they are appended."),
    ] = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Show the global log: every stream's events in the order they were committed.

    --follow tails the log live (like tail -f) until Ctrl-C, which ends it with exit code 0.
    When the store is unavailable (a PostgreSQL server down or restarting) it says so on
    stderr, waits and retries, and carries on without losing or repeating an event.

    Example:

        eventvault log --type AccountOpened --prefix account-

        eventvault log --follow --json
    \f
    Args:
        after: the global position to start after.
        backwards: newest first.
        limit: the most events to show.
        event_types: only these types.
        prefix: only streams with this prefix.
        json_output: JSON Lines instead of a table.
        follow: tail the log live.
        url: the store.

    Raises:
        CommandLineError: --follow with --backwards, or an empty --prefix.
        StoreNotFoundError: the SQLite file does not exist.
    """
    if prefix == "":
        raise CommandLineError("--prefix", "must not be empty")
    types = event_types or None
    with open_store(url, read_only=True) as store:
        if follow:
            if backwards:
                raise CommandLineError("--follow", "cannot follow the log --backwards")
            start = store.head_position() if after is None else after
            _follow(store, start, types, prefix, limit, json_output)
            return
        capped = limit is None and not json_output
        events = store.read_all(
            after=after or 0,
            backwards=backwards,
            limit=TABLE_ROWS + 1 if capped else limit,
            event_types=types,
            stream_prefix=prefix,
        )
        if json_output:
            _write_lines(json_line(event) for event in events)
            return
        _show_events(events, capped=capped, with_stream=True, empty="no events match")


def _follow(
    store: EventStore,
    after: int,
    event_types: list[str] | None,
    prefix: str | None,
    limit: int | None,
    json_output: bool,
) -> None:
    """Print events as they arrive until Ctrl-C (or `limit` events).

    While the store is unavailable (a PostgreSQL server down or restarting) the subscription
    waits and retries; a one-line notice on stderr says so, and another when it carries on.
    """
    subscription = store.subscribe_to_all(
        after=after, event_types=event_types, stream_prefix=prefix
    )
    console = stdout_console()
    out = _stdout()
    _note(f"following the log after position {after} (Ctrl-C to stop)")
    left = limit
    waiting = False
    try:
        with subscription, _notices_replace_logs():
            while left is None or left > 0:
                before = subscription.position
                batch = subscription.next_batch(timeout=FOLLOW_CHECK_INTERVAL)
                if subscription.waiting != waiting:
                    waiting = subscription.waiting
                    _note(_waiting_notice(subscription, before))
                if not batch:
                    if subscription.closed:
                        return
                    continue
                if left is not None:
                    batch = batch[:left]
                    left -= len(batch)
                for event in batch:
                    if json_output:
                        out.write(json_line(event))
                        out.flush()
                    else:
                        console.print(event_line(event), soft_wrap=True)
    except KeyboardInterrupt:
        subscription.close()


@contextlib.contextmanager
def _notices_replace_logs() -> Iterator[None]:
    """Keep the subscription's warnings and the connection pool's (one per failed connection
    attempt) off stderr, where Python would print them for want of a handler: the one-line
    notices of `_follow` say the same once per outage."""
    quiet = logging.NullHandler()
    loggers = [logging.getLogger(name) for name in ("eventvault.subscription", "psycopg.pool")]
    for logger in loggers:
        logger.addHandler(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(quiet)


def _waiting_notice(subscription: Subscription, position: int) -> str:
    if subscription.last_error is None:
        return f"the store answers again; following on after position {position}"
    return (
        f"waiting for the store, retrying every {MAX_RETRY_INTERVAL:g} s at most "
        f"(Ctrl-C to stop): {subscription.last_error}"
    )


def streams(json_output: JsonOutput = False, url: StoreURL = DEFAULT_URL) -> None:
    """List the streams that have events: name, event count, version, last global position.

    Example:

        eventvault streams --url sqlite:///bank.db
    \f
    Args:
        json_output: JSON Lines instead of a table.
        url: the store.

    Raises:
        StoreNotFoundError: the SQLite file does not exist.
    """
    with open_store(url, read_only=True) as store:
        infos = store.list_streams()
        if json_output:
            _write_lines(stream_info_line(info) for info in infos)
            return
        rows = list(itertools.islice(infos, TABLE_ROWS + 1))
        if not rows:
            _note("the store has no streams")
            return
        table = streams_table(rows[:TABLE_ROWS])
        if len(rows) > TABLE_ROWS:
            table.caption = f"showing the first {TABLE_ROWS} streams; use --json for all"
        stdout_console().print(table)


def stats(json_output: JsonOutput = False, url: StoreURL = DEFAULT_URL) -> None:
    """Show a store's figures: events, streams, head position, first and last times, file size.

    Example:

        eventvault stats --json
    \f
    Args:
        json_output: one JSON object instead of a table.
        url: the store.

    Raises:
        StoreNotFoundError: the SQLite file does not exist.
    """
    with open_store(url, read_only=True) as store:
        figures = store.stats()
        engine = store.engine
        size = store.storage_size()
    if json_output:
        document = {
            "url": mask_url(url),
            "engine": engine,
            "event_count": figures.event_count,
            "stream_count": figures.stream_count,
            "head_position": figures.head_position,
            "first_recorded_at": figures.first_recorded_at,
            "last_recorded_at": figures.last_recorded_at,
            "file_size_bytes": size,
        }
        _write_lines([msgspec.json.encode(document) + b"\n"])
        return
    stdout_console().print(stats_table(figures, url=mask_url(url), engine=engine, size=size))
