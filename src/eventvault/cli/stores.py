"""Opening stores for commands: reading commands open them read-only, so they never create,
set up or change one (and work on a read-only folder or mount)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

import eventvault
from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES
from eventvault.store.base import EventStore

__all__ = ["DEFAULT_URL", "URL_ENV", "open_store"]

DEFAULT_URL: Final = "./eventvault.db"
"""The store a command opens when neither `--url` nor `EVENTVAULT_URL` names one."""
URL_ENV: Final = "EVENTVAULT_URL"
"""The environment variable that names the store when `--url` is not given."""


@contextlib.contextmanager
def open_store(
    url: str, *, read_only: bool, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> Iterator[EventStore]:
    """Open a store for the length of a command.

    Args:
        url: the store's URL, as `eventvault.connect` takes it.
        read_only: open it for reading only (commands that only read): a SQLite file that
            does not exist is reported instead of created, and nothing is written.
        max_event_bytes: the limit on one appended event's size, as `eventvault.connect` takes it.

    Returns:
        A context manager giving the open store, closed on exit.

    Raises:
        StoreNotFoundError: `read_only` and the SQLite file does not exist.
        InvalidURLError, NotAnEventVaultDatabaseError, StorageError: as `eventvault.connect`.
    """
    with eventvault.connect(url, max_event_bytes=max_event_bytes, read_only=read_only) as store:
        yield store
