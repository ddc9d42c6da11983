"""Opening a store from a URL: the one place that knows which engine a URL names."""

from __future__ import annotations

import urllib.parse

from eventvault.errors import InvalidURLError
from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES
from eventvault.store.aio import AsyncEventStore
from eventvault.store.base import EventStore
from eventvault.store.masking import is_libpq_keywords, mask_url

__all__ = ["DEFAULT_URL", "connect", "connect_async"]

DEFAULT_URL = "eventvault.db"

_SQLITE_OPTIONS = {"synchronous", "busy_timeout"}


def _sqlite(url: str, max_event_bytes: int) -> EventStore:
    from eventvault.store.sqlite import SQLiteEventStore

    if url.startswith("sqlite:"):
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidURLError(
                mask_url(url), "a SQLite URL names a local file: sqlite:///path/to.db"
            )
        path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
        options = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    else:
        path, options = url, {}
    if not path:
        raise InvalidURLError(
            mask_url(url), "no file named; use sqlite:///path/to.db or sqlite:///:memory:"
        )
    unknown = set(options) - _SQLITE_OPTIONS
    if unknown:
        raise InvalidURLError(
            mask_url(url),
            f"unknown option(s) {', '.join(sorted(unknown))}; known: synchronous, busy_timeout",
        )
    synchronous = options.get("synchronous", "FULL").upper()
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise InvalidURLError(
            mask_url(url), f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}"
        )
    try:
        busy_timeout = float(options.get("busy_timeout", "30"))
    except ValueError:
        raise InvalidURLError(mask_url(url), "busy_timeout must be a number of seconds") from None
    return SQLiteEventStore(
        path,
        max_event_bytes=max_event_bytes,
        synchronous=synchronous,  # type: ignore[arg-type]
        busy_timeout=busy_timeout,
        url=url,
    )


def connect(
    url: str = DEFAULT_URL, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> EventStore:
    """Open an event store.

    Args:
        url: which store.
            - `"path/to/file.db"` or `"sqlite:///path/to/file.db"`: SQLite, created when missing
              (`sqlite:////abs/path.db` for an absolute path; options `?synchronous=NORMAL`,
              `?busy_timeout=SECONDS`); `"sqlite:///:memory:"` for a private SQLite in memory.
            - `"memory://"`: a new, empty in-memory store.
            - `"postgresql://user@host/db"`: PostgreSQL (needs the `postgres` extra).
        max_event_bytes: the largest encoded data plus metadata one event may have (1 MiB).

    Returns:
        The store; use it as a context manager or call `close()`.

    Raises:
        InvalidURLError: the URL names no engine, or has bad options.
        NotAnEventVaultDatabaseError: the file or database belongs to something else.
        StorageError: the store cannot be opened.
    """
    if not isinstance(url, str) or not url:
        raise InvalidURLError(mask_url(str(url)), "a store URL is a non-empty str")
    scheme = url.split(":", 1)[0].lower() if "://" in url else ""
    if is_libpq_keywords(url):
        # Else it would name a SQLite file, with the password in its name.
        raise InvalidURLError(
            mask_url(url),
            "a libpq key=value connection string is not a store URL; use "
            "postgresql://user:password@host:port/database",
        )
    if not scheme and url.rstrip(":/").lower() in ("memory", "sqlite", "postgresql", "postgres"):
        raise InvalidURLError(
            mask_url(url), "a URL needs '://': memory://, sqlite:///path, postgresql://..."
        )
    if not scheme and "?" in url:
        raise InvalidURLError(
            mask_url(url),
            f"options go with a sqlite: URL, as in sqlite:///{url.split('?', 1)[0]}?...",
        )
    if scheme == "memory":
        from eventvault.store.memory import MemoryEventStore

        if url not in ("memory://", "memory:///"):
            raise InvalidURLError(
                mask_url(url), "the in-memory engine takes no path or options: memory://"
            )
        return MemoryEventStore(url, max_event_bytes=max_event_bytes)
    if scheme in ("postgresql", "postgres"):
        try:
            from eventvault.store.postgres import PostgresEventStore
        except ImportError as exc:
            raise InvalidURLError(
                mask_url(url),
                f"PostgreSQL needs the postgres extra: pip install 'eventvault[postgres]' ({exc})",
            ) from exc
        store: EventStore = PostgresEventStore(url, max_event_bytes=max_event_bytes)
        return store
    if scheme in ("", "sqlite"):
        return _sqlite(url, max_event_bytes)
    raise InvalidURLError(
        mask_url(url),
        f"unknown scheme {scheme!r}; use a file path, sqlite:///, memory:// or postgresql://",
    )


def connect_async(
    url: str = DEFAULT_URL, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> AsyncEventStore:
    """Open an event store for asyncio code: `connect` with coroutines and async iterators.

    Args and Raises as for `connect`.

    Returns:
        An `AsyncEventStore`; use it with `async with` or await `close()`.
    """
    return AsyncEventStore(connect(url, max_event_bytes=max_event_bytes))
