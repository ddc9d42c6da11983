"""Databases beside the store: component tables in a database the user names, not the store's.

A read model may live in a database of its own (a separate SQLite file, another PostgreSQL
database) rather than in the store's. Features may not import drivers, so this module gives them
the seam's interface on such a database: `connect_database(url)` opens one, and the `Database`
it returns has the store's `dialect`, `use(component)`, `run_transaction(work)` and `query`,
with the same `Transaction` (statements only: a database beside the store holds no events, so an
append through its transaction raises `TransactionUsageError`).

Each engine implements it beside its store, reusing the store's statement code:
`store/sqlite/database.py` (one connection of its own to the file, transactions serialized by
`BEGIN IMMEDIATE`) and `store/postgres/database.py` (a pool, `READ COMMITTED`).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol, Self, TypeVar, cast

from eventvault.errors import InvalidURLError, StoreClosedError, TransactionUsageError
from eventvault.store._append import PendingAppend
from eventvault.store.seam import Component, Dialect, SQLRow, Transaction, guard_reentry
from eventvault.types import AppendResult, ExpectedVersion, NewEvent, StreamAppend

__all__ = ["Database", "SQLDatabase", "connect_database", "refuse_append"]

_Result = TypeVar("_Result")


class SQLDatabase(Protocol):
    """What a feature needs of a database to keep tables in it: an `EventStore` (its own
    database) and a `Database` (one beside it) both are one."""

    url: str

    @property
    def dialect(self) -> Dialect:
        """The SQL dialect: `sqlite` or `postgresql`."""
        ...

    def use(self, component: Component) -> None:
        """Create or upgrade a component's tables (see `EventStore.use`)."""
        ...

    def run_transaction(self, work: Callable[[Transaction], _Result]) -> _Result:
        """Run `work(tx)` in one transaction (see `EventStore.run_transaction`)."""
        ...

    def query(self, statement: str, params: Sequence[object] = ()) -> list[SQLRow]:
        """Read committed rows outside any transaction."""
        ...


def refuse_append(location: str) -> TransactionUsageError:
    """The error of an append through the transaction of a database that holds no events."""
    return TransactionUsageError(
        f"database {location!r} holds no events: append through the event store, not through "
        "a transaction of a database beside it"
    )


class Database(abc.ABC):
    """A database beside the store, for component tables (read models and their checkpoints).

    Every component used in it is migrated when used (versions recorded in its own
    `component_migrations` table, serialized across processes). A database is a context
    manager; leaving the block closes it.

    Attributes:
        url: the URL it was opened with (any password masked).
    """

    url: str

    def __init__(self, url: str) -> None:
        self.url = url
        self._closed = False
        self._in_use: set[str] = set()
        self._lock = threading.Lock()

    @property
    @abc.abstractmethod
    def dialect(self) -> Dialect:
        """The SQL dialect of the database: `sqlite` or `postgresql`."""

    @abc.abstractmethod
    def _use(self, component: Component) -> None:
        """Bring a component's tables to its newest version, serialized across processes."""

    @abc.abstractmethod
    def _run_transaction(self, work: Callable[[Transaction], object]) -> object:
        """Run `work(tx)` in one transaction and commit it (roll back and re-raise on error)."""

    @abc.abstractmethod
    def _query(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        """Run a read-only statement outside any transaction."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the connections."""

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(self.url)

    def use(self, component: Component) -> None:
        """Create or upgrade a component's tables, once per database object.

        Args:
            component: the component.

        Raises:
            SchemaVersionError: the database holds a newer version than the component knows.
            StorageError: a migration failed; nothing of it was applied.
        """
        self._check_open()
        if component.name in self._in_use:
            return
        with self._lock:
            if component.name not in self._in_use:
                self._use(component)
                self._in_use.add(component.name)

    def run_transaction(self, work: Callable[[Transaction], _Result]) -> _Result:
        """Run `work(tx)` in one transaction of this database; commit when it returns.

        As `EventStore.run_transaction`, without appends: `tx.append_to_stream` raises
        `TransactionUsageError`. On PostgreSQL a transaction that collides with another (a
        deadlock, a serialization failure) is run again, so the work has no effect outside `tx`.

        Args:
            work: a function of the transaction; its result is returned.

        Returns:
            What the work returned.

        Raises:
            TransactionUsageError: the work appended, or carried on after a failed statement.
            StorageError: a statement or the commit failed; nothing was stored.
            Whatever the work raises, after a rollback.
        """
        self._check_open()
        guard_reentry(id(self), self.url)
        return cast(_Result, self._run_transaction(work))

    def query(self, statement: str, params: Sequence[object] = ()) -> list[SQLRow]:
        """Read committed rows, outside any transaction.

        Args:
            statement: a query in the database's dialect.
            params: its parameters.

        Returns:
            The rows, values as the driver gives them.

        Raises:
            StorageError: the query failed.
        """
        self._check_open()
        return self._query(statement, params)

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    def close(self) -> None:
        """Close the database's connections. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.url!r} ({state})>"


class StatementsOnly:
    """The part of a database's transaction that refuses what needs an event log (mixed in
    before an engine's `Transaction`)."""

    _location: str

    def append_to_stream(
        self,
        stream_name: str,
        events: Sequence[NewEvent],
        *,
        expected_version: ExpectedVersion,
    ) -> AppendResult:
        """Refused: the database holds no events.

        Raises:
            TransactionUsageError: always.
        """
        raise refuse_append(self._location)

    def append_to_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """Refused: the database holds no events.

        Raises:
            TransactionUsageError: always.
        """
        raise refuse_append(self._location)

    def get_stream_version(self, stream_name: str) -> int | None:
        """Refused: the database holds no streams.

        Raises:
            TransactionUsageError: always.
        """
        raise refuse_append(self._location)

    def _stream_version(self, stream_name: str) -> int | None:
        raise refuse_append(self._location)

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        raise refuse_append(self._location)


def connect_database(url: str) -> Database:
    """Open a database beside the store, for read models and their checkpoints.

    Args:
        url: which database.
            - `"path/to/file.db"` or `"sqlite:///path/to/file.db"`: a SQLite file, created when
              missing (`sqlite:///:memory:` for a private one in memory).
            - `"postgresql://user@host/db"`: a PostgreSQL database; tables go in the schema
              named by `?schema=NAME` (default `public`), created when missing.

    Returns:
        The database; use it as a context manager or call `close()`.

    Raises:
        InvalidURLError: the URL names no SQL database eventvault knows, or has bad options.
        StorageError: the database cannot be opened.
    """
    if not isinstance(url, str) or not url:
        raise InvalidURLError(str(url), "a database URL is a non-empty str")
    scheme = url.split(":", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        try:
            from eventvault.store.postgres.database import PostgresDatabase
        except ImportError as exc:
            raise InvalidURLError(
                url,
                f"PostgreSQL needs the postgres extra: pip install 'eventvault[postgres]' ({exc})",
            ) from exc
        return PostgresDatabase(url)
    if scheme in ("", "sqlite"):
        from eventvault.store.sqlite.database import SQLiteDatabase

        return SQLiteDatabase(url)
    raise InvalidURLError(
        url, f"a database beside the store is SQLite or PostgreSQL, not {scheme!r}"
    )
