"""SQLite URLs: a plain file path or `sqlite:///path?options`, opened as a `SQLiteEventStore`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

from eventvault.errors import InvalidURLError
from eventvault.store.sqlite.store import SQLiteEventStore, Synchronous

if TYPE_CHECKING:
    from eventvault.store.registry import ConnectOptions
    from eventvault.store.url import StoreURL

__all__ = ["open_sqlite"]

_OPTIONS: Final = frozenset({"synchronous", "busy_timeout"})


def open_sqlite(url: StoreURL, options: ConnectOptions) -> SQLiteEventStore:
    """Open the SQLite store a URL names.

    Args:
        url: a plain file path (used as it is), `sqlite:///relative.db`, `sqlite:////abs.db`
            or `sqlite:///:memory:`, with the options `synchronous` and `busy_timeout`.
        options: `connect`'s other arguments.

    Returns:
        The store.

    Raises:
        InvalidURLError: a remote host, no file, an unknown option or a bad option value.
        The errors of `SQLiteEventStore`.
    """
    if url.host not in ("", "localhost"):
        raise InvalidURLError(url.display, "a SQLite URL names a local file: sqlite:///path/to.db")
    if not url.location:
        raise InvalidURLError(
            url.display, "no file named; use sqlite:///path/to.db or sqlite:///:memory:"
        )
    unknown = set(url.options) - _OPTIONS
    if unknown:
        raise InvalidURLError(
            url.display,
            f"unknown option(s) {', '.join(sorted(unknown))}; known: synchronous, busy_timeout",
        )
    synchronous = url.options.get("synchronous", "FULL").upper()
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise InvalidURLError(
            url.display, f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}"
        )
    try:
        busy_timeout = float(url.options.get("busy_timeout", "30"))
    except ValueError:
        raise InvalidURLError(url.display, "busy_timeout must be a number of seconds") from None
    return SQLiteEventStore(
        url.location,
        max_event_bytes=options.max_event_bytes,
        synchronous=cast(Synchronous, synchronous),
        busy_timeout=busy_timeout,
        url=url.text,
        read_only=options.read_only,
    )
