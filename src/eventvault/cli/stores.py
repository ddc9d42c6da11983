"""Opening stores for commands: reading commands never create one by accident."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator
from typing import Final

import eventvault
from eventvault.cli.errors import StoreNotFoundError
from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES
from eventvault.store.base import EventStore
from eventvault.store.masking import mask_url
from eventvault.store.sqlite import SQLiteEventStore

__all__ = [
    "DEFAULT_URL",
    "URL_ENV",
    "engine_name",
    "is_embedded",
    "open_store",
    "sqlite_file",
    "storage_size",
]

DEFAULT_URL: Final = "./eventvault.db"
"""The store a command opens when neither `--url` nor `EVENTVAULT_URL` names one."""
URL_ENV: Final = "EVENTVAULT_URL"
"""The environment variable that names the store when `--url` is not given."""


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names, read the way `eventvault.connect` reads it.

    Args:
        url: a store URL.

    Returns:
        The path of the database file; None for any other engine and for SQLite in memory.
    """
    if url.startswith("sqlite:"):
        parsed = urllib.parse.urlsplit(url)
        path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    elif "://" in url or "?" in url:
        return None  # another engine; or options on a bare path, which connect refuses
    else:
        path = url
    return None if path in ("", ":memory:") else path


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
    url: str, *, must_exist: bool, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> Iterator[EventStore]:
    """Open a store for the length of a command.

    Args:
        url: the store's URL, as `eventvault.connect` takes it.
        must_exist: refuse a SQLite file that does not exist instead of creating it (for
            commands that only read).
        max_event_bytes: the limit on one appended event's size, as `eventvault.connect` takes it.

    Returns:
        A context manager giving the open store, closed on exit.

    Raises:
        StoreNotFoundError: `must_exist` and the SQLite file does not exist.
        InvalidURLError, NotAnEventVaultDatabaseError, StorageError: as `eventvault.connect`.
    """
    path = sqlite_file(url)
    if must_exist and path is not None and not os.path.exists(path):
        raise StoreNotFoundError(mask_url(url), mask_url(path))
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
