"""The commands that move whole logs: `export`, `import` and `copy`, with full fidelity.

Events travel as `RawEvent`: ids, positions, times, hashes and the exact stored bytes of data and
metadata. The importing store recomputes every hash and checks every position before it commits
anything, in one transaction, so a changed file or a failed copy leaves the target empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Annotated, Final

import typer
from rich.text import Text

from eventvault.cli.io import (
    STDIO,
    LineCursor,
    decode_raw_events,
    json_line,
    open_input,
    open_output,
)
from eventvault.cli.options import StoreURL
from eventvault.cli.progress import ProgressBar, progress_bar
from eventvault.cli.render import stderr_console
from eventvault.cli.stores import DEFAULT_URL, open_store
from eventvault.errors import HashChainError, ImportFileError
from eventvault.types import RawEvent

__all__ = ["copy", "export", "import_"]

PROGRESS_EVERY: Final = 1000
"""Events between two moves of a progress bar."""

ExportFile = Annotated[
    str,
    typer.Argument(metavar="FILE", help="The JSON Lines file; - for stdout.", show_default=False),
]
ImportFile = Annotated[
    str,
    typer.Argument(metavar="FILE", help="The JSON Lines file; - for stdin.", show_default=False),
]


def _summary(message: str) -> None:
    stderr_console().print(Text(message, style="green"))


def export(
    file: ExportFile,
    after: Annotated[
        int,
        typer.Option(
            "--after", "-a", min=0, help="Export only the events after this global position."
        ),
    ] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Write the global log to a JSON Lines file, one event per line, with full fidelity.

    Each line holds an event's id, positions, type, schema version, time and hash, and its data
    and metadata as the exact stored bytes, so `eventvault import` into any engine keeps every
    hash verifiable. A file is written under FILE.partial and renamed when complete.

    Example:

        eventvault export backup.jsonl --url bank.db

        eventvault export - --url bank.db | gzip > backup.jsonl.gz
    \f
    Args:
        file: the file, or `-` for stdout.
        after: the global position to start after.
        force: replace an existing file.
        url: the store.

    Raises:
        StoreNotFoundError: the SQLite file does not exist.
        CommandLineError: FILE exists and --force was not given.
    """
    count = 0
    with open_store(url, read_only=True) as store:
        head = store.head_position()
        with (
            open_output(file, overwrite=force) as out,
            progress_bar("exporting", head, start=after) as bar,
        ):
            for event in store.export_events(after=after):
                out.write(json_line(event))
                count += 1
                if count % PROGRESS_EVERY == 0:
                    bar.update(completed=event.global_position, events=count)
            bar.update(completed=head, events=count)
    where = "stdout" if file == STDIO else repr(file)
    _summary(f"exported {count} events to {where}")


def _moving(events: Iterable[RawEvent], bar: ProgressBar, cursor: LineCursor) -> Iterator[RawEvent]:
    """Pass events through, moving the bar by the bytes of the file read so far."""
    for index, event in enumerate(events, start=1):
        if index % PROGRESS_EVERY == 0:
            bar.update(completed=cursor.offset)
        yield event


def import_(file: ImportFile, url: StoreURL = DEFAULT_URL) -> None:
    """Load a file written by `eventvault export` into an empty store.

    Every event's hash is recomputed from its bytes and every position checked before anything
    is committed, in one transaction: a changed, truncated or reordered file leaves the store
    empty and names the line at fault. A store that already holds events is refused (exit 6).

    Example:

        eventvault import backup.jsonl --url restored.db

        gunzip -c backup.jsonl.gz | eventvault import - --url restored.db
    \f
    Args:
        file: the file, or `-` for stdin.
        url: the target store (created when it does not exist).

    Raises:
        ImportFileError: a line is malformed, or its event fails the hash or position checks.
        NotEmptyError: the store holds events.
    """
    cursor = LineCursor()
    total = None if file == STDIO else os.path.getsize(file)
    with (
        open_input(file) as stream,
        open_store(url, read_only=False) as store,
        progress_bar("importing", total) as bar,
    ):
        events = _moving(decode_raw_events(stream, cursor), bar, cursor)
        try:
            count = store.import_events(events, on_progress=bar.events)
        except HashChainError as exc:
            raise ImportFileError(str(exc), line=cursor.line) from exc
        except ImportFileError as exc:
            if exc.line is not None:
                raise
            raise ImportFileError(exc.reason, line=cursor.line) from exc
        if total is not None:
            bar.update(completed=total)
    _summary(f"imported {count} events into {url!r}")


def copy(
    source: Annotated[str, typer.Argument(metavar="SOURCE_URL", help="The store to copy from.")],
    target: Annotated[
        str, typer.Argument(metavar="TARGET_URL", help="The empty store to copy into.")
    ],
) -> None:
    """Copy every event of one store into another, empty one, of any engine.

    The upgrade path from SQLite to PostgreSQL: ids, positions, times and hashes are kept and
    verified, in one transaction on the target. A target that holds events is refused (exit 6).

    Example:

        eventvault copy bank.db postgresql://app@db.internal/bank

        eventvault copy sqlite:///old.db sqlite:///new.db
    \f
    Args:
        source: the store to read.
        target: the store to write (created when it is a SQLite file that does not exist).

    Raises:
        StoreNotFoundError: the source SQLite file does not exist.
        NotEmptyError: the target holds events.
        HashChainError: an event of the source fails its hash check.
    """
    with open_store(source, read_only=True) as origin:
        total = origin.head_position()
        with (
            open_store(target, read_only=False) as destination,
            progress_bar("copying", total) as bar,
        ):

            def moved(count: int) -> None:
                bar.update(completed=count, events=count)

            count = destination.import_events(origin.export_events(), on_progress=moved)
    _summary(f"copied {count} events from {source!r} to {target!r}")
