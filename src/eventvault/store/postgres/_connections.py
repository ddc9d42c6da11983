"""The connection pool of a PostgreSQL store, and the one way reads go through it.

Readers, the writer and transactions beside the events (the seam) all take connections here, so
pool errors are translated in one place and a read that lost its connection (server restart,
terminated backend) is run again on a fresh one. Here too a call learns that the server cannot
be reached, within `unavailable_timeout` seconds, instead of waiting for the pool's 30 s and
blaming the pool.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from eventvault.errors import StoreClosedError
from eventvault.store.postgres._arrays import ADAPTERS
from eventvault.store.postgres._batch import Row
from eventvault.store.postgres._errors import is_connection_error, translate, unavailable

__all__ = ["POOL_TIMEOUT", "READ_ATTEMPTS", "Connections", "read_only_session"]

logger = logging.getLogger("eventvault.postgres")

READ_ATTEMPTS: Final = 4
"""Tries of one read whose connection died (server restart, terminated backend)."""
POOL_TIMEOUT: Final = 30.0
"""The longest a call waits for a pool connection while the server answers (seconds)."""


def read_only_session(conn: psycopg.Connection[Row]) -> None:
    """Make a session read-only: the server then refuses any write that reaches it."""
    conn.execute("SET default_transaction_read_only = on")


class Connections:
    """A store's pool of autocommit connections.

    Args:
        conninfo: the libpq connection string.
        location: the store's URL with any password masked, for messages.
        pool_max: the most connections to open.
        unavailable_timeout: seconds a call waits for a connection before it checks whether
            the server can be reached.
        name: the pool's name, for psycopg's logs.
        is_closed: whether the store was closed; errors after that are `StoreClosedError`.
        read_only: every connection's session is read-only.
    """

    def __init__(
        self,
        conninfo: str,
        location: str,
        *,
        pool_max: int,
        unavailable_timeout: float,
        name: str,
        is_closed: Callable[[], bool],
        read_only: bool = False,
    ) -> None:
        self.location = location
        self._conninfo = conninfo
        self._unavailable_timeout = unavailable_timeout
        self._is_closed = is_closed
        self.pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_max,
            kwargs={"autocommit": True, "prepare_threshold": 0, "context": ADAPTERS},
            configure=read_only_session if read_only else None,
            open=True,
            name=name,
            timeout=POOL_TIMEOUT,
            # The pool's own reconnection backs off up to minutes apart; giving up after this
            # long lets the next call start a fresh attempt at once, so the store is back
            # within seconds of the server.
            reconnect_timeout=unavailable_timeout,
        )

    def _check_open(self) -> None:
        if self._is_closed():
            raise StoreClosedError(self.location)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Row]]:
        """A connection of the pool for the length of the block.

        A pool that hands out nothing for `unavailable_timeout` seconds is either busy or
        unable to connect; a connection of its own tells which. When the server cannot be
        reached the call fails at once, naming it; when it answers, the call waits for a busy
        connection up to `POOL_TIMEOUT` in all.

        Raises:
            StoreClosedError: the store was closed.
            StoreUnavailableError: the server cannot be reached.
            StorageError: the server answers, but no connection was free in time.
        """
        self._check_open()
        try:
            conn = self._take()
        except (PoolClosed, PoolTimeout) as exc:
            if self._is_closed():
                raise StoreClosedError(self.location) from exc
            raise translate(exc, self.location) from exc
        try:
            with conn:
                yield conn
        finally:
            self.pool.putconn(conn)

    def _take(self) -> psycopg.Connection[Row]:
        first_wait = min(self._unavailable_timeout, POOL_TIMEOUT)
        try:
            return self.pool.getconn(timeout=first_wait)
        except PoolTimeout:
            failure = self._probe()
            if failure is not None:
                raise unavailable(failure, self.location) from failure
        return self.pool.getconn(timeout=max(POOL_TIMEOUT - first_wait, 0.001))

    def _probe(self) -> psycopg.Error | None:
        """Open and close a connection outside the pool: the error when none can be made."""
        try:
            with psycopg.connect(self._conninfo, autocommit=True):
                return None
        except psycopg.Error as exc:
            return exc

    def fetch(self, query: str, params: Sequence[object] | Mapping[str, object]) -> list[Row]:
        """Run one read statement, on a fresh connection again if its connection died.

        Raises:
            StoreClosedError: the store was closed.
            StorageError: the statement failed, or the server could not be reached.
        """
        for attempt in range(READ_ATTEMPTS):
            try:
                with self.connection() as conn:
                    return conn.execute(query, params, binary=True).fetchall()
            except psycopg.Error as exc:
                if self._is_closed():
                    raise StoreClosedError(self.location) from exc
                if attempt + 1 < READ_ATTEMPTS and is_connection_error(exc):
                    logger.info("read on %s lost its connection (%s); retrying", self.location, exc)
                    # Other idle connections may have died with it: replace them now.
                    self.pool.check()
                    continue
                raise translate(exc, self.location) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every connection (waiting up to 5 s for those in use)."""
        self.pool.close(timeout=5.0)
