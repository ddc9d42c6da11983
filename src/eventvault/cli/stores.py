"""Opening stores for commands: reading commands open them read-only, so they never create,
set up or change one (and work on a read-only folder or mount), and the commands that fill a
new store (`import`, `copy`) leave nothing behind when they fail."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator
from typing import Final

import eventvault
from eventvault.cli.errors import CommandLineError, StoreNotFoundError
from eventvault.cli.io import new_file_folder, publish, temporary_name
from eventvault.errors import NotAnEventVaultDatabaseError, StorageError
from eventvault.errors import StoreNotFoundError as NoStoreError
from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES
from eventvault.store.base import EventStore
from eventvault.store.masking import mask_url
from eventvault.store.migrate import migrate
from eventvault.store.url import PATH_SCHEME, StoreURL, parse_url

__all__ = ["DEFAULT_URL", "URL_ENV", "is_in_memory", "open_store", "open_target"]


DEFAULT_URL: Final = "./eventvault.db"
"""The store a command opens when neither `--url` nor `EVENTVAULT_URL` names one."""
URL_ENV: Final = "EVENTVAULT_URL"
"""The environment variable that names the store when `--url` is not given."""


def _sqlite_file(url: StoreURL) -> str | None:
    """The file a SQLite URL names; None for another engine, and for SQLite in memory."""
    if url.scheme != PATH_SCHEME or url.location in ("", ":memory:"):
        return None
    return url.location


def is_in_memory(url: str) -> bool:
    """Whether a URL names a store that lives only as long as the process: `memory://`, or
    SQLite in memory.

    Args:
        url: a store URL.

    Returns:
        True when everything written to the store is gone when the command ends.
    """
    parsed = parse_url(url)
    return parsed.scheme == "memory" or (
        parsed.scheme == PATH_SCHEME and parsed.location == ":memory:"
    )


@contextlib.contextmanager
def open_store(
    url: str,
    *,
    read_only: bool,
    must_exist: bool = False,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    argument: str = "--url",
) -> Iterator[EventStore]:
    """Open a store for the length of a command.

    Args:
        url: the store's URL, as `eventvault.connect` takes it.
        read_only: open it for reading only (commands that only read): a SQLite file that
            does not exist is reported instead of created, and nothing is written.
        must_exist: for a command that writes beside an existing log (projections): a SQLite
            file that does not exist is reported instead of created.
        max_event_bytes: the limit on one appended event's size, as `eventvault.connect` takes it.
        argument: the argument that named the store (`--url`, `SOURCE_URL`), for errors.

    Returns:
        A context manager giving the open store, closed on exit.

    Raises:
        StoreNotFoundError: `read_only` or `must_exist`, and the SQLite file does not exist.
        InvalidURLError, NotAnEventVaultDatabaseError, StorageError: as `eventvault.connect`.
    """
    path = _sqlite_file(parse_url(url)) if must_exist and not read_only else None
    if path is not None and not os.path.lexists(path):
        raise StoreNotFoundError(mask_url(url), path, argument=argument)
    try:
        store = eventvault.connect(url, max_event_bytes=max_event_bytes, read_only=read_only)
    except NoStoreError as exc:
        raise StoreNotFoundError(exc.url, exc.path, argument=argument) from exc
    with store:
        yield store


@contextlib.contextmanager
def open_target(url: str, *, argument: str, command: str) -> Iterator[EventStore]:
    """Open the store that `import` or `copy` fills, creating it as a restore tool would.

    - `memory://` and SQLite in memory are refused: what the command wrote would be gone when
      it ends.
    - A SQLite file that does not exist is built under a random temporary name beside it and
      moved to its name only when the block ends without an error: a failed or killed command
      never leaves a store at that name. On an error the temporary files are removed; a kill
      leaves only them (`.NAME.RANDOM.partial`).
    - A store of another engine that holds no eventvault store yet (a PostgreSQL schema) gets
      one, as `eventvault migrate` would make it; if the block then fails, that store stays,
      empty.
    - Any other store is opened as it is, and left as it is on an error.

    Args:
        url: the target's URL.
        argument: the argument that named it (`--url`, `TARGET_URL`), for errors.
        command: the command's name, for errors.

    Returns:
        A context manager giving the open store, closed on exit.

    Raises:
        CommandLineError: the URL names a store in memory, or a file in a folder that does not
            exist.
        InvalidURLError, NotAnEventVaultDatabaseError, StorageError: as `eventvault.connect`,
            and `eventvault migrate` for PostgreSQL.
    """
    parsed = parse_url(url)
    if is_in_memory(url):
        raise CommandLineError(
            argument,
            f"{mask_url(url)!r} is a store in the memory of this process: what {command} writes "
            "into it "
            "would be gone when the command ends",
            hint="name a SQLite file (path/to/new.db) or a PostgreSQL database",
        )
    path = _sqlite_file(parsed)
    if path is not None and not os.path.lexists(path):
        with _new_sqlite_store(parsed, path, argument) as store:
            yield store
        return
    if parsed.scheme != PATH_SCHEME:
        try:
            store = eventvault.connect(url)
        except NotAnEventVaultDatabaseError:
            # Creating what the store lacks is what `migrate` does; it refuses, as the open
            # did, a schema holding something else or a database that is not UTF8.
            migrate(url)
            store = eventvault.connect(url)
    else:
        store = eventvault.connect(url)
    with store:
        yield store


@contextlib.contextmanager
def _new_sqlite_store(url: StoreURL, path: str, argument: str) -> Iterator[EventStore]:
    temporary = temporary_name(path, new_file_folder(path, argument))
    query = urllib.parse.urlencode(dict(url.options))
    # The folder part is the user's own, so the temporary URL parses as theirs did.
    temporary_url = f"sqlite:///{temporary}?{query}" if query else temporary
    try:
        with eventvault.connect(temporary_url) as store:
            yield store
        # Closing checkpointed the write-ahead log into the file; one left over would hold
        # committed events the file alone lacks.
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(f"{temporary}-wal") > 0:
                raise StorageError(
                    f"the new store {path!r} could not be checkpointed; it was not kept"
                )
        publish(temporary, path, argument, overwrite=False)
    finally:
        for leftover in (temporary, f"{temporary}-wal", f"{temporary}-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)
