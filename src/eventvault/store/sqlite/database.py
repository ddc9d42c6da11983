"""A SQLite file beside the store, for read models: `connect_database("sqlite:///reports.db")`.

One write connection of its own, used under a lock; every transaction takes SQLite's write lock
with `BEGIN IMMEDIATE`, so transactions of several processes on one file serialize and a check
made inside one (a projection's lease) holds until it commits. Queries run on a reader
connection (WAL), so they never wait for a writer. Statements run through the seam's
`SQLiteStatements`, as in the store.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Sequence

from eventvault.errors import InvalidURLError, NotAnEventVaultDatabaseError
from eventvault.store.database import Database, StatementsOnly
from eventvault.store.seam import (
    Component,
    Dialect,
    SQLRow,
    Transaction,
    check_finished,
    run_work,
    with_schema,
)
from eventvault.store.sqlite._seam import SQLiteStatements, apply_component
from eventvault.store.sqlite.store import _translate

__all__ = ["SQLiteDatabase"]


def _path_of(url: str) -> str:
    if url.startswith("sqlite:"):
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost") or parsed.query:
            raise InvalidURLError(url, "a SQLite database URL is sqlite:///path/to.db, no options")
        path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    else:
        path = url
    if not path:
        raise InvalidURLError(url, "no file named; use sqlite:///path/to.db")
    if path != ":memory:" and os.path.isdir(path):
        raise NotAnEventVaultDatabaseError(path, "it is a directory")
    return path


class _DatabaseTransaction(StatementsOnly, SQLiteStatements):
    """A transaction of a SQLite database beside the store: statements, no appends."""

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        super().__init__(conn, 0, functools.partial(_translate, location=location))
        self._location = location


class SQLiteDatabase(Database):
    """Component tables in a SQLite file of their own (WAL, `synchronous=FULL`).

    Args:
        url: a file path or `sqlite:///path/to.db` (`sqlite:///:memory:` for a private database
            in memory).

    Raises:
        InvalidURLError: the URL names no file.
        NotAnEventVaultDatabaseError: the path is a directory or not a SQLite database.
        StorageError: the file cannot be opened.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = _path_of(url)
        self._in_memory = self.path == ":memory:"
        self._write_lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._writer = self._connect()
        try:
            if not self._in_memory:
                self._writer.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            self._writer.close()
            raise _translate(exc, self.path) from exc
        # In memory, the one connection is the database: readers use it too.
        self._reader = self._writer if self._in_memory else self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        return conn

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    def _in_write_transaction(self, run: Callable[[sqlite3.Connection], object]) -> object:
        """Run `run(conn)` inside `BEGIN IMMEDIATE` on the writer; commit, or roll back."""
        with self._write_lock:
            self._check_open()
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = run(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc
            return result

    def _use(self, component: Component) -> None:
        self._in_write_transaction(lambda conn: apply_component(conn, component, self.path))

    def _run_transaction(self, work: Callable[[Transaction], object]) -> object:
        def run(conn: sqlite3.Connection) -> object:
            tx = _DatabaseTransaction(conn, self.path)
            result = run_work(id(self), work, tx)
            check_finished(tx)
            return result

        return self._in_write_transaction(run)

    def _query(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        lock = self._write_lock if self._in_memory else self._read_lock
        with lock:
            self._check_open()
            try:
                return self._reader.execute(with_schema(statement, "main"), params).fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    def _close(self) -> None:
        with self._write_lock, self._read_lock:
            self._writer.close()
            if self._reader is not self._writer:
                self._reader.close()
