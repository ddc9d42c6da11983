"""Opening stores for commands: reading commands never create one by accident, and the commands
that fill a new store (`import`, `copy`) leave nothing behind when they fail."""

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
from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES
from eventvault.store.base import EventStore
from eventvault.store.migrate import migrate
from eventvault.store.sqlite import SQLiteEventStore

__all__ = [
    "DEFAULT_URL",
    "URL_ENV",
    "engine_name",
    "is_embedded",
    "is_in_memory",
    "open_store",
    "open_target",
    "sqlite_file",
    "storage_size",
]


DEFAULT_URL: Final = "./eventvault.db"
"""The store a command opens when neither `--url` nor `EVENTVAULT_URL` names one."""
URL_ENV: Final = "EVENTVAULT_URL"
"""The environment variable that names the store when `--url` is not given."""


def _sqlite_path(url: str) -> str | None:
    """The path part of a SQLite URL or bare path, as `eventvault.connect` reads it; None for
    another engine, or options on a bare path (which connect refuses)."""
    if url.startswith("sqlite:"):
        parsed = urllib.parse.urlsplit(url)
        return parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    if "://" in url or "?" in url:
        return None
    return url


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names, read the way `eventvault.connect` reads it.

    Args:
        url: a store URL.

    Returns:
        The path of the database file; None for any other engine and for SQLite in memory.
    """
    path = _sqlite_path(url)
    return None if path in (None, "", ":memory:") else path


def is_in_memory(url: str) -> bool:
    """Whether a URL names a store that lives only as long as the process: `memory://`, or
    SQLite in memory.

    Args:
        url: a store URL.

    Returns:
        True when everything written to the store is gone when the command ends.
    """
    if "://" in url and url.split(":", 1)[0].lower() == "memory":
        return True
    return _sqlite_path(url) == ":memory:"


def is_embedded(url: str) -> bool:
    """Whether a URL names an engine that lives in this process (SQLite or memory).

    Args:
        url: a store URL.

    Returns:
        True for a file path, `sqlite:` and `memory://` URLs.
    """
    scheme = url.split(":", 1)[0].lower() if "://" in url else ""
    return url.startswith("sqlite:") or scheme in ("", "sqlite", "memory")


@contextlib.contextmanager
def open_store(
    url: str,
    *,
    must_exist: bool,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    argument: str = "--url",
) -> Iterator[EventStore]:
    """Open a store for the length of a command.

    Args:
        url: the store's URL, as `eventvault.connect` takes it.
        must_exist: refuse a SQLite file that does not exist instead of creating it (for
            commands that only read).
        max_event_bytes: the limit on one appended event's size, as `eventvault.connect` takes it.
        argument: the argument that named the store (`--url`, `SOURCE_URL`), for errors.

    Returns:
        A context manager giving the open store, closed on exit.

    Raises:
        StoreNotFoundError: `must_exist` and the SQLite file does not exist.
        InvalidURLError, NotAnEventVaultDatabaseError, StorageError: as `eventvault.connect`.
    """
    path = sqlite_file(url)
    if must_exist and path is not None and not os.path.exists(path):
        raise StoreNotFoundError(url, path, argument=argument)
    with eventvault.connect(url, max_event_bytes=max_event_bytes) as store:
        yield store


def engine_name(store: EventStore) -> str:
    """A store's engine, as a short name: `sqlite`, `memory`, `postgres`.

    Args:
        store: an open store.

    Returns:
        The engine's name.
    """
    return type(store).__name__.removesuffix("EventStore").lower()


def storage_size(store: EventStore) -> int | None:
    """The bytes a SQLite store takes on disk: its file and its write-ahead log.

    Args:
        store: an open store.

    Returns:
        The size in bytes; None for a store that is not a SQLite file.
    """
    if not isinstance(store, SQLiteEventStore) or store.path == ":memory:":
        return None
    size = 0
    for path in (store.path, f"{store.path}-wal"):
        with contextlib.suppress(FileNotFoundError):
            size += os.path.getsize(path)
    return size


def _is_postgres(url: str) -> bool:
    return "://" in url and url.split(":", 1)[0].lower() in ("postgresql", "postgres")


@contextlib.contextmanager
def open_target(url: str, *, argument: str, command: str) -> Iterator[EventStore]:
    """Open the store that `import` or `copy` fills, creating it as a restore tool would.

    - `memory://` and SQLite in memory are refused: what the command wrote would be gone when
      it ends.
    - A SQLite file that does not exist is built under a random temporary name beside it and
      moved to its name only when the block ends without an error: a failed or killed command
      never leaves a store at that name. On an error the temporary files are removed; a kill
      leaves only them (`.NAME.RANDOM.partial`).
    - A PostgreSQL schema that holds no eventvault store gets one, as `eventvault migrate`
      would make it; if the block then fails, that store stays, empty.
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
    if is_in_memory(url):
        raise CommandLineError(
            argument,
            f"{url!r} is a store in the memory of this process: what {command} writes into it "
            "would be gone when the command ends",
            hint="name a SQLite file (path/to/new.db) or a PostgreSQL database",
        )
    path = sqlite_file(url)
    if path is not None and not os.path.lexists(path):
        with _new_sqlite_store(url, path, argument) as store:
            yield store
        return
    if _is_postgres(url):
        try:
            store = eventvault.connect(url)
        except NotAnEventVaultDatabaseError:
            # Creating what the schema lacks is what `migrate` does; it refuses, as the
            # open did, a schema holding something else or a database that is not UTF8.
            migrate(url)
            store = eventvault.connect(url)
    else:
        store = eventvault.connect(url)
    with store:
        yield store


@contextlib.contextmanager
def _new_sqlite_store(url: str, path: str, argument: str) -> Iterator[EventStore]:
    temporary = temporary_name(path, new_file_folder(path, argument))
    query = urllib.parse.urlsplit(url).query if url.startswith("sqlite:") else ""
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
