"""Opening a store from a URL: `connect` and `connect_async`, through the engine registry."""

from __future__ import annotations

from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES
from eventvault.store.aio import AsyncEventStore
from eventvault.store.base import EventStore
from eventvault.store.registry import ConnectOptions, open_url
from eventvault.store.url import parse_url

__all__ = ["DEFAULT_URL", "connect", "connect_async"]

DEFAULT_URL = "eventvault.db"


def connect(
    url: str = DEFAULT_URL,
    *,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    read_only: bool = False,
) -> EventStore:
    """Open an event store.

    Args:
        url: which store.
            - `"path/to/file.db"` or `"sqlite:///path/to/file.db"`: SQLite, created when missing
              (`sqlite:////abs/path.db` for an absolute path; options `?synchronous=NORMAL`,
              `?busy_timeout=SECONDS`); `"sqlite:///:memory:"` for a private SQLite in memory.
            - `"memory://"`: a new, empty in-memory store.
            - `"postgresql://user@host/db"`: PostgreSQL (needs the `postgres` extra).
            - `"scheme://..."`: an engine registered with `register_engine` or declared by a
              package's entry point (see docs/howto-write-an-engine.md).
        max_event_bytes: the largest encoded data plus metadata one event may have (1 MiB).
        read_only: open the store for reading only: nothing is created, migrated or changed
            (a SQLite file may sit in a read-only folder or on a read-only mount), and appends
            and imports raise `ReadOnlyStoreError`.

    Returns:
        The store; use it as a context manager or call `close()`.

    Raises:
        InvalidURLError: the URL names no engine, or has bad options; the engine cannot open
            stores read-only.
        StoreNotFoundError: `read_only` and the SQLite file does not exist.
        NotAnEventVaultDatabaseError: the file or database belongs to something else, is a
            folder, or is empty (`read_only`).
        ReadOnlyStoreError: the store must be written to be opened (created or set up) and
            cannot be.
        StorageError: the store cannot be opened.
    """
    return open_url(parse_url(url), ConnectOptions(max_event_bytes, bool(read_only)))


def connect_async(
    url: str = DEFAULT_URL,
    *,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    read_only: bool = False,
) -> AsyncEventStore:
    """Open an event store for asyncio code: `connect` with coroutines and async iterators.

    Args and Raises as for `connect`.

    Returns:
        An `AsyncEventStore`; use it with `async with` or await `close()`.
    """
    return AsyncEventStore(connect(url, max_event_bytes=max_event_bytes, read_only=read_only))
