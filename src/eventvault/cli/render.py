"""What people read: Rich tables of events, streams and figures, and one-line events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final, Literal

import msgspec
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from eventvault.store.base import StoreStats
from eventvault.types import RecordedEvent, StreamInfo

__all__ = [
    "DATA_WIDTH",
    "abbreviate",
    "event_line",
    "events_table",
    "format_size",
    "format_time",
    "stats_table",
    "stderr_console",
    "stdout_console",
    "streams_table",
]

DATA_WIDTH: Final = 60
"""The most characters of an event's data a table or a followed line shows."""

PIPE_WIDTH: Final = 1_000_000
"""The width of stdout when it is not a terminal: wider than any line, so none is cut. Rich
would otherwise assume 80 columns (or $COLUMNS) and cut the cells of a table to fit."""


def stdout_console() -> Console:
    """A console on stdout for tables and lines (no guessing of colours from the content).

    On a terminal a table fits its width, and cells that do not fit end in an ellipsis. Into a
    pipe or a file every line is as long as its content, so stream names, types and positions
    are printed whole for `grep`, `cut` and scripts (the data column keeps its own limit,
    `DATA_WIDTH`; `--json` prints everything).
    """
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


def stderr_console() -> Console:
    """A console on stderr for progress bars and notes, which never mix with the output."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def format_time(
    moment: datetime | None, *, precision: Literal["microseconds", "milliseconds"] = "microseconds"
) -> str:
    """A UTC timestamp for a table: `2024-05-01 12:00:00.123456`, or `-` for None.

    Args:
        moment: an aware datetime, or None.
        precision: the smallest unit shown.

    Returns:
        The text.
    """
    if moment is None:
        return "-"
    return moment.isoformat(sep=" ", timespec=precision).removesuffix("+00:00")


def _cut(text: str) -> Text:
    """A cell that stays on one line and ends in an ellipsis where the column is too narrow."""
    return Text(text, no_wrap=True, overflow="ellipsis")


def abbreviate(data: dict[str, object], width: int = DATA_WIDTH) -> str:
    """A payload as compact JSON, cut to `width` characters with an ellipsis.

    Args:
        data: the payload.
        width: the most characters to return.

    Returns:
        The text.
    """
    text = msgspec.json.encode(data).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def format_size(size: int | None) -> str:
    """A size in bytes for people: `812 B`, `4.0 KiB`, `1.5 MiB`, or `-` for None.

    Args:
        size: bytes, or None.

    Returns:
        The text.
    """
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def events_table(
    events: Iterable[RecordedEvent], *, with_stream: bool, title: str | None = None
) -> Table:
    """A table of events: positions, type, time and abbreviated data.

    Args:
        events: the events, in the order to show them.
        with_stream: show each event's global position first, then its stream and stream
            position as `stream@pos` (for the global log); otherwise the stream position first.
        title: shown above the table.

    Returns:
        The table, to print on a console.
    """
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    # Positions and time keep their width; the stream, type and data give way (their cells cut
    # themselves with an ellipsis) when the terminal is narrow.
    if with_stream:
        table.add_column("global", justify="right", style="cyan", no_wrap=True)
        table.add_column("stream@pos", style="magenta")
    else:
        table.add_column("pos", justify="right", style="cyan", no_wrap=True)
        table.add_column("global", justify="right", no_wrap=True)
    table.add_column("type", style="green")
    table.add_column("recorded at (UTC)", style="dim", no_wrap=True)
    table.add_column("data")
    for event in events:
        positions = (
            (str(event.global_position), _cut(f"{event.stream_name}@{event.stream_position}"))
            if with_stream
            else (str(event.stream_position), str(event.global_position))
        )
        table.add_row(
            *positions,
            _cut(event.event_type),
            format_time(event.recorded_at, precision="milliseconds"),
            _cut(abbreviate(event.data)),
        )
    return table


def event_line(event: RecordedEvent) -> Text:
    """One event on one line, as `eventvault log --follow` prints it.

    Args:
        event: the event.

    Returns:
        `#global stream@position Type {data...}`, styled.
    """
    return Text.assemble(
        (f"#{event.global_position}", "cyan"),
        " ",
        (event.stream_name, "magenta"),
        f"@{event.stream_position} ",
        (event.event_type, "green"),
        " ",
        abbreviate(event.data),
    )


def streams_table(streams: Iterable[StreamInfo]) -> Table:
    """A table of streams: name, events, version and the global position of the last event.

    Args:
        streams: the streams, in the order to show them.

    Returns:
        The table.
    """
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("stream", style="magenta", overflow="fold")
    table.add_column("events", justify="right")
    table.add_column("version", justify="right")
    table.add_column("last global", justify="right", style="cyan")
    for info in streams:
        table.add_row(
            info.stream_name,
            str(info.event_count),
            str(info.version),
            str(info.last_global_position),
        )
    return table


def stats_table(stats: StoreStats, *, url: str, engine: str, size: int | None) -> Table:
    """A two-column table of a store's figures.

    Args:
        stats: the store's figures.
        url: the URL it was opened with, its password masked.
        engine: its engine's short name.
        size: its size on disk in bytes, None when it has no file.

    Returns:
        The table.
    """
    table = Table(box=box.SIMPLE, show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value")
    rows = [
        ("store", url),
        ("engine", engine),
        ("events", str(stats.event_count)),
        ("streams", str(stats.stream_count)),
        ("head position", str(stats.head_position)),
        ("first recorded at (UTC)", format_time(stats.first_recorded_at)),
        ("last recorded at (UTC)", format_time(stats.last_recorded_at)),
    ]
    if size is not None:
        rows.append(("file size", f"{format_size(size)} ({size} bytes)"))
    for row in rows:
        table.add_row(*row)
    return table
