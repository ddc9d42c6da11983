"""The commands that move whole logs: `export`, `import` and `copy`, with full fidelity.

The format and its checks are `eventvault.export`'s; these commands choose the files and stores,
draw the progress and print the summary. An export file proves itself whole (a header, the
events, a closing record with their count and digest); `import` and `copy` check every hash and
position and refuse what cannot be proven whole before the target commits anything.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.text import Text

from eventvault.cli.io import STDIO, open_input, open_output
from eventvault.cli.options import StoreURL
from eventvault.cli.progress import progress_bar
from eventvault.cli.render import stderr_console
from eventvault.cli.stores import DEFAULT_URL, open_store, open_target
from eventvault.export import copy_events, load_export, write_export
from eventvault.store.masking import mask_url

__all__ = ["copy", "export", "import_"]

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
            "--after",
            "-a",
            min=0,
            help="Export only the events after this global position (the tail of the log; "
            "import takes whole logs only).",
        ),
    ] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Write the global log to a JSON Lines file that proves itself whole.

    The first line is a header (the format, the store's head when the export began), then one
    event per line with its id, positions, type, schema version, time, hash, and data and
    metadata as the exact stored bytes, then a closing record with the number of events and a
    SHA-256 of everything before it. `eventvault import` into any engine verifies every hash,
    and refuses a file cut short or changed. The export holds the log as it was when it began;
    events appended meanwhile are for the next one. A file is written under a temporary name
    beside FILE and renamed when complete. Format: docs/export-format.md.

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
        CommandLineError: FILE exists and --force was not given, FILE is a folder, or its
            folder does not exist.
        IncompleteExportError: the store's events did not reach its head (no closing record is
            written; a file is not kept).
    """
    with open_store(url, read_only=True) as store:
        head = store.head_position()
        with (
            open_output(file, overwrite=force) as out,
            progress_bar("exporting", head, start=after) as bar,
        ):
            summary = write_export(
                store,
                out,
                after=after,
                on_progress=lambda count, position: bar.update(completed=position, events=count),
            )
    where = "stdout" if file == STDIO else repr(file)
    changes = summary.end.registry_changes
    registry = f" and {changes} schema registry changes" if changes else ""
    _summary(f"exported {summary.end.event_count} events{registry} to {where}")


def import_(
    file: ImportFile,
    expect_head: Annotated[
        int | None,
        typer.Option(
            "--expect-head",
            min=0,
            metavar="POS",
            help="The source's head position when the file was written: the file must end "
            "exactly there. Needed for files written by eventvault 0.1, which cannot prove "
            "they are whole.",
            show_default=False,
        ),
    ] = None,
    expect_count: Annotated[
        int | None,
        typer.Option(
            "--expect-count",
            min=0,
            metavar="N",
            help="The number of events the file must hold (as --expect-head).",
            show_default=False,
        ),
    ] = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Load a file written by `eventvault export` into an empty store, all or nothing.

    Every event's hash is recomputed from its bytes and every position checked, and the file
    must prove it is whole (its closing record matches the count, the positions and the digest
    of the lines before it), before anything is committed, in one transaction: a changed,
    truncated or reordered file, or one an interrupted export left, leaves the store empty and
    says what is wrong (exit 5). A store that already holds events is refused (exit 6), a store
    in memory too (exit 2). A new SQLite file appears only when the import succeeds; a
    PostgreSQL schema without a store gets one.

    A file written by eventvault 0.1 has no closing record: pass --expect-head (the source's
    head position) or --expect-count to import it; it must match exactly.

    Example:

        eventvault import backup.jsonl --url restored.db

        gunzip -c backup.jsonl.gz | eventvault import - --url restored.db

        eventvault import old-0.1-backup.jsonl --expect-head 1042 --url restored.db
    \f
    Args:
        file: the file, or `-` for stdin.
        expect_head: the source's head position the file must end at.
        expect_count: the number of events the file must hold.
        url: the target store (created when it does not exist).

    Raises:
        ImportFileError: a line is malformed, or its event fails the hash or position checks.
        IncompleteExportError: the file cannot be proven whole.
        UnverifiableExportError: a file of format 1 without --expect-head or --expect-count.
        NotEmptyError: the store holds events.
        CommandLineError: the store is in memory, or a new file's folder does not exist.
    """
    total = None if file == STDIO else os.path.getsize(file)
    with (
        open_input(file) as stream,
        open_target(url, argument="--url", command="import") as store,
        progress_bar("importing", total) as bar,
    ):
        count = load_export(
            store,
            stream,
            expect_head=expect_head,
            expect_count=expect_count,
            on_progress=lambda events, offset: bar.update(completed=offset, events=events),
        )
    _summary(f"imported {count} events into {mask_url(url)!r}")


def copy(
    source: Annotated[str, typer.Argument(metavar="SOURCE_URL", help="The store to copy from.")],
    target: Annotated[
        str, typer.Argument(metavar="TARGET_URL", help="The empty store to copy into.")
    ],
) -> None:
    """Copy every event of one store into another, empty one, of any engine, all or nothing.

    The upgrade path from SQLite to PostgreSQL: ids, positions, times and hashes are kept and
    verified, in one transaction on the target. The copy holds the source's log as it was when
    the copy began, and proves it got all of it: events missing up to that head leave the
    target empty (exit 5). A target that holds events is refused (exit 6), one in memory too
    (exit 2). A new SQLite file appears only when the copy succeeds; a PostgreSQL schema
    without a store gets one, so `eventvault migrate` is not needed first.

    Example:

        eventvault copy bank.db postgresql://app@db.internal/bank

        eventvault copy sqlite:///old.db sqlite:///new.db
    \f
    Args:
        source: the store to read.
        target: the store to write (created when it does not exist).

    Raises:
        StoreNotFoundError: the source SQLite file does not exist.
        NotEmptyError: the target holds events.
        HashChainError: an event of the source fails its hash check.
        IncompleteExportError: the source's events did not reach its head.
        CommandLineError: the target is in memory, or a new file's folder does not exist.
    """
    with open_store(source, read_only=True, argument="SOURCE_URL") as origin:
        total = origin.head_position()
        with (
            open_target(target, argument="TARGET_URL", command="copy") as destination,
            progress_bar("copying", total) as bar,
        ):
            count = copy_events(
                origin,
                destination,
                on_progress=lambda copied: bar.update(completed=copied, events=copied),
            )
    _summary(f"copied {count} events from {mask_url(source)!r} to {mask_url(target)!r}")
